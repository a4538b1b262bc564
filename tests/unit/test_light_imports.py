"""Light jobs (tables, figures, scores, neuron-set files and algebra, the planner) import no heavy
stack: each of their modules imports where torch, transformers, lm-eval, accelerate and datasets
cannot be imported (`sys.modules[name] = None` makes `import name` raise ImportError).

One interpreter checks every module, forgetting all `mwork` modules between two (so each import
runs the module's whole `mwork` import closure afresh); each module is its own test case. A
module-level import of a blocked package anywhere in that closure fails the case; imports inside
functions (run only on the heavy code paths) are allowed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
HEAVY = ("torch", "transformers", "lm_eval", "accelerate", "datasets")
PACKAGES = (
    "mwork.tables",
    "mwork.neuronset",
    "mwork.figures",
    "mwork.findings",
)  # and every submodule of each
MODULES = (
    "mwork.cli",  # `mwork --help`, `neurons summary|compare`, `plan`, `init`, `conditions`
    "mwork.cli_neurons",
    "mwork.cli_study",
    "mwork.initconfig",
    "mwork.preflight",
    "mwork.studyconfig",
    "mwork.suggest",
    "mwork.components",
    "mwork.devices",  # GPU counts of the workflow's jobs (rules/common.smk); torch only inside
    "mwork.fidelity",
    "mwork.neuronfiles",
    "mwork.neuronstats",
    "mwork.plan",
    "mwork.roles",
    "mwork.runlabel",
    "mwork.scores",
    "mwork.settings",
)
CONTROL = "mwork.selection"  # imports torch at module level: must fail under the block


def _with_submodules(package: str) -> list[str]:
    folder = SRC.joinpath(*package.split("."))
    subs = sorted(p.stem for p in folder.glob("*.py") if p.stem != "__init__")
    return [package, *(f"{package}.{s}" for s in subs)]


LIGHT = [m for p in PACKAGES for m in _with_submodules(p)] + list(MODULES)

CHECK = """
import importlib, json, sys, traceback
for name in {heavy!r}:
    sys.modules[name] = None
errors = {{}}
for module in {modules!r}:
    for name in [n for n in sys.modules if n == "mwork" or n.startswith("mwork.")]:
        del sys.modules[name]
    try:
        importlib.import_module(module)
        errors[module] = None
    except BaseException:
        errors[module] = traceback.format_exc(limit=-8)
print(json.dumps(errors))
"""


@pytest.fixture(scope="module")
def import_errors() -> dict[str, str | None]:
    """module -> None if it imported with the heavy stack blocked, else the traceback."""
    code = CHECK.format(heavy=HEAVY, modules=[*LIGHT, CONTROL])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", LIGHT)
def test_imports_without_torch_transformers_or_lm_eval(import_errors, module):
    assert import_errors[module] is None, (
        f"{module} needs a blocked package:\n{import_errors[module]}"
    )


def test_the_block_catches_a_torch_import(import_errors):
    """Control: a module that imports torch at module level fails under the same block."""
    assert import_errors[CONTROL] is not None and "torch" in import_errors[CONTROL]
