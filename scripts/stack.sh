#!/usr/bin/env bash
# The run command: brings the whole stack up on this machine and says where everything is.
#   - With a working Docker engine: docker compose (docker/compose.yaml), everything in containers.
#   - Without one: the native services (scripts/services.sh: Kafka, PostgreSQL, Prometheus), the schema migration,
#     and the workers (ingestion, writers, metrics) as background processes with logs and pid files.
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

# Worker name -> CLI command. The CLI only lists commands that exist; start what it offers.
WORKERS=(ingestion:ingest writer:write metrics:metrics)

cli_has() { npx tsx bin/tickwatch.ts --help 2>/dev/null | grep -qE "^  $1 "; }

worker_running() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

start_worker() { # name, command, args...
  local name=$1; shift
  if worker_running "$name"; then say "$name already running (pid $(cat "$RUN/$name.pid"))"; return; fi
  # set -a exports the .env file's variables to the worker; the worker validates them.
  ( set -a; [ -f .env ] && . ./.env; set +a; eval "$(bash scripts/services.sh env)"
    exec nohup npx tsx bin/tickwatch.ts "$@" >>"$RUN/$name.log" 2>&1 ) &
  echo $! >"$RUN/$name.pid"
  say "$name started (pid $!), log $RUN/$name.log"
}

stop_worker() {
  local name=$1 pid
  worker_running "$name" || { rm -f "$RUN/$name.pid"; return 0; }
  pid=$(cat "$RUN/$name.pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
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
  npx tsx bin/tickwatch.ts migrate
  for w in "${WORKERS[@]}"; do
    local name=${w%%:*} cmd=${w#*:}
    if ! cli_has "$cmd"; then say "$name: command '$cmd' not available in this version, skipped"; continue; fi
    if [ "$name" = ingestion ] && [ "$source" = replay ]; then
      [ ${#files[@]} -gt 0 ] || { say "--source replay needs capture files"; exit 2; }
      start_worker "$name" replay "${files[@]}"
    else
      start_worker "$name" "$cmd"
    fi
  done
  status
}

status() {
  bash scripts/services.sh status || true
  for w in "${WORKERS[@]}"; do
    local name=${w%%:*}
    if worker_running "$name"; then say "$name: running pid $(cat "$RUN/$name.pid"), log $RUN/$name.log"
    else say "$name: not running"; fi
  done
  cat <<TXT
[stack] metrics: ingestion http://127.0.0.1:9464/metrics  writer http://127.0.0.1:9465/metrics  metrics http://127.0.0.1:9466/metrics
[stack] Prometheus http://127.0.0.1:9090   (Grafana runs under Docker only: docker/compose.yaml)
TXT
}

down() {
  if use_docker; then docker compose -f docker/compose.yaml down; return; fi
  local i
  for ((i = ${#WORKERS[@]} - 1; i >= 0; i--)); do stop_worker "${WORKERS[i]%%:*}"; done
  bash scripts/services.sh down
}

cmd=${1:-up}; [ $# -gt 0 ] && shift
case $cmd in
  up) up "$@" ;;
  down) down ;;
  status) status ;;
  *) echo "usage: bash scripts/stack.sh up|down|status" >&2; exit 2 ;;
esac
