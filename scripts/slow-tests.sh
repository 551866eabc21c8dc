#!/usr/bin/env bash
# The slow tests (real models, minutes each), left out of the default `python -m pytest`:
# Qwen2.5-Coder-0.5B is pulled on first use (`codeswift models pull qwen2.5-coder-0.5b`);
# CODESWIFT_E2E_MODEL picks another model. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
# The pulled models live in the user's cache (tests/conftest.py otherwise points at a scratch one).
export CODESWIFT_CACHE="${CODESWIFT_CACHE:-$HOME/.cache/codeswift}"
exec python -m pytest -m slow -s "$@"
