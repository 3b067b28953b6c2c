#!/usr/bin/env bash
# The test command: installs what this machine lacks, starts the native services it needs (Kafka, PostgreSQL,
# Prometheus) unless KAFKA_BROKERS / DATABASE_URL already name running ones, type-checks, and runs every test
# (unit, then integration against the real services). Services it started itself are stopped again at the end.
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
  want=()
  [ -z "${KAFKA_BROKERS:-}" ] && want+=(kafka)
  [ -z "${DATABASE_URL:-}" ] && want+=(postgres)
  [ -z "${PROMETHEUS_URL:-}" ] && want+=(prometheus)
  if [ ${#want[@]} -gt 0 ]; then
    for svc in "${want[@]}"; do
      bash scripts/services.sh status "$svc" >/dev/null 2>&1 || started+=("$svc")
    done
    say "starting services: ${want[*]}"
    bash scripts/services.sh up "${want[@]}"
    eval "$(bash scripts/services.sh env)"
  fi
  export KAFKA_BROKERS DATABASE_URL PROMETHEUS_URL
  bash scripts/services.sh status || true
fi

say "type-checking (tsc --noEmit)"
npx tsc --noEmit

report=$(mktemp -d)/vitest.json
case "$project" in
  unit|integration) projects=(--project "$project") ;;
  all) projects=(--project unit --project integration) ;;
  *) echo "unknown project '$project': use unit, integration or all" >&2; exit 2 ;;
esac
say "running vitest (${projects[*]})"
status=0
npx vitest run "${projects[@]}" --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?

# One plain closing line that any CI log reader understands.
if [ -f "$report" ]; then
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const skipped = r.numPendingTests + r.numTodoTests;
    console.log(`\nvitest: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
  ' "$report"
fi
exit $status
