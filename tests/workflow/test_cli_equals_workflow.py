"""The CLI and the workflow share their defaults (the config schema's): for the same model and the
same raw corpus files, `mwork detect`, `mwork lape record` and `mwork lape select` with no
settings flags write the workflow's neuron files byte for byte (issue 25, part 4 and 7).

The run directory holds the real stories260K model under its alias (`stories260K`, so
`--model stories260K` names it as the workflow does) and the first 40 lines of the real English
and French detection corpora; the config sets only what a study must (models, languages,
corpus sources, shared_languages), compare_lape for the LAPE sets and an evaluation section (a
model without one gets no LAPE sets; it is not run here)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from testhelpers import realdata
from wfhelpers import snakemake

from mwork.cli import main

LANGS = ("en", "fr")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    wd = tmp_path_factory.mktemp("cli_eq")
    (wd / "stories260K").symlink_to(realdata("models", "stories260K"))
    for lang in LANGS:
        lines = realdata("corpus", f"{lang}.jsonl").read_text(encoding="utf-8").splitlines()
        (wd / f"raw_{lang}.jsonl").write_text("\n".join(lines[:40]) + "\n", encoding="utf-8")
    config = {
        "models": {"stories260K": {"path": "stories260K", "n_layers": 5, "n1": 1, "n2": 1}},
        "languages": {"detect": list(LANGS)},
        "corpus": {"sources": {l: {"path": f"raw_{l}.jsonl"} for l in LANGS}},
        "detection": {"shared_languages": list(LANGS), "compare_lape": True},
        # a deactivation study (never run here: neurons_only), so both detectors run
        "evaluation": {
            "local": {"xcsqa": str(realdata("benchmarks", "xcsqa")) + "/{lang}.jsonl"},
            "tasks": {"xcsqa": {"langs": list(LANGS)}},
            "sweep": {"enabled": False},
        },
    }
    (wd / "config.yaml").write_text(yaml.safe_dump(config))
    res = snakemake("neurons_only", "--configfile", "config.yaml", "--cores", "2", cwd=wd)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return wd


def test_detect_cli_writes_the_workflow_neuron_file(run: Path, monkeypatch) -> None:
    monkeypatch.chdir(run)
    for lang in LANGS:
        out = f"cli_{lang}.safetensors"
        args = ["detect", "--model", "stories260K", "--corpus", f"raw_{lang}.jsonl"]
        assert main([*args, "--lang", lang, "--out", out]) == 0
        workflow = run / "results" / "stories260K" / "neurons" / f"{lang}.safetensors"
        assert (run / out).read_bytes() == workflow.read_bytes(), lang


def test_lape_cli_writes_the_workflow_lape_sets(run: Path, monkeypatch) -> None:
    monkeypatch.chdir(run)
    for lang in LANGS:
        args = ["lape", "record", "--model", "stories260K", "--corpus", f"raw_{lang}.jsonl"]
        assert main([*args, "--lang", lang, "--out", f"rec_{lang}.safetensors"]) == 0
    recordings = [f"rec_{lang}.safetensors" for lang in LANGS]
    assert main(["lape", "select", *recordings, "--out-dir", "lape_cli"]) == 0
    for lang in LANGS:
        workflow = run / "results" / "stories260K" / "neurons_lape" / f"{lang}.safetensors"
        assert (run / "lape_cli" / f"{lang}.safetensors").read_bytes() == workflow.read_bytes()


def test_neuron_file_header_says_how_to_reproduce_it(run: Path) -> None:
    from mwork.neuronset import load_neuron_set

    ns = load_neuron_set(run / "results" / "stories260K" / "neurons" / "fr.safetensors")
    assert ns.meta["reproduce"] == "mwork detect --model MODEL --corpus CORPUS --lang fr --out OUT"


def test_compare_cli_on_the_two_languages(run: Path, capsys) -> None:
    neurons = run / "results" / "stories260K" / "neurons"
    csv = run / "compare.csv"
    args = ["neurons", "compare", str(neurons / "en.safetensors"), str(neurons / "fr.safetensors")]
    assert main([*args, "--csv", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "share_of_b = |A∩B|/|B| (Eq. 11, y = B)" in out
    assert (
        csv.read_text().splitlines()[0]
        == "component,layer,n_a,n_b,n_both,share_of_a,share_of_b,jaccard"
    )
