#!/usr/bin/env bash
# The run command: brings the whole stack up on this machine and says where everything is.
#   - With a working Docker engine: docker compose (docker/compose.yaml), everything in containers.
#   - Without one: the native services (scripts/services.sh: Kafka, PostgreSQL, Prometheus), the schema migration,
#     `tickwatch doctor`, then `tickwatch run` in the background: the supervisor of the workers (ingestion, writers,
#     metrics), each a child process with its own /metrics and log file.
#
#   bash scripts/stack.sh up [--source live|replay] [capture files...]   start (idempotent)
#   bash scripts/stack.sh down                                           stop the workers and the services
#   bash scripts/stack.sh status                                         what runs where
#
# Replay runs the same pipeline on recorded captures instead of the live exchange, e.g.
#   bash scripts/stack.sh up --source replay ../shared/data/binance-spot/*.gz
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"
STATE=${TICKWATCH_STATE:-${TICKWATCH_HOME:-$HOME/.cache/tickwatch}/state}
RUN=$STATE/workers
mkdir -p "$RUN"

say() { printf '[stack] %s\n' "$*"; }

use_docker() {
  [ "${TICKWATCH_NATIVE:-}" != 1 ] && command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1
}

# The workers run under one supervisor, `tickwatch run` (stack/cli.ts): ingestion, writers and the metrics worker as its
# child processes, each with its own /metrics, restarted if they crash, all stopped on SIGTERM.
LEGACY_WORKERS=(ingestion writer metrics)  # per-worker pid files of earlier versions of this script

running() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

stop_pid() { # name: SIGTERM, wait (the supervisor stops its children first), SIGKILL as the last resort
  local name=$1 pid
  running "$name" || { rm -f "$RUN/$name.pid"; return 0; }
  pid=$(cat "$RUN/$name.pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 240); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$RUN/$name.pid"
  say "$name stopped"
}

up() {
  local source=live files=()
  while [ $# -gt 0 ]; do
    case $1 in
      --source) source=$2; shift 2 ;;
      --source=*) source=${1#--source=}; shift ;;
      *) files+=("$1"); shift ;;
    esac
  done
  if use_docker; then
    [ "$source" = live ] || { say "replay under Docker: run 'docker compose -f docker/compose.yaml run --rm ingestion replay <files>'"; }
    # Grafana refuses a default admin password: make one once and keep it in docker/.env (git-ignored).
    if [ -z "${GRAFANA_ADMIN_PASSWORD:-}" ] && ! grep -qs '^GRAFANA_ADMIN_PASSWORD=' docker/.env; then
      echo "GRAFANA_ADMIN_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')" >>docker/.env
      say "generated a Grafana admin password in docker/.env"
    fi
    docker compose -f docker/compose.yaml up -d --build
    say "Grafana http://localhost:3000  Prometheus http://localhost:9090  Mail inbox http://localhost:8025"
    return
  fi
  say "no Docker engine: using the native services"
  [ -d node_modules ] || npm ci --no-audit --no-fund
  bash scripts/services.sh up
  eval "$(bash scripts/services.sh env)"
  export KAFKA_BROKERS DATABASE_URL
  # The writers and the metrics worker log in as roles of their own, which migrate creates (sql/roles.sql): their
  # passwords are made once and kept in the state folder (a .env may set others).
  if [ ! -s "$STATE/roles.env" ]; then
    mkdir -p "$STATE"
    ( umask 077
      for v in WRITER_DB_PASSWORD METRICS_DB_PASSWORD; do echo "$v=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"; done >"$STATE/roles.env" )
  fi
  set -a; . "$STATE/roles.env"; set +a
  [ "$source" = live ] || [ "$source" = replay ] || { say "--source must be live or replay"; exit 2; }
  [ "$source" = live ] || [ ${#files[@]} -gt 0 ] || { say "--source replay needs capture files"; exit 2; }
  if running run; then say "already running (pid $(cat "$RUN/run.pid")): 'bash scripts/stack.sh down' first to change the source"; status; return; fi
  # The workers run compiled (dist/, no TypeScript loader): built from the tree as it is now.
  npm run -s build
  ( set -a; [ -f .env ] && . ./.env; set +a; node dist/bin/tickwatch.js migrate )
  # What is missing or wrong, with a fix for each (an unreachable exchange is said here, plainly); never fatal here.
  ( set -a; [ -f .env ] && . ./.env; set +a; node dist/bin/tickwatch.js doctor --source "$source" ) || say "doctor found problems (above): starting anyway"
  local args=(--source "$source" --log-dir "$RUN")
  [ "$source" = replay ] && args+=("${files[@]}")
  ( set -a; [ -f .env ] && . ./.env; set +a
    exec nohup node dist/bin/tickwatch.js run "${args[@]}" >>"$RUN/run.log" 2>&1 ) &
  echo $! >"$RUN/run.pid"
  say "supervisor started (pid $!), log $RUN/run.log; workers log to $RUN/<worker>.log"
  for _ in $(seq 1 60); do grep -q 'stop with Ctrl-C' "$RUN/run.log" 2>/dev/null && break; running run || break; sleep 0.5; done
  running run || { say "the supervisor exited: see $RUN/run.log"; tail -n 20 "$RUN/run.log"; exit 1; }
  status
}

status() {
  bash scripts/services.sh status || true
  if running run; then
    say "tickwatch run: pid $(cat "$RUN/run.pid"), log $RUN/run.log"
    # The supervisor's last banner says which child runs where.
    tac "$RUN/run.log" 2>/dev/null | awk '/^tickwatch run:/ {print; exit} {print}' | tac | grep -v '^{' | sed 's/^/[stack] /'
  else
    say "tickwatch run: not running"
  fi
  cat <<TXT
[stack] metrics: ingestion http://127.0.0.1:${INGESTION_HTTP_PORT:-9464}/metrics  writer http://127.0.0.1:${WRITER_HTTP_PORT:-9465}/metrics  metrics http://127.0.0.1:${METRICS_HTTP_PORT:-9466}/metrics
[stack] Prometheus http://127.0.0.1:${PROMETHEUS_PORT:-9090}   (Grafana runs under Docker only: docker/compose.yaml)
[stack] check the dependencies: npx tsx bin/tickwatch.ts doctor
TXT
}

down() {
  if use_docker; then docker compose -f docker/compose.yaml down; return; fi
  stop_pid run
  local w
  for w in "${LEGACY_WORKERS[@]}"; do stop_pid "$w"; done
  bash scripts/services.sh down
}

cmd=${1:-up}; [ $# -gt 0 ] && shift
case $cmd in
  up) up "$@" ;;
  down) down ;;
  status) status ;;
  *) echo "usage: bash scripts/stack.sh up|down|status" >&2; exit 2 ;;
esac
