#!/usr/bin/env bash
# Sets everything up on a fresh Debian machine, builds the Lai Châu demo into the embedded SQLite
# registry (layers, DEM, coverage, maps) and serves the app on http://127.0.0.1:5000.
# The first run creates an admin and prints its password (reading needs no sign-in; writing does).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh demo
export FLASK_APP=registry
.venv/bin/flask db upgrade
.venv/bin/flask demo
if [ -z "$(.venv/bin/flask users list)" ]; then
  password="$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(12))')"
  echo "$password" | .venv/bin/flask users create admin --role admin --password-stdin
  echo "Sign in as admin with password: $password (change it on the Users page)"
fi
# The development server speaks plain HTTP: let the session cookie travel over it.
export REGISTRY_SESSION_COOKIE_SECURE=false
exec .venv/bin/flask run --host "${HOST:-127.0.0.1}" --port "${PORT:-5000}"
