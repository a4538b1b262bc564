"""Per-job start-up: import transformers without its optional scikit-learn import.

Every torch job is one process (`docs/performance.md`), so import time is paid per job. Importing
`transformers.generation` (which `AutoModelForCausalLM` and lm-eval's HFLM do) imports
`sklearn.metrics` whenever scikit-learn is installed, and lm-eval depends on scikit-learn: about
1.2 s of a ~6 s import on the reference machine, for `roc_curve`, which only transformers'
*assisted* decoding uses (a draft model's confidence threshold). mwork never runs assisted
decoding, so `install()` makes transformers see scikit-learn as absent:

- it adds a finder to `sys.meta_path` that, when `transformers.utils.import_utils` is first
  imported, lets it load normally and then replaces its `is_sklearn_available` with one that
  returns False (before `transformers.utils` re-exports it);
- it imports nothing itself, so torch-free modules stay torch-free; `mwork/__init__` calls it, so
  it is in place before any mwork module imports transformers or lm-eval;
- if transformers is already imported, it patches the two module attributes directly (modules
  imported later see False; one imported earlier keeps what it saw).

`MWORK_KEEP_SKLEARN=1` turns it off. Measured with `benchmarks/import_cost.py`.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Sequence
from types import ModuleType

TARGET = "transformers.utils.import_utils"


def _no_sklearn() -> bool:
    """transformers' `is_sklearn_available`, answered for mwork: never (see the module doc)."""
    return False


def _patch(module: ModuleType) -> None:
    module.is_sklearn_available = _no_sklearn


class _PatchOnLoad(importlib.abc.MetaPathFinder):
    """Finds `TARGET` through the other finders and patches it right after it executes."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != TARGET:
            return None
        sys.meta_path.remove(self)  # once only
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        run = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            _patch(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]  (this spec's own loader)
        return spec


def install() -> None:
    """Make transformers skip scikit-learn in this process (no-op with MWORK_KEEP_SKLEARN=1)."""
    if os.environ.get("MWORK_KEEP_SKLEARN") == "1":
        return
    if TARGET in sys.modules:
        _patch(sys.modules[TARGET])
        utils = sys.modules.get("transformers.utils")
        if utils is not None:
            _patch(utils)
        return
    if not any(isinstance(f, _PatchOnLoad) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnLoad())
