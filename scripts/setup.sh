#!/usr/bin/env bash
# Prepares a fresh Debian machine: system packages (when missing), a virtualenv in .venv and
# the project installed into it. Usage: scripts/setup.sh [demo|test]
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-demo}"

# Debian packages each mode needs; installed only when missing.
pkgs=(python3-venv)
if [ "$mode" = test ]; then
  # PostGIS for the second storage backend, GDAL as the viewshed reference, Chromium for the
  # browser tests (driven by the playwright package; no browser is downloaded).
  pkgs+=(postgresql postgresql-15-postgis-3 gdal-bin libgdal-dev chromium)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "$mode" = test ]; then
  .venv/bin/pip install -q -e '.[dev]'
  # GDAL's Python bindings must match the system library; used as the reference in tests.
  if ! .venv/bin/python -c "import osgeo.gdal" 2>/dev/null; then
    .venv/bin/pip install -q wheel "setuptools>=68"
    .venv/bin/pip install -q --no-build-isolation "GDAL==$(gdal-config --version)"
  fi
else
  .venv/bin/pip install -q -e .
fi
