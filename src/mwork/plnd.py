"""PLND importance (paper §2.2): per document, how much each neuron changes its sub-layer output.

All neurons of a layer are scored at once from activations captured by hooks during one forward
pass of a right-padded batch; nothing leaves the device until the batch is done.

`importance="paper"` (default), exact closed forms of Eq. 1 per document c (l valid tokens):

    ffn    Imp_k = ||h_ffn[:, k]||_2 · ||W_down[:, k]||_2                       (Eq. 5, rank-1)
    attn_v Imp_(g,j) = ||Σ_{h∈g} o_h[:, j] ⊗ W_O[:, h·d+j]||_F                    (Eq. 5 through W_O;
           o_h = P_h V_g, exact under GQA: a kv dim feeds every query head h of its group g)
    attn_q Imp_(h,i) = ||softmax(f(S_h − s·Δ_(h,i))) − softmax(f(S_h))||_F            (Eq. 8)
    attn_k Imp_(g,i) = sqrt(Σ_{h∈g} ||softmax(f(S_h − s·Δ_(h,i))) − softmax(f(S_h))||²_F)

where S_h = s·Q_h K_gᵀ (+ALiBi), s the model's scaling, f its soft-capping + mask, and Δ_(h,i) the
exact term that zeroing row i of W_Q (or W_K), bias included, removes from Q Kᵀ — *pre*-RoPE,
so RoPE's pairing of dims i and i±d/2 is honoured. Query rows of padding are excluded.

`importance="released-code"` reproduces the official code's proxies (paper.md §2.3/§6):
ffn Σ_t|W_up x_t|; q/k per post-RoPE dim with *unscaled* Δ and a squared norm (k: summed over the
query heads of its group); v Σ_t|o_t| per head dim (summed over the group under GQA).
"""

from __future__ import annotations

import torch

from mwork.adapters import AttnGeometry, ModelAdapter
from mwork.errors import MworkError

IMPORTANCE_MODES = ("paper", "released-code")


def ffn_importance(h: torch.Tensor, w_down_norm: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
    """Paper Eq. 5 for all FFN units.

    Args:
        h: [b, l, d_ffn] input of W_down.
        w_down_norm: [d_ffn] column norms of W_down.
        token_mask: [b, l] 1 for real tokens.

    Returns:
        [b, d_ffn]
    """
    h = h.masked_fill(token_mask[..., None] == 0, 0.0)  # padding (possibly NaN in HF) contributes 0
    return torch.linalg.vector_norm(h, dim=1) * w_down_norm


def v_importance(o: torch.Tensor, w_o_gram: torch.Tensor, token_mask: torch.Tensor, n_kv: int) -> torch.Tensor:
    """Exact V importance through W_O, GQA-aware.

    Zeroing kv dim (g, j) removes o_h[:, j] for every query head h of group g, so the output
    change is Σ_h a_h ⊗ w_h and its squared norm is Σ_{h,h'} (a_h·a_h')(w_h·w_h').

    Args:
        o: [b, l, n_heads*d] per-head attention output (input of W_O).
        w_o_gram: [n_kv, d, r, r] Gram matrices w_hᵀw_h' of W_O columns within each group.
        token_mask: [b, l].
        n_kv: number of key/value heads (r = n_heads / n_kv).

    Returns:
        [b, n_kv*d]
    """
    b, l, _ = o.shape
    _, d, r, _ = w_o_gram.shape
    a = o.masked_fill(token_mask[..., None] == 0, 0.0).view(b, l, n_kv, r, d)
    gram_a = torch.einsum("blgrd,blgsd->bgdrs", a, a)  # [b, n_kv, d, r, r]
    sq = (gram_a * w_o_gram).sum(dim=(-1, -2)).clamp_min(0)
    return sq.sqrt().reshape(b, n_kv * d)


def w_o_gram(w_o: torch.Tensor, n_kv: int, head_dim: int) -> torch.Tensor:
    """[n_kv, d, r, r] Gram matrices of W_O's columns per (group, dim). w_o: [d_model, n_heads*d]."""
    d_model, hd = w_o.shape
    w = w_o.view(d_model, n_kv, hd // (n_kv * head_dim), head_dim)
    return torch.einsum("mgrd,mgsd->gdrs", w, w)


def _rope_pair(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split a pre-RoPE tensor's dims into their two post-RoPE contributions.

    With HF's rotate_half RoPE, rope(x_i e_i) = x_i (cos_i e_i + σ_i sin_p(i) e_p(i)), p(i) = i ± d/2,
    σ_i = +1 for i < d/2 else −1.

    Args:
        x: [b, n, l, d] pre-RoPE; cos, sin: [b, l, d].

    Returns:
        (x·cos, x·σ·sin[p]) both [b, n, l, d], and the partner permutation p [d].
    """
    d = x.shape[-1]
    perm = torch.cat([torch.arange(d // 2, d), torch.arange(0, d // 2)]).to(x.device)
    sign = torch.ones(d, dtype=x.dtype, device=x.device)
    sign[d // 2:] = -1
    return x * cos[:, None], x * (sign * sin[..., perm])[:, None], perm


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """HF rotate_half RoPE. x: [b, n, l, d]; cos/sin: [b, l, d]."""
    d = x.shape[-1]
    rot = torch.cat([-x[..., d // 2:], x[..., : d // 2]], dim=-1)
    return x * cos[:, None] + rot * sin[:, None]


def qk_importance(
    q_pre: torch.Tensor,
    k_pre: torch.Tensor,
    geo: AttnGeometry,
    token_mask: torch.Tensor,
    mode: str = "paper",
    chunk_elems: int = 1 << 20,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 8 for every Q and K dim of one layer, chunked over query rows.

    Args:
        q_pre: [b, n_heads, l, d] queries before RoPE (bias included).
        k_pre: [b, n_kv, l, d] keys before RoPE.
        geo: the layer's attention geometry (RoPE tables, ALiBi, mask, scaling, soft-cap).
        token_mask: [b, l].
        mode: "paper" or "released-code".
        chunk_elems: bound on the elements of one [b, t_chunk, l, d] work tensor.

    Returns:
        (imp_q [b, n_heads*d], imp_k [b, n_kv*d])
    """
    pad = token_mask[:, None, :, None] == 0  # padded positions may hold NaN (fully masked rows in HF)
    q_pre, k_pre = q_pre.masked_fill(pad, 0.0), k_pre.masked_fill(pad, 0.0)
    b, n_heads, l, d = q_pre.shape
    n_kv = k_pre.shape[1]
    r = n_heads // n_kv
    has_rope = geo.cos is not None
    q = _rope(q_pre, geo.cos, geo.sin) if has_rope else q_pre
    k = _rope(k_pre, geo.cos, geo.sin) if has_rope else k_pre
    if mode == "paper" and has_rope:
        qa, qb, perm = _rope_pair(q_pre, geo.cos, geo.sin)
        ka, kb, _ = _rope_pair(k_pre, geo.cos, geo.sin)
        q_terms = (qa, k, qb, k[..., perm])      # Δ_Q = qa·K + qb·K[p]
        k_terms = (q, ka, q[..., perm], kb)      # Δ_K = Q·ka + Q[p]·kb
    else:  # no RoPE, or the released code's post-RoPE dims: Δ = Q[:, i] K[:, i]ᵀ
        q_terms = k_terms = (q, k, None, None)
    delta_scale = geo.scaling if mode == "paper" else 1.0
    row_valid = token_mask.to(q.dtype)  # [b, l]
    t_chunk = max(1, chunk_elems // max(1, b * l * d))
    sq_q = torch.zeros(b, n_heads, d, dtype=q.dtype, device=q.device)
    sq_k = torch.zeros(b, n_kv, d, dtype=q.dtype, device=q.device)
    for h in range(n_heads):
        g = h // r
        for t0 in range(0, l, t_chunk):
            t1 = min(l, t0 + t_chunk)
            s_raw = geo.scaling * q[:, h, t0:t1] @ k[:, g].transpose(-1, -2)  # [b, tc, l]
            if geo.bias is not None:
                s_raw = s_raw + geo.bias[:, h, -1 if geo.bias.shape[2] == 1 else slice(t0, t1)].view(b, -1, l)
            allowed = geo.allowed[:, 0, t0:t1]  # [b, tc, l]
            p = _probs(s_raw, allowed, geo.softcap)
            valid = row_valid[:, t0:t1, None, None]
            # without RoPE splitting, zeroing Q dim i or K dim i removes the same term: score it once
            jobs = [(q_terms, [(sq_q, h), (sq_k, g)])] if q_terms is k_terms else \
                [(q_terms, [(sq_q, h)]), (k_terms, [(sq_k, g)])]
            for (x1, y1, x2, y2), outs in jobs:
                # Δ[b, t, s, i] = x1[t, i]·y1[s, i] (+ x2[t, i]·y2[s, i] for the RoPE partner dim)
                delta = _pick(x1, h, g, n_heads)[:, t0:t1, None, :] * _pick(y1, h, g, n_heads)[:, None]
                if x2 is not None:
                    delta = delta + _pick(x2, h, g, n_heads)[:, t0:t1, None, :] * _pick(y2, h, g, n_heads)[:, None]
                p_new = _probs(s_raw[..., None] - delta_scale * delta, allowed[..., None], geo.softcap, dim=2)
                sq = ((p_new - p[..., None]) * valid).square().sum(dim=(1, 2))
                for out, idx in outs:
                    out[:, idx] += sq
    if mode == "paper":
        return sq_q.sqrt().reshape(b, -1), sq_k.sqrt().reshape(b, -1)
    return sq_q.reshape(b, -1), sq_k.reshape(b, -1)


def _pick(y: torch.Tensor, h: int, g: int, n_heads: int) -> torch.Tensor:
    """Head h's slice of a per-query-head tensor, or group g's slice of a per-kv-head tensor."""
    return y[:, h] if y.shape[1] == n_heads else y[:, g]


def _probs(s: torch.Tensor, allowed: torch.Tensor, softcap: float | None, dim: int = -1) -> torch.Tensor:
    """softmax over keys of soft-capped, masked scores."""
    if softcap is not None:
        s = torch.tanh(s / softcap) * softcap
    # finite fill: a padded query row that sees no key gives a uniform row instead of NaN
    s = s.masked_fill(~allowed, torch.finfo(s.dtype).min)
    return torch.softmax(s, dim=dim)


class PLNDProbe:
    """Hooks that score every neuron of every layer during a forward pass.

    Usage:
        with PLNDProbe(adapter, components, "paper") as probe:
            probe.run(input_ids, attention_mask)   # -> {component: [b, n_layers, n_units]}
    """

    def __init__(
        self,
        adapter: ModelAdapter,
        components: tuple[str, ...],
        importance: str = "paper",
        chunk_elems: int = 1 << 20,
    ) -> None:
        if importance not in IMPORTANCE_MODES:
            raise MworkError(f"unknown importance '{importance}'", f"use one of {', '.join(IMPORTANCE_MODES)}")
        self.adapter, self.components, self.mode = adapter, tuple(components), importance
        self.chunk_elems = chunk_elems
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._token_mask: torch.Tensor | None = None
        self._scores: dict[str, list[torch.Tensor | None]] = {}
        self._w_down_norm: list[torch.Tensor] = []
        self._w_o_gram: list[torch.Tensor] = []

    def __enter__(self) -> PLNDProbe:
        a = self.adapter
        try:
            for i in range(a.n_layers):
                self._install(i)
        except Exception:
            self._remove()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._remove()

    def _remove(self) -> None:
        for hnd in self._handles:
            hnd.remove()
        self._handles.clear()

    def _dt(self, t: torch.Tensor) -> torch.Tensor:
        """Work dtype: float64 stays float64, everything else is scored in float32."""
        return t if t.dtype == torch.float64 else t.float()

    def _install(self, i: int) -> None:
        a, comps, paper = self.adapter, self.components, self.mode == "paper"
        if "ffn" in comps:
            if paper:
                w = a.down_proj(i).weight  # [d_model, d_ffn]
                self._w_down_norm.append(torch.linalg.vector_norm(self._dt(w.detach()), dim=0))
                self._handles.append(a.down_proj(i).register_forward_pre_hook(self._ffn_hook(i)))
            else:
                self._handles.append(a.up_proj(i).register_forward_hook(self._ffn_released_hook(i)))
        if "attn_v" in comps:
            if paper:
                self._w_o_gram.append(w_o_gram(self._dt(a.o_proj(i).weight.detach()), a.n_kv_heads, a.head_dim))
            self._handles.append(a.o_proj(i).register_forward_pre_hook(self._v_hook(i)))
        if "attn_q" in comps or "attn_k" in comps:
            self._handles.append(
                a.attention(i).register_forward_pre_hook(self._qk_hook(i), with_kwargs=True)
            )

    def _put(self, component: str, i: int, value: torch.Tensor) -> None:
        if component in self.components:
            self._scores[component][i] = value

    def _ffn_hook(self, i: int):
        def hook(module: torch.nn.Module, args: tuple) -> None:
            if self._token_mask is None:  # a forward outside run(): hooks stay inert
                return
            self._put("ffn", i, ffn_importance(self._dt(args[0]), self._w_down_norm[i], self._token_mask))
        return hook

    def _ffn_released_hook(self, i: int):
        def hook(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
            if self._token_mask is None:
                return
            u = self._dt(output).abs().masked_fill(self._token_mask[..., None] == 0, 0.0)
            self._put("ffn", i, u.sum(dim=1))
        return hook

    def _v_hook(self, i: int):
        a = self.adapter

        def hook(module: torch.nn.Module, args: tuple) -> None:
            if self._token_mask is None:
                return
            o = self._dt(args[0])
            if self.mode == "paper":
                imp = v_importance(o, self._w_o_gram[i], self._token_mask, a.n_kv_heads)
            else:
                b, l, _ = o.shape
                s = o.abs().masked_fill(self._token_mask[..., None] == 0, 0.0).sum(dim=1)
                imp = s.view(b, a.n_kv_heads, a.group_size, a.head_dim).sum(dim=2).reshape(b, -1)
            self._put("attn_v", i, imp)
        return hook

    def _qk_hook(self, i: int):
        a = self.adapter

        def hook(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
            if self._token_mask is None:
                return
            hidden = args[0] if args else kwargs["hidden_states"]
            q_pre, k_pre = a.project_qk(i, hidden)
            geo = a.geometry(i, kwargs, self._token_mask)
            if geo.cos is not None:
                geo.cos, geo.sin = self._dt(geo.cos), self._dt(geo.sin)
            if geo.bias is not None:
                geo.bias = self._dt(geo.bias)
            imp_q, imp_k = qk_importance(
                self._dt(q_pre), self._dt(k_pre), geo, self._token_mask, self.mode, self.chunk_elems
            )
            self._put("attn_q", i, imp_q)
            self._put("attn_k", i, imp_k)
        return hook

    @torch.inference_mode()
    def run(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Forward a right-padded batch; return {component: [b, n_layers, n_units]} on the device."""
        if not self._handles:
            raise RuntimeError("PLNDProbe.run() called outside its `with` block")
        a = self.adapter
        self._token_mask = attention_mask.to(torch.float64 if self._is_f64() else torch.float32)
        self._scores = {c: [None] * a.n_layers for c in self.components}
        try:
            a.model.base_model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        finally:
            self._token_mask = None
        missing = [c for c, v in self._scores.items() if any(x is None for x in v)]
        if missing:
            raise RuntimeError(f"PLND hooks did not fire for {missing}; the adapter does not match the model")
        return {c: torch.stack(v, dim=1) for c, v in self._scores.items()}

    def _is_f64(self) -> bool:
        return next(self.adapter.model.parameters()).dtype == torch.float64
