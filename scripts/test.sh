#!/usr/bin/env bash
# The README's test command: install, lint, type-check, then run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
RIG_EXTRAS=dev,ray,robotics bash scripts/setup.sh
"$PYTHON" -m ruff check rig envs tests scripts
"$PYTHON" -m ruff format --check rig envs tests scripts
"$PYTHON" -m mypy rig envs
"$PYTHON" -m pytest -q "$@"
