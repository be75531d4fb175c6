#!/usr/bin/env bash
# Install albert-ner into a virtual environment. Idempotent: a second run installs nothing new.
#
#   scripts/setup.sh            .venv: the package with its test extras (what scripts/test.sh runs)
#   scripts/setup.sh --runtime  .venv-job: the package with its runtime dependencies only (what
#                               scripts/main_job.sh runs, and what the image ships), so that the main job
#                               proves those dependencies are enough and a newcomer downloads no PyTorch,
#                               transformers, SageMaker SDK or Jupyter to run it
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
    "") venv=.venv; requirement=".[test]" ;;
    --runtime) venv=.venv-job; requirement="." ;;
    *) echo "setup: unknown argument '$1' (expected none, or --runtime)" >&2; exit 2 ;;
esac
PYTHON=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
    "$PYTHON" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -e "$requirement"
