#!/usr/bin/env bash
# Starts a throwaway PostgreSQL + PostGIS cluster on 127.0.0.1 for the tests and prints its URL.
# Usage: eval "$(scripts/postgis.sh start DIR)"; scripts/postgis.sh stop DIR
set -euo pipefail
cmd="$1"; dir="$2"; port="${REGISTRY_TEST_PG_PORT:-54329}"
bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)"
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case "$cmd" in
start)
  mkdir -p "$dir"
  [ "$(id -u)" -ne 0 ] || chown postgres "$dir"
  as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust >/dev/null
  as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c full_page_writes=off" start >/dev/null
  as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -q -c "CREATE DATABASE registry_test" >/dev/null
  as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d registry_test -q \
    -c "CREATE EXTENSION postgis" >/dev/null
  echo "export REGISTRY_TEST_POSTGIS_URL=postgresql+psycopg://postgres@127.0.0.1:$port/registry_test"
  ;;
stop)
  as_pg "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null || true
  rm -rf "$dir"
  ;;
esac
