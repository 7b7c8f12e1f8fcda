#!/usr/bin/env bash
# A throwaway PostgreSQL 15 for tests and trials, in a folder of its own on a
# free 127.0.0.1 port. Runs as the `postgres` user when started by root
# (initdb refuses root), as the caller otherwise.
#   pg-test-server.sh start DIR   initdb + start; prints the URI (also DIR/uri)
#   pg-test-server.sh stop DIR    immediate stop and removes DIR
# fsync is off: tests kill provp processes, never the machine.
set -euo pipefail
cmd="${1:-}"
dir="${2:-}"
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
bin="${PROVP_PG_BIN:-/usr/lib/postgresql/15/bin}"
[ -x "$bin/initdb" ] || { echo "$0: no $bin/initdb (apt-get install postgresql)" >&2; exit 2; }
as_pg=()
if [ "$(id -u)" -eq 0 ]; then as_pg=(runuser -u postgres --); fi

case "$cmd" in
start)
  # A folder left by a killed run: stop what may still run there, start over.
  if [ -d "$dir/data" ]; then
    "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
  fi
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then chown postgres "$dir"; fi
  "${as_pg[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
  for attempt in 1 2 3 4 5; do
    # A free port from the kernel; another process may take it before the
    # server binds, hence the retries.
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    if "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" \
        >/dev/null 2>&1; then
      uri="postgresql://postgres@127.0.0.1:$port/postgres"
      echo "$uri" >"$dir/uri"
      echo "$uri"
      exit 0
    fi
  done
  cat "$dir/server.log" >&2 || true
  exit 1
  ;;
stop)
  if [ -d "$dir/data" ]; then
    "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  ;;
*)
  echo "usage: $0 start|stop DIR" >&2
  exit 2
  ;;
esac
