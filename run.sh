#!/usr/bin/env bash
# Developer entry point: each command sets up its own virtualenv (.venv) on first use.
#   bash run.sh test     install + format/lint checks + the test suite (what CI runs)
#   bash run.sh lint     only the format/lint checks (ruff, snakefmt, snakemake --lint) and the
#                        docs site (mkdocs build --strict into the git-ignored site/)
#   bash run.sh demo     install + run the embedded demo end to end (offline, 2 CPU cores)
#   bash run.sh setup    only create/refresh .venv
# Needs only Python >= 3.11 with venv (Debian/Ubuntu: apt-get install python3-venv).
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"   # pinned: an unpinned torch pulls GBs of CUDA wheels
UV_SPEC="uv==0.13.9"

setup() {
  local stamp="$VENV/.mwork-installed"
  if [[ -f "$stamp" && "$stamp" -nt pyproject.toml ]]; then return; fi
  "$PY" -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is required"'
  [[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
  # torch through pip (it honours local wheel folders and pip's constraints); --no-compile: only the
  # modules a run imports get byte-compiled, on first import (see PYTHONDONTWRITEBYTECODE below)
  "$VENV/bin/python" -m pip install -q --no-compile "$TORCH_SPEC"
  # the rest through uv (same versions, ~5x faster than pip); pip if uv cannot (MWORK_INSTALLER=pip)
  if [[ "${MWORK_INSTALLER:-uv}" == uv ]] &&
    "$VENV/bin/python" -m pip install -q --no-compile "$UV_SPEC" &&
    "$VENV/bin/uv" pip install -q --python "$VENV/bin/python" -e ".[dev]"; then
    :
  else
    echo "run.sh: installing with pip" >&2
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q --no-compile -e ".[dev]"
  fi
  touch "$stamp"
}

export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" HF_DATASETS_OFFLINE="${HF_DATASETS_OFFLINE:-1}"
export TOKENIZERS_PARALLELISM=false
# Byte-compile on first import, into .venv and the repository's (git-ignored) __pycache__ folders:
# with PYTHONDONTWRITEBYTECODE set and nothing compiled at install, every job would recompile
# transformers and lm-eval from source (~2x slower evaluation jobs, measured).
unset PYTHONDONTWRITEBYTECODE
lint() {
  "$VENV/bin/ruff" check .
  "$VENV/bin/ruff" format --check .
  "$VENV/bin/snakefmt" --check Snakefile rules/
  "$VENV/bin/python" -m snakemake --lint
  # the docs site: a broken link, anchor or nav entry fails (mkdocs.yml validation); no --quiet,
  # which would hide the warnings that strict mode counts
  "$VENV/bin/mkdocs" build --strict --site-dir site
}

case "${1:-}" in
  setup) setup ;;
  lint)
    setup
    lint
    ;;
  test)
    setup
    shift
    lint
    "$VENV/bin/python" -m pytest -q "$@"
    ;;
  demo)
    setup
    shift
    start=$(date +%s)
    "$VENV/bin/python" -m snakemake --configfile demo/config.yaml --cores 2 \
      --report results/report.html --report-after-run "$@"
    echo
    echo "Demo finished in $(( $(date +%s) - start )) s. Results:"
    echo "  report (every figure and table):  results/report.html"
    echo "  figures (PDF + PNG):              results/figures/"
    for d in results/*/tables results/*/ppl results/*/neurons; do
      [[ -d "$d" ]] && echo "  $(printf '%-33s' "${d#results/}:") $d/"
    done
    ;;
  *) echo "usage: bash run.sh {test|lint|demo|setup} [extra args]" >&2; exit 2 ;;
esac
