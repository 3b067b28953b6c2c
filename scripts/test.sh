#!/usr/bin/env bash
# The test command: installs what this machine lacks, starts the native services it needs (Kafka, PostgreSQL,
# Prometheus) unless KAFKA_BROKERS / DATABASE_URL already name running ones, type-checks, and runs every test
# (unit, then integration against the real services). Services it started itself are stopped again at the end.
# The integration tests run twice: on native TimescaleDB (TIMESCALEDB=on) and on plain PostgreSQL (TIMESCALEDB=off,
# database <name>_plain of the same server); TEST_DATABASES=timescaledb or =postgres runs one of them.
#
#   bash scripts/test.sh              everything
#   bash scripts/test.sh unit         unit tests only (no services)
#   bash scripts/test.sh integration  integration tests only
#   extra arguments after the project are passed to vitest (e.g. a path filter)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

project=${1:-all}
[ $# -gt 0 ] && shift

say() { printf '\n[test] %s\n' "$*"; }

# Dependencies: npm ci when node_modules is missing or older than the lockfile.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi

started=()
cleanup() {
  if [ ${#started[@]} -gt 0 ]; then
    say "stopping the services this run started: ${started[*]}"
    bash scripts/services.sh down "${started[@]}" || true
  fi
}
trap cleanup EXIT

if [ "$project" != unit ]; then
  # Services named by the caller are used as they are; only the missing ones are started here (and their addresses
  # taken from services.sh, never overriding a caller's).
  given_kafka=${KAFKA_BROKERS:-} given_db=${DATABASE_URL:-} given_prom=${PROMETHEUS_URL:-}
  want=()
  [ -z "$given_kafka" ] && want+=(kafka)
  [ -z "$given_db" ] && want+=(postgres)
  [ -z "$given_prom" ] && want+=(prometheus)
  if [ ${#want[@]} -gt 0 ]; then
    for svc in "${want[@]}"; do
      bash scripts/services.sh status "$svc" >/dev/null 2>&1 || started+=("$svc")
    done
    say "starting services: ${want[*]}"
    bash scripts/services.sh up "${want[@]}"
    eval "$(bash scripts/services.sh env)"
    KAFKA_BROKERS=${given_kafka:-$KAFKA_BROKERS}
    DATABASE_URL=${given_db:-$DATABASE_URL}
    PROMETHEUS_URL=${given_prom:-$PROMETHEUS_URL}
  fi
  export KAFKA_BROKERS DATABASE_URL PROMETHEUS_URL
  bash scripts/services.sh status || true
fi

# The tests store the recorded captures of 2024: a retention policy would drop them at its first run (workers the
# tests start read this too).
export TICK_RETENTION=${TICK_RETENTION:-none}

# The integration tests run once per database: native TimescaleDB (when the server preloads it) and plain
# PostgreSQL (a database of the same server without the extension). TEST_DATABASES narrows it (timescaledb,postgres).
databases=()
if [ "$project" != unit ]; then
  ts_ready=$(psql -X -At "$DATABASE_URL" -c "SELECT current_setting('shared_preload_libraries') LIKE '%timescaledb%'
    AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')" 2>/dev/null || echo f)
  for d in $(echo "${TEST_DATABASES:-timescaledb,postgres}" | tr ',' ' '); do
    case $d in
      timescaledb)
        if [ "$ts_ready" = t ]; then databases+=(timescaledb)
        elif [ "${CI:-}" = true ]; then
          echo "[test] TimescaleDB is not preloaded on $DATABASE_URL: CI tests both databases (bash scripts/services.sh install)" >&2; exit 1
        else say "TimescaleDB not preloaded on the server: its pass is skipped (bash scripts/services.sh install, then up)"; fi ;;
      postgres) databases+=(postgres) ;;
      *) echo "unknown database '$d' in TEST_DATABASES: use timescaledb, postgres" >&2; exit 2 ;;
    esac
  done
  [ ${#databases[@]} -gt 0 ] || { echo "[test] no database to test on" >&2; exit 1; }
fi

# DATABASE_URL with another database name (the plain pass's database, created when missing).
plain_database_url() {
  node -e 'const u = new URL(process.argv[1]); u.pathname = `${u.pathname.replace(/^\//, "") || "postgres"}_plain`; console.log(u.toString())' "$DATABASE_URL"
}

say "type-checking (tsc --noEmit)"
npx tsc --noEmit

reports=$(mktemp -d)
status=0
# One vitest run: $1 a label, then vitest's project flags.
run_vitest() {
  local label=$1; shift
  say "running vitest ($label)"
  npx vitest run "$@" --reporter=default --reporter=json --outputFile.json="$reports/$label.json" "${extra[@]}" || status=$?
}
extra=("$@")
case "$project" in
  unit) run_vitest unit --project unit ;;
  integration|all)
    [ "$project" = all ] && run_vitest unit --project unit
    for d in "${databases[@]}"; do
      if [ "$d" = timescaledb ]; then
        TIMESCALEDB=on run_vitest integration-timescaledb --project integration
      else
        url=$(plain_database_url)
        name=$(node -e 'console.log(new URL(process.argv[1]).pathname.slice(1))' "$url")
        psql -X -q "$DATABASE_URL" -c "SELECT 1" >/dev/null
        psql -X -At "$DATABASE_URL" -c "SELECT 1 FROM pg_database WHERE datname = '$name'" | grep -q 1 ||
          psql -X -q "$DATABASE_URL" -c "CREATE DATABASE \"$name\""
        DATABASE_URL=$url TIMESCALEDB=off run_vitest integration-postgres --project integration
      fi
    done ;;
  *) echo "unknown project '$project': use unit, integration or all" >&2; exit 2 ;;
esac

# One plain closing line that any CI log reader understands, over every run.
node -e '
  const fs = require("fs");
  let passed = 0, failed = 0, skipped = 0;
  for (const f of fs.readdirSync(process.argv[1])) {
    const r = JSON.parse(fs.readFileSync(`${process.argv[1]}/${f}`, "utf8"));
    console.log(`[test] ${f.replace(/\.json$/, "")}: ${r.numPassedTests} passed, ${r.numFailedTests} failed`);
    passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests + r.numTodoTests;
  }
  console.log(`\nvitest: ${passed} passed, ${failed} failed, ${skipped} skipped`);
' "$reports"
exit $status
