#!/usr/bin/env bash
# Sets everything up on a fresh Debian machine, builds the Lai Châu demo into the embedded SQLite
# registry (layers, DEM, coverage, maps) and serves the app on http://127.0.0.1:5000.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh demo
export FLASK_APP=registry
.venv/bin/flask demo
exec .venv/bin/flask run --host "${HOST:-127.0.0.1}" --port "${PORT:-5000}"
