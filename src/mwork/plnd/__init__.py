"""PLND importance (paper §2.2): per document, how much each neuron changes its sub-layer output.

All neurons of a layer are scored at once from activations captured by hooks during one forward
pass of a right-padded batch; nothing leaves the device until the batch is done.

`importance="paper"` (default), exact closed forms of Eq. 1 per document c (l valid tokens):

    ffn    Imp_k = ||h_ffn[:, k]||_2 · ||W_down[:, k]||_2                       (Eq. 5, rank-1)
    attn_v Imp_(g,j) = ||Σ_{h∈g} o_h[:, j] ⊗ W_O[:, h·d+j]||_F                (Eq. 5 through W_O;
           o_h = P_h V_g, exact under GQA: a kv dim feeds every query head h of its group g)
    attn_q Imp_(h,i) = ||softmax(f(S_h − s·Δ_(h,i))) − softmax(f(S_h))||_F            (Eq. 8)
    attn_k Imp_(g,i) = sqrt(Σ_{h∈g} ||softmax(f(S_h − s·Δ_(h,i))) − softmax(f(S_h))||²_F)

where S_h = s·Q_h K_gᵀ (+ALiBi), s the model's scaling, f its soft-capping + mask, and Δ_(h,i) the
exact term that zeroing row i of W_Q (or W_K), bias included, removes from Q Kᵀ — *pre*-RoPE,
so RoPE's pairing of dims i and i±d/2 is honoured. Query rows of padding are excluded.

`importance="released-code"` reproduces the official code's proxies (paper.md §2.3/§6):
ffn Σ_t|W_up x_t|; q/k per post-RoPE dim with *unscaled* Δ and a squared norm (k: summed over the
query heads of its group); v Σ_t|o_t| per head dim (summed over the group under GQA).

One module per concept:

    probe           PLNDProbe: the hooks, one forward pass -> {component: [b, n_layers, units]}
    ffn_v           Eq. 5 for FFN units and V dims
    qk              Eq. 8 for a layer's Q and K dims: which scorer, the loop over documents
    removal         what zeroing a Q/K dim removes from the scores (Δ, RoPE's split)
    exact           exact Eq. 8 of one document without a Q/K norm, in blocks
    qknorm          exact Eq. 8 under a Q/K RMSNorm (Qwen3, Gemma-3, OLMo-2)
    terms           one logit perturbation scored in blocks (the Q/K-norm scorer's engine)
    softmax_change  ||softmax(L + z) − softmax(L)||²: the multiplicative and direct forms
    backend         which scorer runs the multiplicative form (`detection.qk_kernel`, auto's timing)
    kernel          the C kernel of the multiplicative form on CPU
    kernel_build    compiling csrc/sq_change.c into a private cache, verifying and loading it
    triton_qk       the Triton kernel of the multiplicative form on CUDA GPUs
    first_order     the linearised Eq. 8, an approximation (`detection.qk_scoring: first-order`)
    budget          Q/K working memory and threads
"""

from mwork.plnd.backend import KERNEL_MODES, check_kernel_mode, qk_kernel_used
from mwork.plnd.budget import (
    QK_BUDGET_CPU,
    QK_BUDGET_GPU_FRACTION,
    QK_CPU_THREADS,
    default_qk_budget,
)
from mwork.plnd.ffn_v import ffn_importance, v_importance, w_o_gram
from mwork.plnd.first_order import QK_SCORING_MODES, check_qk_scoring
from mwork.plnd.probe import IMPORTANCE_MODES, PLNDProbe, work_dtype
from mwork.plnd.qk import qk_importance

__all__ = [
    "IMPORTANCE_MODES",
    "KERNEL_MODES",
    "QK_BUDGET_CPU",
    "QK_BUDGET_GPU_FRACTION",
    "QK_CPU_THREADS",
    "QK_SCORING_MODES",
    "PLNDProbe",
    "check_kernel_mode",
    "check_qk_scoring",
    "default_qk_budget",
    "ffn_importance",
    "qk_importance",
    "qk_kernel_used",
    "v_importance",
    "w_o_gram",
    "work_dtype",
]
