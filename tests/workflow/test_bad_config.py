"""Config mistakes stop the workflow at start (issue 15, class 4): a dry run `snakemake -n` of the
tiny study exits 2 with one line `error: config: <problem>; <fix>`, and writes nothing.

Each case is one dry run (a few seconds); the schema-level cases without Snakemake are in
tests/unit/test_bad_input_files.py.
"""

import hashlib
import json

import pytest
import yaml
from wfhelpers import TARGET, snakemake, tiny_study_config


def dry_run_fails(wd, edit) -> str:
    cfg_path = tiny_study_config(wd)
    cfg = yaml.safe_load(cfg_path.read_text())
    edit(cfg, wd)
    cfg_path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False))
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in wd.rglob("*") if p.is_file()}
    res = snakemake(TARGET, "-n", "--configfile", str(cfg_path), cwd=wd, timeout=300)
    err = [
        line for line in res.stderr.strip().splitlines() if not line.startswith("Using workflow")
    ]
    assert res.returncode == 2, res.stdout[-2000:] + res.stderr[-2000:]
    assert len(err) == 1 and err[0].startswith("error: config: ") and "; " in err[0], err
    assert "Traceback" not in res.stdout + res.stderr
    after = {
        p: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in wd.rglob("*")
        if p.is_file()
        if ".snakemake" not in p.parts
    }
    assert after == before  # inputs untouched, nothing written
    return err[0]


def test_control_tiny_study_dry_run_passes(tmp_path):
    res = snakemake(TARGET, "-n", "--configfile", str(tiny_study_config(tmp_path)), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]


def _misspelt(cfg, wd):
    cfg["evalution"] = cfg.pop("evaluation")


def _traversal(cfg, wd):
    cfg["languages"]["detect"].append("../../x")
    cfg["corpus"]["sources"]["../../x"] = {"path": "x.jsonl"}


def _overlapping_split(cfg, wd):
    cfg["models"]["demo-llama"].update(n1=2, n2=2)  # 3 layers


def _sweep_beyond_model(cfg, wd):
    cfg["evaluation"]["sweep"].update(enabled=True, task="xquad", langs=["zh"], n1=[1], n2=[3])


def _label_beyond_model(cfg, wd):
    cfg["evaluation"]["tasks"]["xquad"]["conditions"] = ["D_U", "D_S-n1_2-n2_2"]


def _local_layer_count(cfg, wd):
    (wd / "results/demo/model").mkdir(parents=True)
    (wd / "results/demo/model/config.json").write_text(json.dumps({"num_hidden_layers": 5}))


@pytest.mark.parametrize(
    "edit, expect",
    [
        (_misspelt, "error: config: unknown key evalution; did you mean 'evaluation'?"),
        (
            lambda c, wd: c["detection"].pop("shared_languages"),  # the paper's en es fr zh ru
            "error: config: detection.shared_languages lists es, fr, ru, which languages.detect",
        ),
        (_traversal, "languages.detect.2: '../../x' is not one of"),
        (
            lambda c, wd: c["evaluation"]["tasks"]["xquad"].update(langs=["en", "xx"]),
            "'xx' is not one of",
        ),
        (_overlapping_split, "models.demo-llama: n1 + n2 = 2 + 2 exceeds its 3 layers"),
        (_sweep_beyond_model, "evaluation.sweep.n2: D_G-n2_3 needs N1 + N2 = 1 + 3 layers"),
        (
            _label_beyond_model,
            "D_S-n1_2-n2_2 needs N1 + N2 = 2 + 2 layers but model demo-llama has 3",
        ),
        (
            _local_layer_count,
            "models.demo-llama.n_layers is 3 but results/demo/model/config.json has 5",
        ),
    ],
    ids=[
        "misspelt-section",
        "shared-languages-not-detected",
        "traversal-code",
        "unknown-task-lang",
        "n1+n2",
        "sweep",
        "label",
        "local-config-json",
    ],
)
def test_bad_config_stops_the_dry_run(tmp_path, edit, expect):
    assert expect in dry_run_fails(tmp_path, edit)
