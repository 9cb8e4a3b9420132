#!/usr/bin/env bash
# The gates: ruff lint, ruff format and mypy (settings in pyproject.toml). Needs .venv with the
# dev extra: python3 -m venv .venv && .venv/bin/pip install -e '.[test,dev]'
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check imgindex tests scripts
.venv/bin/ruff format --check imgindex tests scripts
.venv/bin/mypy
