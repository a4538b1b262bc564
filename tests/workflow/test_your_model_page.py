"""docs/your-model.md, followed literally: every ```bash block of the page runs, in order, as one
script from the repository root, with only the study folder ($STUDY) moved to a temporary one.
The page's model (stories260K), corpora and X-CSQA rows are the real ones of ../shared/realdata.
It must reach the tables, the figures and the report with no manual step, and write nothing
outside the study folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from testhelpers import realdata

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "your-model.md"
MODEL = "stories260K"


def page_script(study: Path) -> str:
    """The page's bash blocks, in order, with the STUDY= line pointing at `study`."""
    blocks = re.findall(r"^```bash\n(.*?)^```", PAGE.read_text(encoding="utf-8"), re.M | re.S)
    script = "\n".join(blocks)
    assert script.count("\nSTUDY=") == 1, "the page defines STUDY once"
    return re.sub(r"^STUDY=.*$", f"STUDY={study}", script, flags=re.M)


def test_the_page_runs_top_to_bottom(tmp_path: Path) -> None:
    for part in ("models/stories260K", "corpus/en.jsonl", "corpus/fr.jsonl", "benchmarks/xcsqa"):
        realdata(*part.split("/"))
    study = tmp_path / "study"
    script = page_script(study)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    res = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    # mwork init's and mwork plan's messages, as the page describes them
    assert f"wrote {study}/config.yaml" in res.stdout
    assert "xcsqa: baseline en fr" in res.stdout and "D_U: fr" in res.stdout
    assert "0 warning(s)" in res.stdout
    results = study / "results" / MODEL
    assert (results / "neurons" / "fr.safetensors").is_file()
    table = (results / "tables" / "tables2_5_summary.md").read_text(encoding="utf-8")
    assert "D_U" in table
    assert sorted(p.name for p in (study / "results" / "figures").glob("*.pdf"))
    report = study / "report.html"
    assert report.is_file() and report.stat().st_size > 10_000
    assert not (ROOT / "results" / MODEL).exists()  # nothing in the clone: -d keeps it apart
    assert not (ROOT / "report.html").exists()
