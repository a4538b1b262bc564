"""Helpers shared by the tests: file digests, the CLI's exit-2 check, a neuron file of a model,
the tiny model directory behind the `model_dir` fixture, and the one way to reach ../shared/realdata.
"""

import hashlib
import json
import os
import random
import shutil
from pathlib import Path

import pytest
import torch

from mwork.adapters import COMPONENTS, get_adapter
from mwork.cli import main
from mwork.modeling import model_fingerprint
from mwork.neuronset import NeuronSet, save_neuron_set
from mwork.tiny import tiny_model, train_tokenizer

ROOT = Path(__file__).resolve().parents[1]

# --- ../shared/realdata ---------------------------------------------------------------------------
REALDATA = (ROOT.parent / "shared" / "realdata").resolve()
"""Real material (data, stories260K, real tokenizers) kept outside the repository: its README."""
REQUIRE_REALDATA = "MWORK_REQUIRE_REALDATA"
"""Set to 1 (CI does, in .ci/run) and missing real material fails a test instead of skipping it."""
SKIP_PREFIX = "realdata:"
"""Every skip for missing real material starts with this (counted in the test summary)."""
STAND_INS: list[str] = []
"""Tests that ran on stand-in rows because real material was missing (reported in the summary)."""


def realdata_required() -> bool:
    return os.environ.get(REQUIRE_REALDATA, "") not in ("", "0")


def _missing(path: Path) -> str:
    return f"{SKIP_PREFIX} {path} not found"


def realdata(*parts: str) -> Path:
    """The path `parts` under ../shared/realdata; a missing one skips the calling test (a failure
    under MWORK_REQUIRE_REALDATA=1)."""
    path = REALDATA.joinpath(*parts)
    if not path.exists():
        if realdata_required():
            pytest.fail(f"{_missing(path)}, and {REQUIRE_REALDATA}=1 makes that a failure")
        pytest.skip(_missing(path))
    return path


def realdata_or_none(*parts: str, test: str = "") -> Path | None:
    """For tests with a stand-in: the path, or None (noted for the summary) when it is missing,
    e.g. a language the material lacks. A missing ../shared/realdata fails under
    MWORK_REQUIRE_REALDATA=1."""
    path = REALDATA.joinpath(*parts)
    if path.exists():
        return path
    if realdata_required() and not REALDATA.is_dir():
        pytest.fail(f"{_missing(REALDATA)}, and {REQUIRE_REALDATA}=1 makes that a failure")
    STAND_INS.append(test or os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0])
    return None


# --- the tiny model directory of the `model_dir` fixture -------------------------------------------
A_LETTERS, B_LETTERS = "abcdefghijklm", "nopqrstuvwxyz"


def letter_docs(letters: str, n: int, seed: int) -> list[str]:
    """`n` seeded random "words" of 8-20 of `letters`: two disjoint toy languages A and B."""
    rng = random.Random(seed)
    return ["".join(rng.choice(letters) for _ in range(rng.randint(8, 20))) for _ in range(n)]


MODEL_TEXTS = (
    ["hello world hello", "hallo welt", "bonjour le monde", "hola mundo"] * 5
    + letter_docs(A_LETTERS, 40, 0)
    + letter_docs(B_LETTERS, 40, 1)
    + ["Hello world, hallo Welt, 你好世界"]
)
"""What the tokenizer of a tiny model directory is trained on (toy words of four languages,
letter languages A and B, one line with CJK)."""


def write_model_dir(
    out: Path,
    family: str = "llama",
    *,
    seed: int = 0,
    vocab_size: int = 120,
    real_tokenizer: str | None = None,
    **config: object,
) -> Path:
    """A `from_pretrained` directory: a tiny random `family` model (seeded) and a tokenizer.

    Args:
        out: the directory to write.
        family: one of mwork.tiny.FAMILIES.
        seed: model initialisation seed.
        vocab_size: tokenizer budget on MODEL_TEXTS (the model gets the tokenizer's length), or
            with `real_tokenizer` the model's vocabulary size.
        real_tokenizer: a folder of ../shared/realdata/tokenizers whose files are copied in
            instead of training one (skips the test when absent, see `realdata`).
        **config: model config overrides (mwork.tiny.tiny_config).
    """
    out = Path(out)
    if real_tokenizer is not None:
        src = realdata("tokenizers", real_tokenizer)
        tiny_model(family, seed=seed, vocab_size=vocab_size, **config).save_pretrained(out)
        for f in src.iterdir():
            shutil.copy(f, out / f.name)
        return out
    tok = train_tokenizer(MODEL_TEXTS, vocab_size=vocab_size)
    tiny_model(family, seed=seed, vocab_size=len(tok), **config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def digest(paths) -> dict[str, str]:
    """sha256 of every file among `paths` (folders recursively)."""
    out = {}
    for p in map(Path, paths):
        for f in [p] if p.is_file() else sorted(x for x in p.rglob("*") if x.is_file()):
            out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def fails(capsys, argv, inputs, alone: bool = False) -> str:
    """Run the CLI; assert exit 2, one `error: problem; fix` line (the last; with `alone` the only
    line on stderr), no traceback, inputs untouched."""
    before = digest(inputs)
    assert before, "a case without input files checks nothing"
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, (code, err)
    errors = [line for line in err if line.startswith("error: ")]
    assert len(errors) == 1 and err[-1] == errors[0] and "; " in errors[0], err
    assert not alone or len(err) == 1, err
    assert not any("Traceback" in line for line in err), err
    assert digest(inputs) == before
    return errors[0]


def fails_alone(capsys, argv, inputs) -> str:
    """`fails` where the error line must be all of stderr (commands that load no model)."""
    return fails(capsys, argv, inputs, alone=True)


def make_neuron_file(model, path: Path, p: float = 0.25, seed: int = 0) -> Path:
    """A neuron file of `model` (language de): each unit selected with probability p."""
    adapter = get_adapter(model)
    g = torch.Generator().manual_seed(seed)
    sel = {c: torch.rand(adapter.n_layers, adapter.n_units(c), generator=g) < p for c in COMPONENTS}
    meta = {
        "model": "tiny",
        "model_fingerprint": model_fingerprint(model),
        "language": "de",
        "n_layers": str(adapter.n_layers),
        "units": json.dumps(adapter.unit_counts()),
        "n_docs": "1",
        "variant": "all",
    }
    save_neuron_set(NeuronSet(sel, {c: s.to(torch.int32) for c, s in sel.items()}, meta), path)
    return path
