"""The package's shape: small modules (one concept each) and no import cycle among them.

The import graph is read from the source (ast), not by importing: an edge A -> B for every
module-level `import mwork.B` / `from mwork.B import x` of module A (`from mwork.P import m`, m a
submodule of P, is an edge to P.m). Imports inside functions and under `if TYPE_CHECKING:` are
left out: they do not run when A is imported. A package's implicit import of its parent packages
is not an edge (Python runs a package's __init__ before its submodules in any case).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "mwork"
MAX_LINES = 400  # style.md: modules of roughly 300 lines or less, one concept each


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    """`if TYPE_CHECKING:` or `if typing.TYPE_CHECKING:`."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Import statements that run when the module is imported (not in functions, not typing)."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.append(node)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            elif isinstance(node, ast.If):
                if not _is_type_checking(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.ClassDef | ast.With | ast.For | ast.While):
                visit(node.body)
                visit(getattr(node, "orelse", []))
            elif isinstance(node, ast.Try):
                for block in (node.body, node.orelse, node.finalbody):
                    visit(block)
                for handler in node.handlers:
                    visit(handler.body)

    visit(tree.body)
    return found


def _edges(name: str, source: str, is_package: bool = False) -> set[str]:
    """The mwork modules that module `name` (its `source`) imports at module level."""
    out: set[str] = set()
    for node in _module_level_imports(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:  # relative: from the module's package, `level` steps up
                package = name.split(".") if is_package else name.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([base] if base else []))
            targets = []
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.append(sub if sub in MODULES else base)
        for target in targets:
            while target and target not in MODULES:  # `import mwork.a.b.C`-like: nearest module
                target = target.rpartition(".")[0]
            if target.startswith("mwork") and target != name:
                out.add(target)
    return out


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph (as a path that returns to its start), or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_is_at_most_400_lines(name):
    n = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"{MODULES[name].relative_to(SRC)} has {n} lines (at most {MAX_LINES})"


def test_no_import_cycle_among_mwork_modules():
    graph = {
        name: _edges(name, path.read_text(encoding="utf-8"), path.name == "__init__.py")
        for name, path in MODULES.items()
    }
    assert graph["mwork.plnd.qk"] >= {"mwork.plnd.exact", "mwork.plnd.backend"}  # the graph is read
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_cycle_finder_and_edges():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
    source = (
        "from typing import TYPE_CHECKING\n"
        "import mwork.errors\n"
        "from mwork.plnd import kernel, qk_importance\n"
        "from . import hooks\n"
        "if TYPE_CHECKING:\n    from mwork.settings import ModelSpec\n"
        "def f():\n    import mwork.tiny\n"
    )
    assert _edges("mwork.lmeval_tasks.spec", source) == {
        "mwork.errors",
        "mwork.plnd.kernel",  # a submodule: an edge to it
        "mwork.plnd",  # a name defined in the package's __init__
        "mwork.lmeval_tasks.hooks",
    }


def test_settings_do_not_load_torch():
    """Settings are plain config (loading a model is mwork.modeling.load_spec's): no torch import."""
    code = "import sys, mwork.settings; print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
