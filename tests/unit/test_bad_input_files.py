"""Bad neuron files, bad configs and hostile header strings (issue 15, classes 3, 4 and 7).

Every bad case must end with exit status 2, one line `error: <problem>; <fix>` on stderr, and
every input file byte-identical afterwards. No model is loaded here.
"""

import json
import time
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch
import yaml
from safetensors import safe_open
from safetensors.torch import save_file
from testhelpers import digest
from testhelpers import fails_alone as fails

from mwork.cli import main
from mwork.languages import LANGUAGES
from mwork.neuronset import NeuronSet, load_neuron_set, save_neuron_set, select_by_fraction
from mwork.settings import SCHEMA_FILE, config_schema

UNITS = {"attn_q": 4, "ffn": 6}


def make_set(lang="zh", n_docs=4, shard=None, seed=0, variant="all", n_layers=2) -> NeuronSet:
    """A consistent neuron set (random doc_counts, selection implied by them)."""
    g = torch.Generator().manual_seed(seed)
    counts = {
        c: torch.randint(0, n_docs + 1, (n_layers, n), generator=g, dtype=torch.int32)
        for c, n in UNITS.items()
    }
    for c in counts:
        counts[c][0, 0] = n_docs  # at least one selected neuron per component
    meta = {
        "model": "tiny",
        "model_fingerprint": "fp",
        "language": lang,
        "n_layers": str(n_layers),
        "units": json.dumps(UNITS, sort_keys=True),
        "n_docs": str(n_docs),
        "min_fraction": "1.0",
        "variant": variant,
        "importance": "paper",
        "selection": "{}",
        "max_tokens": "8",
        "corpus_sha256": "c",
        "seed": "1",
    }
    if shard:
        meta["shard"] = shard
    return NeuronSet(select_by_fraction(counts, n_docs, 1.0), counts, meta)


def write(ns: NeuronSet, path: Path) -> Path:
    save_neuron_set(ns, path)
    return path


def tamper(src: Path, dst: Path, meta=None, tensors=None) -> Path:
    """A copy of a neuron file with header values and/or tensors replaced (None: deleted)."""
    with safe_open(str(src), framework="pt") as f:
        m = dict(f.metadata())
        t = {k: f.get_tensor(k) for k in f.keys()}
    for source, target in ((meta or {}, m), (tensors or {}, t)):
        for k, v in source.items():
            if v is None:
                target.pop(k, None)
            else:
                target[k] = v
    save_file(t, str(dst), metadata=m)
    return dst


@pytest.fixture
def zh(tmp_path) -> Path:
    return write(make_set(), tmp_path / "zh.safetensors")


def test_good_file_round_trips(zh):
    """Control: the consistent file loads and re-saves byte-identically."""
    ns = load_neuron_set(zh)
    assert ns.count() == int(sum(s.sum() for s in make_set().selected.values()))
    save_neuron_set(ns, zh.with_name("again.safetensors"))
    assert zh.with_name("again.safetensors").read_bytes() == zh.read_bytes()


# --- class 3: shard sets -------------------------------------------------------------------


@pytest.fixture
def shards(tmp_path) -> list[Path]:
    return [
        write(make_set(n_docs=2, shard=f"{i}/2", seed=i), tmp_path / f"s{i}.safetensors")
        for i in range(2)
    ]


def test_complete_shard_set_merges(capsys, shards, tmp_path):
    """Control: both shards, once each: exit 0, n_docs added, no shard marker."""
    assert (
        main(["neurons", "merge", "--out", str(tmp_path / "m.safetensors"), *map(str, shards)]) == 0
    )
    merged = load_neuron_set(tmp_path / "m.safetensors")
    assert merged.n_docs == 4 and "shard" not in merged.meta


def test_merge_same_shard_twice(capsys, shards, tmp_path):
    msg = fails(
        capsys,
        ["neurons", "merge", "--out", tmp_path / "m.safetensors", shards[0], shards[0]],
        shards,
    )
    assert "shard 0/2 is given twice" in msg
    assert not (tmp_path / "m.safetensors").exists()


def test_merge_copy_of_a_shard(capsys, shards, tmp_path):
    copy = tmp_path / "copy.safetensors"
    copy.write_bytes(shards[1].read_bytes())
    msg = fails(
        capsys,
        ["neurons", "merge", "--out", tmp_path / "m.safetensors", *shards, copy],
        [*shards, copy],
    )
    assert "1/2 is given twice" in msg


def test_merge_incomplete_shard_set(capsys, shards, tmp_path):
    msg = fails(
        capsys, ["neurons", "merge", "--out", tmp_path / "m.safetensors", shards[0]], shards
    )
    assert "incomplete shard set" in msg and "1/2" in msg


def test_merge_unsharded_with_shard(capsys, shards, zh, tmp_path):
    full = write(make_set(n_docs=2), tmp_path / "full.safetensors")
    msg = fails(
        capsys,
        ["neurons", "merge", "--out", tmp_path / "m.safetensors", full, shards[0]],
        [full, shards[0]],
    )
    assert "unsharded neuron file with shards" in msg


def test_merge_two_unsharded(capsys, zh, tmp_path):
    other = write(make_set(seed=5), tmp_path / "zh2.safetensors")
    msg = fails(
        capsys, ["neurons", "merge", "--out", tmp_path / "m.safetensors", zh, other], [zh, other]
    )
    assert "unsharded neuron files cannot be merged" in msg


def test_merge_shards_of_different_splits(capsys, shards, tmp_path):
    third = write(make_set(n_docs=2, shard="2/3"), tmp_path / "t.safetensors")
    msg = fails(
        capsys,
        ["neurons", "merge", "--out", tmp_path / "m.safetensors", *shards, third],
        [*shards, third],
    )
    assert "different splits" in msg


def test_merge_shards_with_edited_doc_count(capsys, shards, tmp_path):
    # n_docs raised in one shard's header (selection then re-derived consistently by hand)
    big = make_set(n_docs=5, shard="1/2", seed=1)
    edited = write(big, tmp_path / "s1-edited.safetensors")
    msg = fails(
        capsys,
        ["neurons", "merge", "--out", tmp_path / "m.safetensors", shards[0], edited],
        [shards[0], edited],
    )
    assert "differ by more than one" in msg


def test_merge_variant_files(capsys, tmp_path):
    a = write(make_set(n_docs=2, shard="0/2", variant="minus-en"), tmp_path / "a.safetensors")
    b = write(
        make_set(n_docs=2, shard="1/2", variant="minus-en", seed=1), tmp_path / "b.safetensors"
    )
    msg = fails(capsys, ["neurons", "merge", "--out", tmp_path / "m.safetensors", a, b], [a, b])
    assert "variant" in msg


# --- class 3: variants ---------------------------------------------------------------------


@pytest.fixture
def minus_en(tmp_path) -> Path:
    ns = make_set()
    sel = {c: s.copy() for c, s in ns.selected.items()}
    sel["ffn"][0, 0] = False  # "an English neuron" removed
    return write(ns.with_selection(sel, variant="minus-en"), tmp_path / "zh.minus-en.safetensors")


def test_variant_file_loads(minus_en):
    """Control: a variant is a subset of what its counts imply, and loads."""
    assert load_neuron_set(minus_en).meta["variant"] == "minus-en"


def test_select_on_variant_would_restore_english(capsys, minus_en, tmp_path):
    msg = fails(
        capsys,
        [
            "neurons",
            "select",
            minus_en,
            "--min-fraction",
            "0.5",
            "--out",
            tmp_path / "sel.safetensors",
        ],
        [minus_en],
    )
    assert "'minus-en' variant" in msg and "put the removed neurons back" in msg
    assert not (tmp_path / "sel.safetensors").exists()


def test_variant_with_more_than_counts_imply(capsys, zh, tmp_path):
    ns = make_set()
    sel = {c: np.ones_like(s) for c, s in ns.selected.items()}  # a superset: not a variant
    bad = write(ns.with_selection(sel, variant="minus-en"), tmp_path / "bad.safetensors")
    msg = fails(capsys, ["neurons", "summary", bad], [bad])
    assert "selects ffn neurons its doc_counts do not" in msg or "selects attn_q" in msg


def test_subtract_from_shard_or_variant_or_itself(capsys, shards, minus_en, zh, tmp_path):
    en = write(make_set(lang="en", seed=3), tmp_path / "en.safetensors")
    out = tmp_path / "v.safetensors"
    assert "is a shard 0/2" in fails(
        capsys, ["neurons", "subtract", shards[0], "--minus", en, "--out", out], [shards[0], en]
    )
    assert "is a variant 'minus-en'" in fails(
        capsys, ["neurons", "subtract", minus_en, "--minus", en, "--out", out], [minus_en, en]
    )
    assert "own neurons" in fails(
        capsys, ["neurons", "subtract", zh, "--minus", zh, "--out", out], [zh]
    )
    assert not out.exists()


# --- class 3: internal consistency ---------------------------------------------------------


def test_edited_n_docs_below_counts(capsys, zh, tmp_path):
    bad = tamper(zh, tmp_path / "bad.safetensors", meta={"n_docs": "2"})
    assert "doc_counts outside 0..n_docs=2" in fails(capsys, ["neurons", "summary", bad], [bad])


def test_edited_n_docs_above_counts(capsys, zh, tmp_path):
    bad = tamper(zh, tmp_path / "bad.safetensors", meta={"n_docs": "40"})
    assert "selection differs from what doc_counts" in fails(
        capsys, ["neurons", "summary", bad], [bad]
    )


def test_negative_index(capsys, zh, tmp_path):
    idx = torch.tensor([-1], dtype=torch.int64)  # would wrap to the last unit
    counts = torch.zeros(6, dtype=torch.int32)
    bad = tamper(
        zh,
        tmp_path / "bad.safetensors",
        tensors={"layers.1.ffn": idx, "layers.1.ffn.doc_counts": counts},
    )
    assert "sorted, unique and in 0..5" in fails(capsys, ["neurons", "summary", bad], [bad])


@pytest.mark.parametrize(
    "idx", [[3, 1], [2, 2], [6]], ids=["unsorted", "duplicate", "out-of-range"]
)
def test_bad_indices(capsys, zh, tmp_path, idx):
    bad = tamper(
        zh,
        tmp_path / "bad.safetensors",
        tensors={"layers.0.ffn": torch.tensor(idx, dtype=torch.int64)},
    )
    assert "sorted, unique and in 0..5" in fails(capsys, ["neurons", "summary", bad], [bad])


def test_selection_not_implied_by_counts(capsys, zh, tmp_path):
    ns = load_neuron_set(zh)
    unselected = int(np.flatnonzero(~ns.selected["ffn"][1])[0])
    idx = torch.sort(
        torch.cat([torch.as_tensor(ns.indices(1, "ffn")), torch.tensor([unselected])])
    ).values
    bad = tamper(zh, tmp_path / "bad.safetensors", tensors={"layers.1.ffn": idx})
    assert "selection differs" in fails(capsys, ["neurons", "summary", bad], [bad])


def test_huge_n_layers_fails_before_allocating(capsys, zh, tmp_path):
    bad = tamper(zh, tmp_path / "bad.safetensors", meta={"n_layers": str(10**12)})
    start = time.perf_counter()
    msg = fails(capsys, ["neurons", "summary", bad], [bad])
    assert "'n_layers' = 1000000000000 is outside" in msg
    assert time.perf_counter() - start < 5  # a [10^12, n] allocation could not be this fast


@pytest.mark.parametrize(
    "meta, expect",
    [
        ({"n_layers": "1"}, "tensors do not match n_layers=1"),
        ({"n_layers": "two"}, "is not an integer"),
        ({"n_docs": "0"}, "'n_docs' = 0 is outside"),
        ({"n_docs": None}, "header has no 'n_docs'"),
        ({"units": json.dumps({"attn_q": 4, "ffn": 7})}, "expected I32[7]"),
        ({"units": json.dumps({"mlp": 6})}, "is not component -> positive count"),
        ({"units": "{"}, "is not JSON"),
        ({"min_fraction": "1.5"}, "'min_fraction' = 1.5 is outside"),
        ({"shard": "3/2"}, "shard marker '3/2' is out of range"),
    ],
    ids=[
        "n_layers-small",
        "n_layers-text",
        "n_docs-0",
        "n_docs-missing",
        "units-shape",
        "units-component",
        "units-json",
        "min_fraction",
        "shard-marker",
    ],
)
def test_bad_header_values(capsys, zh, tmp_path, meta, expect):
    bad = tamper(zh, tmp_path / "bad.safetensors", meta=meta)
    assert expect in fails(capsys, ["neurons", "summary", bad], [bad])


def test_bad_tensor_dtype_and_missing_tensor(capsys, zh, tmp_path):
    floats = tamper(
        zh,
        tmp_path / "f.safetensors",
        tensors={"layers.0.ffn.doc_counts": torch.zeros(6, dtype=torch.float32)},
    )
    assert "doc_counts is F32[6], expected I32[6]" in fails(
        capsys, ["neurons", "summary", floats], [floats]
    )
    gone = tamper(zh, tmp_path / "g.safetensors", tensors={"layers.1.attn_q": None})
    assert "missing ['layers.1.attn_q']" in fails(capsys, ["neurons", "summary", gone], [gone])


# --- class 7: terminal safety --------------------------------------------------------------


def test_summary_escapes_control_characters(capsys, tmp_path):
    ns = make_set()
    ns.meta.update(
        model="evil\x1b[2J\x1b[31m", language="zh\nforged: 0 neurons", variant="all\u202e"
    )
    f = write(ns, tmp_path / "evil.safetensors")
    before = digest([f])
    assert main(["neurons", "summary", str(f)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out and "\nforged" not in out
    assert "evil\\x1b[2J\\x1b[31m" in out and "zh\\nforged" in out and "all\\u202e" in out
    assert digest([f]) == before


def test_error_lines_escape_control_characters(capsys, tmp_path):
    a = make_set()
    a.meta["model"] = "a\x1b[31m"
    b = make_set(seed=1)
    b.meta["model"] = "b\nerror: forged"
    fa, fb = write(a, tmp_path / "a.safetensors"), write(b, tmp_path / "b.safetensors")
    fa2 = tamper(fa, tmp_path / "a2.safetensors", meta={"shard": "0/2"})
    fb2 = tamper(fb, tmp_path / "b2.safetensors", meta={"shard": "1/2"})
    msg = fails(
        capsys, ["neurons", "merge", "--out", tmp_path / "m.safetensors", fa2, fb2], [fa2, fb2]
    )
    assert "\x1b" not in msg and "differ in 'model'" in msg
    missing = tmp_path / "no\x1b[31mfile.safetensors"
    msg = fails(capsys, ["neurons", "summary", missing], [fa])
    assert "\x1b" not in msg and "no\\x1b[31mfile" in msg


# --- class 4: config (schema level; the dry runs are in tests/workflow/test_bad_config.py) ---


def test_schema_languages_equal_package_languages():
    """Drift: the schema's language enum is mwork.languages.LANGUAGES (the DAG reads the schema)."""
    assert config_schema()["$defs"]["language"]["enum"] == list(LANGUAGES)


def test_schema_root_and_sections_reject_unknown_keys():
    schema = config_schema()
    assert schema["additionalProperties"] is False
    for name, section in schema["properties"].items():
        if section.get("type") == "object" and "properties" in section:
            assert section.get("additionalProperties") is False, name


def _demo_config():
    return yaml.safe_load((SCHEMA_FILE.parents[3] / "demo" / "config.yaml").read_text())


@pytest.mark.parametrize(
    "edit, expect",
    [
        (lambda c: c.update(evalution=c.pop("evaluation")), "'evalution' was unexpected"),
        (lambda c: c["languages"]["detect"].append("xx"), "'xx' is not one of"),
        (lambda c: c["languages"]["detect"].append("../../x"), "'../../x' is not one of"),
        (
            lambda c: c["corpus"]["sources"].update({"../x": {"path": "x.jsonl"}}),
            "'../x' is not one of",
        ),
        (lambda c: c["evaluation"]["sweep"].update(langs=["zz"]), "'zz' is not one of"),
        (lambda c: c["detection"].update(shared_languages=["en", "EN"]), "'EN' is not one of"),
    ],
    ids=[
        "misspelt-section",
        "unknown-code",
        "traversal-code",
        "traversal-source",
        "sweep-lang",
        "shared-lang",
    ],
)
def test_schema_rejects(edit, expect):
    cfg = _demo_config()
    jsonschema.validate(cfg, config_schema())  # control: the demo config is valid
    edit(cfg)
    with pytest.raises(
        jsonschema.ValidationError, match=expect.replace("(", r"\(").replace(".", r"\.")
    ):
        jsonschema.validate(cfg, config_schema())
