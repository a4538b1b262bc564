"""PLNDProbe: hooks that score every neuron of every layer during one forward pass of a batch.

All neurons of a layer are scored at once from activations captured by hooks during one forward
pass of a right-padded batch; nothing leaves the device until the batch is done. FFN and V units
take Eq. 5 (mwork.plnd.ffn_v), Q and K dims Eq. 8 (mwork.plnd.qk) from the projections' outputs
the attention computed. `importance="released-code"` reproduces the official code's proxies
(module docstring of mwork.plnd).
"""

from __future__ import annotations

import torch

from mwork.adapters import ModelAdapter
from mwork.devices import param_value
from mwork.errors import MworkError
from mwork.plnd.backend import check_kernel_mode
from mwork.plnd.budget import QK_CPU_THREADS
from mwork.plnd.ffn_v import ffn_importance, v_importance, w_o_gram
from mwork.plnd.first_order import check_qk_scoring
from mwork.plnd.qk import qk_importance

IMPORTANCE_MODES = ("paper", "released-code")


def work_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype PLND scores in: float64 stays float64, everything else is float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


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
        qk_budget_bytes: int | None = None,
        chunk_elems: int | None = None,
        qk_cpu_threads: int | None = QK_CPU_THREADS,
        qk_scoring: str = "exact",
        qk_kernel: str = "auto",
    ) -> None:
        """qk_budget_bytes: Q/K working memory (default: default_qk_budget of the model's device);
        chunk_elems: deprecated alias in elements of the work dtype; qk_cpu_threads: torch
        intra-op threads while scoring Q/K on CPU (None: leave torch's setting); qk_scoring:
        "exact" or "first-order" (mwork.plnd.first_order; checked here, before any forward);
        qk_kernel: "auto", "compiled", "triton" or "torch" (mwork.plnd.backend; checked here)."""
        if importance not in IMPORTANCE_MODES:
            raise MworkError(
                f"unknown importance '{importance}'", f"use one of {', '.join(IMPORTANCE_MODES)}"
            )
        self.adapter, self.components, self.mode = adapter, tuple(components), importance
        if qk_budget_bytes is not None and qk_budget_bytes < 1:
            raise MworkError(
                f"Q/K budget must be positive, got {qk_budget_bytes} bytes", "give a budget >= 1"
            )
        self.qk_budget_bytes, self.chunk_elems = qk_budget_bytes, chunk_elems
        self.qk_cpu_threads = qk_cpu_threads
        qk_norm = qk_scoring != "exact" and any(
            adapter.qk_norm(i) is not None for i in range(adapter.n_layers)
        )
        check_qk_scoring(qk_scoring, importance, qk_norm)
        self.qk_scoring = qk_scoring
        check_kernel_mode(qk_kernel)
        self.qk_kernel = qk_kernel
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._token_mask: torch.Tensor | None = None
        self._kept: dict[int, dict[int, torch.Tensor]] = {}  # layer -> projection outputs
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
        return t.to(work_dtype(t.dtype))

    def _install(self, i: int) -> None:
        a, comps, paper = self.adapter, self.components, self.mode == "paper"
        if "ffn" in comps:
            if paper:
                w = param_value(a.down_proj(i))  # [d_model, d_ffn] (offloaded: from its map)
                self._w_down_norm.append(torch.linalg.vector_norm(self._dt(w.detach()), dim=0))
                self._handles.append(a.down_proj(i).register_forward_pre_hook(self._ffn_hook(i)))
            else:
                self._handles.append(a.up_proj(i).register_forward_hook(self._ffn_released_hook(i)))
        if "attn_v" in comps:
            if paper:
                self._w_o_gram.append(
                    w_o_gram(self._dt(param_value(a.o_proj(i)).detach()), a.n_kv_heads, a.head_dim)
                )
            self._handles.append(a.o_proj(i).register_forward_pre_hook(self._v_hook(i)))
        if "attn_q" in comps or "attn_k" in comps:
            # the projections' outputs are kept as the attention computes them (no second matmul)
            for j, proj in enumerate(a.qk_projections(i)):
                self._handles.append(proj.register_forward_hook(self._keep_hook(i, j)))
            self._handles.append(
                a.attention(i).register_forward_hook(self._qk_hook(i), with_kwargs=True)
            )

    def _put(self, component: str, i: int, value: torch.Tensor) -> None:
        if component in self.components:
            self._scores[component][i] = value

    def _ffn_hook(self, i: int):
        def hook(module: torch.nn.Module, args: tuple) -> None:
            if self._token_mask is None:  # a forward outside run(): hooks stay inert
                return
            x = args[0]
            self._put("ffn", i, ffn_importance(self._dt(x), self._w_down_norm[i], self._mask(x)))

        return hook

    def _ffn_released_hook(self, i: int):
        def hook(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
            if self._token_mask is None:
                return
            up = self.adapter.up_output(i, output)  # Phi-3: the up half of gate_up_proj
            u = self._dt(up).abs().masked_fill(self._mask(up)[..., None] == 0, 0.0)
            self._put("ffn", i, u.sum(dim=1))

        return hook

    def _v_hook(self, i: int):
        a = self.adapter

        def hook(module: torch.nn.Module, args: tuple) -> None:
            if self._token_mask is None:
                return
            o, mask = self._dt(args[0]), self._mask(args[0])
            if self.mode == "paper":
                imp = v_importance(o, self._w_o_gram[i], mask, a.n_kv_heads)
            else:
                b = o.shape[0]
                s = o.abs().masked_fill(mask[..., None] == 0, 0.0).sum(dim=1)
                imp = s.view(b, a.n_kv_heads, a.group_size, a.head_dim).sum(dim=2).reshape(b, -1)
            self._put("attn_v", i, imp)

        return hook

    def _keep_hook(self, i: int, j: int):
        def hook(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
            if self._token_mask is not None:
                self._kept.setdefault(i, {})[j] = output

        return hook

    def _qk_hook(self, i: int):
        a = self.adapter
        n_proj = len(a.qk_projections(i))

        def hook(module: torch.nn.Module, args: tuple, kwargs: dict, output: object) -> None:
            if self._token_mask is None:
                return
            kept = self._kept.pop(i, {})
            if n_proj and len(kept) == n_proj:
                q_pre, k_pre = a.split_qk(i, tuple(kept[j] for j in range(n_proj)))
            else:  # an attention that bypasses its projection modules' __call__: recompute
                hidden = args[0] if args else kwargs["hidden_states"]
                q_pre, k_pre = a.project_qk(i, hidden)
            mask = self._mask(q_pre)
            geo = a.geometry(i, kwargs, mask)
            if geo.cos is not None:
                geo.cos, geo.sin = self._dt(geo.cos), self._dt(geo.sin)
            if geo.bias is not None:
                geo.bias = self._dt(geo.bias)
            imp_q, imp_k = qk_importance(
                self._dt(q_pre),
                self._dt(k_pre),
                geo,
                mask,
                self.mode,
                budget_bytes=self.qk_budget_bytes,
                chunk_elems=self.chunk_elems,
                cpu_threads=self.qk_cpu_threads,
                scoring=self.qk_scoring,
                kernel=self.qk_kernel,
            )
            self._put("attn_q", i, imp_q)
            self._put("attn_k", i, imp_k)

        return hook

    @torch.inference_mode()
    def run(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Forward a right-padded batch; {component: [b, n_layers, n_units]} on the device."""
        if not self._handles:
            raise RuntimeError("PLNDProbe.run() called outside its `with` block")
        a = self.adapter
        self._token_mask = attention_mask.to(torch.float64 if self._is_f64() else torch.float32)
        self._scores = {c: [None] * a.n_layers for c in self.components}
        try:
            a.model.base_model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        finally:
            self._token_mask = None
            self._kept.clear()
        missing = [c for c, v in self._scores.items() if any(x is None for x in v)]
        if missing:
            raise RuntimeError(
                f"PLND hooks did not fire for {missing}; the adapter does not match the model"
            )
        dev = attention_mask.device  # a split model's layers score on their own devices
        return {c: torch.stack([x.to(dev) for x in v], dim=1) for c, v in self._scores.items()}

    def _mask(self, like: torch.Tensor) -> torch.Tensor:
        """The token mask [b, l] on `like`'s device (layers of a split model sit elsewhere)."""
        assert self._token_mask is not None
        return self._token_mask.to(like.device)

    def _is_f64(self) -> bool:
        return next(self.adapter.model.parameters()).dtype == torch.float64
