#!/usr/bin/env bash
# The README's test command: install, lint, type-check, run the test suite, then build the docs site.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
RIG_EXTRAS=dev,ray,robotics,docs bash scripts/setup.sh
"$PYTHON" -m ruff check rig envs tests scripts
"$PYTHON" -m ruff format --check rig envs tests scripts
"$PYTHON" -m mypy rig envs
"$PYTHON" -m pytest -q "$@"
NO_MKDOCS_2_WARNING=1 "$PYTHON" -m mkdocs build --strict --site-dir "${RIG_SITE_DIR:-site}"
