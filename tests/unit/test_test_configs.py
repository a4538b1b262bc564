"""The committed tiny configs of .test/ (what the workflow tests run; README there): the demo-derived
ones keep demo/config.yaml's keys, so a key added to or renamed in the demo shows up here first."""

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TESTDIR = ROOT / ".test"
# below these, keys are names (languages, tasks), not settings
NAMES = {"corpus.sources", "evaluation.tasks", "demo.world.language_weights", "finetune.tasks"}


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _keys(cfg: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in cfg.items():
        out.add(prefix + k)
        if isinstance(v, dict) and prefix + k not in NAMES:
            out |= _keys(v, f"{prefix}{k}.")
    return out


def test_every_committed_config_is_documented():
    configs = sorted(p.name for p in TESTDIR.glob("config_*.yaml"))
    assert configs == [
        "config_demo.yaml",
        "config_model.yaml",
        "config_tiny.yaml",
        "config_vllm.yaml",
    ]
    readme = (TESTDIR / "README.md").read_text(encoding="utf-8")
    assert all(f".test/{name}" in readme for name in configs)


# config_vllm.yaml adds the backend keys the demo (hf, the schema default) leaves out
VLLM_KEYS = {
    "evaluation.backend",
    "evaluation.vllm",
    "evaluation.vllm.max_model_len",
    "evaluation.vllm.cpu_kvcache_gib",
}


@pytest.mark.parametrize(
    "name, dropped, added",
    [("tiny", {"finetune"}, set()), ("demo", set(), set()), ("vllm", {"finetune"}, VLLM_KEYS)],
)
def test_demo_derived_configs_keep_the_demo_keys(name, dropped, added):
    demo = _load(ROOT / "demo" / "config.yaml")
    cfg = _load(TESTDIR / f"config_{name}.yaml")
    expected = {k for k in _keys(demo) if k.split(".")[0] not in dropped} | added
    assert _keys(cfg) == expected
    langs = cfg["languages"]["detect"]
    assert cfg["demo"]["languages"] == cfg["detection"]["shared_languages"] == langs
    assert list(cfg["corpus"]["sources"]) == langs
    assert all(set(t["langs"]) <= set(langs) for t in cfg["evaluation"]["tasks"].values())


def test_model_config_inputs_are_committed():
    cfg = _load(TESTDIR / "config_model.yaml")
    for src in cfg["corpus"]["sources"].values():
        assert (ROOT / src["path"]).is_file(), src
    assert cfg["models"]["tiny"]["path"] == ".test/model"  # written by the set-up step
    assert "model/" in (TESTDIR / ".gitignore").read_text().split()
