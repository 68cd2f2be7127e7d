#!/usr/bin/env bash
# PostgreSQL on 127.0.0.1:5432 (user `postgres`, trust) and Redis on 127.0.0.1:6379 for the tests.
#
#   scripts/services.sh up     start what is not already listening (installs from Debian's packages
#                              when missing and allowed: root with apt-get)
#   scripts/services.sh down   stop what `up` started (by the PID files it wrote), nothing else
#
# A machine that already serves those ports is left alone. Without the programs and without the
# right to install them, `up` says so and exits 0: the tests that need them then skip with the
# reason (and fail in CI, where CI=true).
set -euo pipefail

STATE="${KUBELABEL_SERVICES_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kubelabel/services}"
# As root the server runs as `postgres`, which cannot enter root's home: its data goes to its own.
if [[ $(id -u) -eq 0 ]]; then PG_DIR="${KUBELABEL_PG_DIR:-/var/lib/postgresql/kubelabel-tests}"; else PG_DIR="$STATE/postgres"; fi
REDIS_PID="$STATE/redis.pid"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
say() { echo "services: $*" >&2; }

can_install() { [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; }
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  [[ -n "${_apt_updated:-}" ]] || { apt-get update -qq >/dev/null; _apt_updated=1; }
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

pg_bin() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [[ -x "$d/initdb" ]] && { echo "$d"; return 0; }
  done
  return 1
}

# Runs a PostgreSQL program as the owner of the data directory (initdb refuses root).
as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

postgres_up() {
  if port_open 5432; then say "PostgreSQL already listening on 127.0.0.1:5432; left alone"; return; fi
  local bin
  if ! bin=$(pg_bin); then
    if can_install; then apt_install postgresql; bin=$(pg_bin); else
      say "PostgreSQL not installed (apt-get install postgresql); its tests will skip"; return; fi
  fi
  mkdir -p "$STATE"
  if [[ ! -s "$PG_DIR/PG_VERSION" ]]; then
    rm -rf "$PG_DIR"; mkdir -p "$PG_DIR"
    if [[ $(id -u) -eq 0 ]]; then chown postgres: "$PG_DIR"; fi
    chmod 700 "$PG_DIR"
    as_pg "$bin/initdb" -D "$PG_DIR" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  # Several test servers run at once (pytest-xdist), each with its own connection pool.
  as_pg "$bin/pg_ctl" -D "$PG_DIR" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p 5432 -k /tmp -c max_connections=400 -c shared_buffers=256MB" start >/dev/null
  # The tests' admin connection (tests/support/services.POSTGRES_URL) names the database `test`.
  if [[ -z $(as_pg "$bin/psql" -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'") ]]; then
    as_pg "$bin/psql" -h 127.0.0.1 -U postgres -d postgres -qc 'CREATE DATABASE test'
  fi
  say "PostgreSQL started on 127.0.0.1:5432 (data $PG_DIR)"
}

redis_up() {
  if port_open 6379; then say "Redis already listening on 127.0.0.1:6379; left alone"; return; fi
  if ! command -v redis-server >/dev/null 2>&1; then
    if can_install; then apt_install redis-server; else
      say "redis-server not installed (apt-get install redis-server); its tests will skip"; return; fi
  fi
  mkdir -p "$STATE"
  redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no --daemonize yes \
    --pidfile "$REDIS_PID" --logfile "$STATE/redis.log" --dir "$STATE"
  for _ in $(seq 50); do port_open 6379 && break; sleep 0.1; done
  say "Redis started on 127.0.0.1:6379"
}

down() {
  local bin
  if [[ -f "$PG_DIR/postmaster.pid" ]] && bin=$(pg_bin); then
    as_pg "$bin/pg_ctl" -D "$PG_DIR" -m fast -w stop >/dev/null && say "PostgreSQL stopped"
  fi
  if [[ -f "$REDIS_PID" ]]; then
    kill "$(cat "$REDIS_PID")" 2>/dev/null && say "Redis stopped"
    rm -f "$REDIS_PID"
  fi
}

case "${1:-up}" in
  up) postgres_up; redis_up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
