"""Masked evaluation on vLLM (`evaluation.backend: vllm`; docs/vllm.md).

One engine per evaluation job (`engine.VllmEngine`), scored through lm-eval by `lm.VllmLM` (a
`TemplateLM` with HFLM's tokenisation and post-processing); masks and fine-tuning deltas are
applied to the job's HF model on the CPU and mirrored into the running engine by weight reload
(`weights.synced`; every tensor of every touched layer; restored bit-exactly). `tp` holds the
per-rank shard arithmetic for in-place masking under tensor parallelism (on paper; the reload path
shards through vLLM's own loaders). vLLM itself is imported only when an engine starts: this
package imports in the main environment, which has no vLLM.
"""

from mwork.vllm_backend.backend import VllmBackend, open_backend
from mwork.vllm_backend.engine import require_vllm

__all__ = ["VllmBackend", "open_backend", "require_vllm"]
