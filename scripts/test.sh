#!/usr/bin/env bash
# Sets everything up on a fresh Debian machine, checks format, lint and types (ruff, mypy), and
# runs the whole test suite on SQLite and PostGIS (a PostGIS that cannot start fails the run).
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
.venv/bin/ruff format --check .
.venv/bin/ruff check .
.venv/bin/mypy
pgdir="$(mktemp -d /tmp/registry-pg.XXXXXX)"
trap 'scripts/postgis.sh stop "$pgdir"' EXIT
eval "$(scripts/postgis.sh start "$pgdir")"
.venv/bin/python -m pytest "$@"
