#!/usr/bin/env bash
# Install everything (scripts/setup.sh), lint (ruff) and type-check (mypy), then run the whole test suite.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy
exec .venv/bin/python -m pytest --durations=15 "$@"
