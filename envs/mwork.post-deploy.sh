#!/usr/bin/env bash
# Install the mwork package into the freshly created conda env. Snakemake runs this from the
# working directory, which for this workflow is the repository root (run snakemake from there).
set -euo pipefail
pip install --no-deps "${PWD}"
