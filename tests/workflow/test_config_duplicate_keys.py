"""A config file that repeats a key stops the workflow at start (issue 26, class 5).

Snakemake's own YAML loader keeps the last of two equal keys silently (a second `detection:`
section replaces the first: `n_docs` 8 -> 1000). rules/common.smk re-reads every config file
with a loader that refuses the repeat: `snakemake -n` exits 2 with one `error: config:` line that
names the key and both lines, and writes nothing.
"""

import hashlib

from wfhelpers import TARGET, snakemake, tiny_study_config


def test_repeated_section_stops_the_dry_run(tmp_path):
    cfg_path = tiny_study_config(tmp_path)
    text = cfg_path.read_text()
    n = len(text.splitlines())
    cfg_path.write_text(text + "\ndetection:\n  n_docs: 1000\n")
    before = {
        p: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.rglob("*") if p.is_file()
    }
    res = snakemake(TARGET, "-n", "--configfile", str(cfg_path), cwd=tmp_path, timeout=300)
    err = [l for l in res.stderr.strip().splitlines() if not l.startswith("Using workflow")]
    assert res.returncode == 2, res.stdout[-2000:] + res.stderr[-2000:]
    assert len(err) == 1 and err[0].startswith("error: config: "), err
    assert "key 'detection' appears twice" in err[0] and f"and {n + 2})" in err[0], err
    after = {
        p: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in tmp_path.rglob("*")
        if p.is_file() and ".snakemake" not in p.parts
    }
    assert after == before
