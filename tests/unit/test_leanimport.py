"""mwork.leanimport: jobs import transformers without scikit-learn, and nothing else changes.

Each case runs in a fresh interpreter (the patch acts at first import)."""

from __future__ import annotations

import os
import subprocess
import sys

ENTRY_MODULES = ("mwork.evaluate", "mwork.modeling", "mwork.demo.train", "mwork.finetune.run")


def _run(code: str, keep: bool = False) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MWORK_KEEP_SKLEARN="1" if keep else "0")
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )


def test_job_modules_do_not_import_sklearn():
    out = _run(f"import {', '.join(ENTRY_MODULES)}, sys; print('sklearn' in sys.modules)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_opt_out_keeps_transformers_behaviour():
    code = (
        "import mwork.evaluate, sys, transformers.utils as u;"
        "print('sklearn' in sys.modules, u.is_sklearn_available())"
    )
    out = _run(code, keep=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True"]  # sklearn is installed (lm-eval needs it)


def test_patch_reaches_both_names_and_generation_imports():
    code = (
        "import mwork, transformers.utils as u, transformers.utils.import_utils as iu;"
        "from transformers.generation import candidate_generator as cg;"
        "print(u.is_sklearn_available(), iu.is_sklearn_available(), hasattr(cg, 'roc_curve'))"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False", "False"]


def test_install_after_transformers_patches_directly():
    code = (
        "import transformers.utils as u, transformers.utils.import_utils;"
        "import mwork.leanimport as l; l.install(); print(u.is_sklearn_available())"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_torch_free_import_stays_torch_free():
    out = _run("import mwork, sys; print(any(m in sys.modules for m in ('transformers', 'torch')))")
    assert out.stdout.strip() == "False", out.stderr
