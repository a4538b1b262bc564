"""The vLLM tests (tests/vllm/): run only in the vLLM venv (bash .ci/vllm-setup.sh), by the last
step of .ci/run or by hand:

    MWORK_VLLM_TESTS=1 .venv-vllm/bin/python -m pytest -q tests/vllm

The main suite does not collect this folder (tests/conftest.py `collect_ignore`). Here vLLM must
import: a missing or broken vLLM is a failure, not a skip. The engine runs in-process with a small
KV cache, its caches in a session temp dir.
"""

import os
import tempfile

_CACHE = tempfile.mkdtemp(prefix="mwork_vllm_tests_")
for key, value in {
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "TORCHDYNAMO_DISABLE": "1",
    "VLLM_CACHE_ROOT": os.path.join(_CACHE, "vllm"),
    "TORCHINDUCTOR_CACHE_DIR": os.path.join(_CACHE, "inductor"),
}.items():
    os.environ.setdefault(key, value)

from vllm import LLM  # noqa: E402,F401  (fails the session here when vLLM is missing or broken)
