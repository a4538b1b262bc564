"""CLI bad-input helpers shared by the integration tests: file digests and the exit-2 check."""

import hashlib
from pathlib import Path

from mwork.cli import main


def digest(paths) -> dict[str, str]:
    """sha256 of every file among `paths` (folders recursively)."""
    out = {}
    for p in map(Path, paths):
        for f in [p] if p.is_file() else sorted(x for x in p.rglob("*") if x.is_file()):
            out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def fails(capsys, argv, inputs) -> str:
    """Run the CLI; assert exit 2, one `error: problem; fix` line (the last), inputs untouched."""
    before = digest(inputs)
    assert before, "a case without input files checks nothing"
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, (code, err)
    errors = [line for line in err if line.startswith("error: ")]
    assert len(errors) == 1 and err[-1] == errors[0] and "; " in errors[0], err
    assert not any("Traceback" in line for line in err), err
    assert digest(inputs) == before
    return errors[0]
