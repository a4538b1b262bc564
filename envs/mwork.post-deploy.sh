#!/usr/bin/env bash
# Snakemake runs this inside the freshly created conda env (envs/mwork.yaml pins every dependency).
# It installs the mwork package itself, found next to this script (../pyproject.toml), so it works
# from any working directory, e.g. `snakemake -s /opt/mwork/Snakefile -d /scratch/run --sdm conda`.
# Where the workflow source is remote (a snakedeploy `module` from GitHub), Snakemake runs a copy
# of this script from a temporary file: then set MWORK_PIP_SPEC to a pip requirement for the same
# release, e.g. MWORK_PIP_SPEC="git+https://github.com/OWNER/mwork@v0.1.0".
set -euo pipefail
src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -n "${MWORK_PIP_SPEC:-}" ]]; then
  pip install --no-deps "$MWORK_PIP_SPEC"
elif grep -qs '^name = "mwork"' "$src/pyproject.toml"; then
  pip install --no-deps "$src"
else
  echo "error: no mwork source next to $0 (remote workflow source); set MWORK_PIP_SPEC to a pip requirement for this release" >&2
  exit 2
fi
