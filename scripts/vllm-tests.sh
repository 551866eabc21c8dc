#!/usr/bin/env bash
# `codeswift serve --engine vllm` against the real vLLM CPU engine: `codeswift setup vllm` (a
# separate environment, ~/.cache/codeswift/vllm/venv or $CODESWIFT_VLLM_VENV; about 4 minutes the
# first time, seconds when it is already there, plus its probe), then the slow tests that start
# vLLM servers on a tiny random model (tests/service/test_vllm_real.py). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${CODESWIFT_VLLM_VENV:-$HOME/.cache/codeswift/vllm/venv}"
start=$(date +%s)
codeswift setup vllm --venv "$venv"
setup_done=$(date +%s)
CODESWIFT_VLLM_PYTHON="$venv/bin/python" python -m pytest -m slow -q tests/service/test_vllm_real.py "$@"
end=$(date +%s)
echo "vllm-tests: setup $((setup_done - start)) s, tests $((end - setup_done)) s"
