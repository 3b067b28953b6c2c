#!/usr/bin/env bash
# Native (no Docker) backing services for tickwatch: Kafka (KRaft), PostgreSQL 15,
# Prometheus — all on loopback, state in a throwaway folder outside the repo.
#
#   scripts/services.sh install [svc...]   install what this machine lacks (apt, Kafka jars)
#   scripts/services.sh up      [svc...]   install if needed, start, wait until usable
#   scripts/services.sh down    [svc...]   stop (SIGTERM, then SIGKILL after a grace period)
#   scripts/services.sh status  [svc...]   exit 0 only if every named service runs
#   scripts/services.sh logs    [svc...]   tail the services' log files
#   scripts/services.sh env                print export lines: eval "$(scripts/services.sh env)"
#   scripts/services.sh reset              down + delete the state folder (keeps the jar cache)
#
# svc is kafka, postgres (pg) or prometheus (prom); none means all three.
# Every command is idempotent. `up` with no service names treats Prometheus as
# optional (warns if it cannot start); naming it explicitly makes it required.
#
# Environment (defaults in brackets):
#   TICKWATCH_HOME      [~/.cache/tickwatch]  cache root: kafka/lib (jars), m2 (Maven repo)
#   TICKWATCH_STATE     [$TICKWATCH_HOME/state]  data, logs, pid files; `reset` deletes it
#   TICKWATCH_PG_DIR    [$TICKWATCH_STATE/postgres]  PostgreSQL folder; as root, when the postgres
#                       account cannot enter the state folder (/root is 0700): /var/tmp/tickwatch-postgres-<hash>
#   TICKWATCH_KAFKA_VERSION [3.9.1]  Kafka release resolved from Maven Central (3.9.x: see scripts/kafka/pom.xml)
#   KAFKA_PORT          [9092]    broker listener, 127.0.0.1
#   KAFKA_CONTROLLER_PORT [9093]  KRaft controller listener, 127.0.0.1
#   KAFKA_TLS_PORT      [9096]    SASL_SSL listener, 127.0.0.1 (self-signed certificate, user tickwatch with PLAIN and
#                       SCRAM-SHA-256/512; `env` prints its address, CA file and password for the TLS/SASL tests)
#   KAFKA_HEAP_OPTS     [-Xms256m -Xmx512m]   KAFKA_OPTS: extra broker JVM flags
#   KAFKA_START_TIMEOUT [90]      seconds `up` waits for a metadata answer
#   PGPORT_TICKWATCH    [55432]   PostgreSQL port, 127.0.0.1 (not 5432: never clash with a system cluster)
#   PG_BIN              [/usr/lib/postgresql/15/bin]
#   TIMESCALEDB_SOURCE  [newest ../shared/vendor/timescaledb-*.tar.gz]  source tarball built by `install` when the
#                       extension is not installed yet (checked against the .sha256 beside it; build cached in
#                       $TICKWATCH_HOME/timescaledb); none and no extension: plain PostgreSQL
#   TICKWATCH_TIMESCALEDB [auto]  auto: preload TimescaleDB in the cluster when it is installed; off: never
#   PROMETHEUS_PORT     [9090]    PROMETHEUS_BIN [/usr/bin/prometheus]
#   PROMETHEUS_CONFIG   [docker/prometheus/prometheus.native.yml, else prometheus.yml, else generated]
#   STOP_TIMEOUT        [30]      seconds between SIGTERM and SIGKILL on `down`
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"

TICKWATCH_HOME=${TICKWATCH_HOME:-$HOME/.cache/tickwatch}
STATE=${TICKWATCH_STATE:-$TICKWATCH_HOME/state}

KAFKA_VERSION=${TICKWATCH_KAFKA_VERSION:-3.9.1}
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
KAFKA_TLS_PORT=${KAFKA_TLS_PORT:-9096}
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}
KAFKA_OPTS=${KAFKA_OPTS:-}
KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-90}
KAFKA_LIB=$TICKWATCH_HOME/kafka/lib
KAFKA_POM=$REPO_ROOT/scripts/kafka/pom.xml
KAFKA_STATE=$STATE/kafka
M2_REPO=${TICKWATCH_M2:-$TICKWATCH_HOME/m2}

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_PORT=${PGPORT_TICKWATCH:-55432}
PG_DB=tickwatch
PG_USER=tickwatch
PG_PASSWORD=tickwatch
PG_START_TIMEOUT=${PG_START_TIMEOUT:-60}
TS_CACHE=$TICKWATCH_HOME/timescaledb
TS_PRELOAD=${TICKWATCH_TIMESCALEDB:-auto}

PROMETHEUS_BIN=${PROMETHEUS_BIN:-/usr/bin/prometheus}
PROMETHEUS_PORT=${PROMETHEUS_PORT:-9090}
PROMETHEUS_START_TIMEOUT=${PROMETHEUS_START_TIMEOUT:-60}
PROM_STATE=$STATE/prometheus

STOP_TIMEOUT=${STOP_TIMEOUT:-30}
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
HOST=127.0.0.1  # everything binds to loopback only, on purpose
ALL_SERVICES=(kafka postgres prometheus)

KAFKA_BROKERS=$HOST:$KAFKA_PORT
KAFKA_TLS_BROKERS=$HOST:$KAFKA_TLS_PORT
KAFKA_TLS_DIR=$KAFKA_STATE/tls
KAFKA_SASL_USER=tickwatch
DATABASE_URL=postgres://$PG_USER:$PG_PASSWORD@$HOST:$PG_PORT/$PG_DB
PROMETHEUS_URL=http://$HOST:$PROMETHEUS_PORT

# ---------------------------------------------------------------- helpers ---

log()  { printf '%s\n' "$*"; }
info() { printf '[services] %s\n' "$*"; }
warn() { printf '[services] WARNING: %s\n' "$*" >&2; }
err()  { printf '[services] ERROR: %s\n' "$*" >&2; }
die()  { err "$*"; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }

# Print the last lines of a log so a failure in CI explains itself.
show_log_tail() {
  local file=$1 n=${2:-40}
  [ -f "$file" ] || return 0
  printf -- '----- last %s lines of %s -----\n' "$n" "$file" >&2
  tail -n "$n" "$file" >&2 || true
  printf -- '----- end of %s -----\n' "$file" >&2
}

# True if something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

# Who holds a port, for error messages (ss may be missing on a minimal box).
port_owner() {
  command -v ss >/dev/null 2>&1 || return 0
  ss -ltnpH "sport = :$1" 2>/dev/null | sed 's/^/    /' || true
}

http_get() {
  if command -v curl >/dev/null 2>&1; then curl -fsS --max-time 5 "$1"; return; fi
  # No curl on a minimal box: HTTP/1.0 GET over bash's /dev/tcp.
  local rest=${1#http://} hostport path resp
  hostport=${rest%%/*}; path=/${rest#*/}
  # shellcheck disable=SC2016  # expanded by the inner shell
  resp=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2"
    printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$3" "$1" >&3; cat <&3' \
    _ "${hostport%:*}" "${hostport##*:}" "$path") || return 1
  [[ ${resp%%$'\r'*} == *" 200 "* ]] || return 1
  printf '%s\n' "${resp#*$'\r\n\r\n'}"
}

# Command line of a live pid, NULs turned into spaces ("" if gone).
pid_cmdline() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true; }

# Pid from $1 if that process is alive and its command line contains $2
# (guards against a stale pid file whose number was reused by something else).
live_pid() {
  local pidfile=$1 marker=$2 pid
  [ -s "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [[ $(pid_cmdline "$pid") == *"$marker"* ]] || return 1
  printf '%s\n' "$pid"
}

# Shell snippet closing every inherited file descriptor above 2. Daemons must
# not keep our lock fd (the next `up` would wait forever) nor a caller's pipe
# (`services.sh up | tee` or $(...) would never see EOF).
# shellcheck disable=SC2016  # expanded by the inner shell
CLOSE_FDS='for fd in /proc/$$/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done'

# Start "$@" in the background, detached: own session (a Ctrl-C or the
# caller's exit does not reach it), nohup, stdin from /dev/null, stdout+stderr
# appended to $2. The pid written to $1 is the daemon's own (bash execs it).
daemonize() {
  local pidfile=$1 out=$2; shift 2
  rm -f "$pidfile"
  # shellcheck disable=SC2016  # expanded by the inner shell
  setsid bash -c "$CLOSE_FDS"'
    pidfile=$1 out=$2; shift 2
    echo $$ >"$pidfile"
    exec nohup "$@" </dev/null >>"$out" 2>&1' daemon "$pidfile" "$out" "$@" </dev/null >/dev/null 2>&1 &
  local i
  for i in $(seq 50); do [ -s "$pidfile" ] && return 0; sleep 0.1; done
  err "could not start: $*"; return 1
}

# SIGTERM, wait up to STOP_TIMEOUT s, then SIGKILL.
stop_pid() {
  local name=$1 pid=$2 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || { info "$name: stopped (pid $pid)"; return 0; }
    sleep 0.1
  done
  warn "$name: pid $pid ignored SIGTERM for ${STOP_TIMEOUT}s, sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  err "$name: pid $pid survived SIGKILL"; return 1
}

# One lock for state-changing commands, so two concurrent `up`s don't both format/initdb.
take_lock() {
  mkdir -p "$TICKWATCH_HOME"
  exec 9>>"$TICKWATCH_HOME/.services.lock"
  if ! flock -n 9; then
    info "another services.sh is running; waiting for it (up to 10 min)"
    flock -w 600 9 || die "timed out waiting for $TICKWATCH_HOME/.services.lock"
  fi
}

# --------------------------------------------------------------- installs ---

APT_UPDATED=0
# apt-get install, running `apt-get update` once per invocation and only when
# something is actually missing. A temporary policy-rc.d keeps the packages'
# maintainer scripts from starting their own daemons (Debian's prometheus would
# grab 0.0.0.0:9090, postgresql a cluster on 5432).
apt_install() {
  local sudo=()
  if ! is_root; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo=(sudo -n)
    else err "need root to run: apt-get install -y $*"; return 1; fi
  fi
  local created_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# temporary, scripts/services.sh: do not start daemons on install\nexit 101\n' |
      "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${sudo[@]}" chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
  fi
  local rc=0 apt_log=$TICKWATCH_HOME/apt.log
  mkdir -p "$TICKWATCH_HOME"
  if [ "$APT_UPDATED" = 0 ]; then
    info "apt-get update"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$apt_log" 2>&1 || rc=$?
    [ "$rc" = 0 ] && APT_UPDATED=1
  fi
  if [ "$rc" = 0 ]; then
    info "apt-get install $* (log: $apt_log)"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" \
      >>"$apt_log" 2>&1 || rc=$?
  fi
  [ "$created_policy" = 1 ] && "${sudo[@]}" rm -f /usr/sbin/policy-rc.d
  if [ "$rc" != 0 ]; then show_log_tail "$apt_log" 30; err "apt-get failed for: $*"; fi
  return "$rc"
}

install_java_maven() {
  local pkgs=()
  command -v "$JAVA" >/dev/null 2>&1 || pkgs+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null 2>&1 || pkgs+=(maven)
  [ ${#pkgs[@]} = 0 ] || apt_install "${pkgs[@]}"
}

kafka_installed() {
  [ -f "$KAFKA_LIB/.complete" ] && [ "$(cat "$KAFKA_LIB/.complete")" = "$KAFKA_VERSION" ] &&
    [ -f "$KAFKA_LIB/kafka_2.13-$KAFKA_VERSION.jar" ]
}

install_kafka() {
  if kafka_installed; then
    info "kafka: jars for $KAFKA_VERSION already in $KAFKA_LIB"
    return 0
  fi
  local pid
  if pid=$(kafka_pid) && [[ $(pid_cmdline "$pid") == *"$KAFKA_LIB/*"* ]]; then
    err "kafka: a broker is running on the jars in $KAFKA_LIB; run \`$0 down kafka\` before switching to $KAFKA_VERSION"
    return 1
  fi
  install_java_maven || return 1
  local start=$SECONDS tmp=$KAFKA_LIB.tmp.$$ mvn_log=$TICKWATCH_HOME/kafka/mvn.log
  mkdir -p "$TICKWATCH_HOME/kafka"
  rm -rf "$tmp"
  info "kafka: resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION + runtime deps from Maven Central (log: $mvn_log)"
  if ! mvn -B -ntp -f "$KAFKA_POM" -Dkafka.version="$KAFKA_VERSION" -Dmaven.repo.local="$M2_REPO" \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" >"$mvn_log" 2>&1; then
    show_log_tail "$mvn_log" 40
    rm -rf "$tmp"
    err "kafka: Maven could not resolve Kafka $KAFKA_VERSION"
    return 1
  fi
  [ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ] || { rm -rf "$tmp"; err "kafka: kafka_2.13-$KAFKA_VERSION.jar missing after Maven"; return 1; }
  # Swap in atomically so a half-finished download never looks installed.
  echo "$KAFKA_VERSION" >"$tmp/.complete"
  rm -rf "$KAFKA_LIB"
  mv "$tmp" "$KAFKA_LIB"
  local jars=("$KAFKA_LIB"/*.jar)
  info "kafka: ${#jars[@]} jars ($(du -sh "$KAFKA_LIB" | cut -f1)) in $KAFKA_LIB, took $((SECONDS - start))s"
}

install_postgres() {
  if [ ! -x "$PG_BIN/postgres" ]; then
    [ "$PG_BIN" = /usr/lib/postgresql/15/bin ] || die "postgres: $PG_BIN/postgres not found (PG_BIN is set)"
    apt_install postgresql-15 || return 1
  fi
  install_timescaledb || return 1
  # initdb refuses to run as root; the server then runs as the postgres account.
  if is_root && ! id -u postgres >/dev/null 2>&1; then
    info "postgres: creating system user postgres"
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash --user-group postgres
  fi
  info "postgres: $("$PG_BIN/postgres" --version)"
}

# ------------------------------------------------------------ timescaledb ---

pg_sharedir() { "$PG_BIN/pg_config" --sharedir; }
pg_pkglibdir() { "$PG_BIN/pg_config" --pkglibdir; }
timescaledb_installed() { [ -f "$(pg_sharedir)/extension/timescaledb.control" ] && [ -f "$(pg_pkglibdir)/timescaledb.so" ]; }
timescaledb_version() { sed -n "s/^default_version = '\(.*\)'/\1/p" "$(pg_sharedir)/extension/timescaledb.control" 2>/dev/null; }

# Newest vendored source tarball beside the repository (../shared/vendor), unless TIMESCALEDB_SOURCE names one.
timescaledb_source() {
  if [ -n "${TIMESCALEDB_SOURCE:-}" ]; then echo "$TIMESCALEDB_SOURCE"; return; fi
  local f newest=""
  for f in "$REPO_ROOT"/../shared/vendor/timescaledb-*.tar.gz; do [ -f "$f" ] && newest=$f; done
  [ -n "$newest" ] && (cd "$(dirname "$newest")" && echo "$PWD/$(basename "$newest")")
  return 0
}

# The build's name: the tarball's and our patches' (scripts/timescaledb/*.patch) identity, e.g. timescaledb-2.28.3-c1368022f2dd.
timescaledb_build_name() {
  local src=$1 key patches=("$REPO_ROOT"/scripts/timescaledb/*.patch)
  [ -f "${patches[0]}" ] || patches=()
  key=$(cat "$src.sha256" "${patches[@]}" | sha256sum | cut -d' ' -f1)
  echo "$(basename "$src" .tar.gz)-${key:0:12}"
}

# Installed by this script from another tarball or an older set of patches: build again.
timescaledb_stale_build() {
  [ -f "$TS_CACHE/installed" ] || return 1
  local src; src=$(timescaledb_source)
  [ -n "$src" ] && [ -f "$src.sha256" ] || return 1
  [ "$(cat "$TS_CACHE/installed")" != "$(timescaledb_build_name "$src")" ]
}

# TimescaleDB for PostgreSQL 15: an extension already installed is used as it is (unless this script installed it
# from an older set of patches); otherwise it is built from the
# source tarball (checked against its .sha256) and installed. The build folder is cached per tarball checksum, so a
# machine whose PostgreSQL files were reinstalled only runs `make install` again. With neither: plain PostgreSQL.
install_timescaledb() {
  if timescaledb_installed && ! timescaledb_stale_build; then
    info "timescaledb: $(timescaledb_version) installed in $(pg_pkglibdir)"
    return 0
  fi
  local src; src=$(timescaledb_source)
  if [ -z "$src" ] || [ ! -f "$src" ]; then
    warn "timescaledb: not installed and no source tarball (set TIMESCALEDB_SOURCE); the stack runs on plain PostgreSQL"
    return 0
  fi
  [ -f "$src.sha256" ] || { err "timescaledb: $src.sha256 is missing: refusing to build an unchecked source"; return 1; }
  local want got
  want=$(awk '{print $1; exit}' "$src.sha256")
  got=$(sha256sum "$src" | cut -d' ' -f1)
  [ "$want" = "$got" ] || { err "timescaledb: $src does not match its .sha256 ($got != $want)"; return 1; }
  # Build tools and the server headers (the dev package may upgrade postgresql-15: a running server then needs `up`
  # again, which restarts it when the preload is missing).
  local pkgs=() p
  for p in postgresql-server-dev-15 cmake libssl-dev make gcc patch; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || pkgs+=("$p")
  done
  [ ${#pkgs[@]} = 0 ] || apt_install "${pkgs[@]}" || return 1
  local name; name=$(timescaledb_build_name "$src")
  local patches=("$REPO_ROOT"/scripts/timescaledb/*.patch)
  [ -f "${patches[0]}" ] || patches=()
  local build=$TS_CACHE/$name log=$TS_CACHE/build.log start=$SECONDS
  mkdir -p "$TS_CACHE"
  if [ ! -f "$build/.built" ]; then
    info "timescaledb: building $name from $src with ${#patches[@]} patch(es) (about 100 s on 2 cores; log: $log)"
    rm -rf "$build" && mkdir -p "$build"
    # A subshell: `exit` ends only it (errexit would be ignored inside an if condition, hence the && chain).
    if ! (tar xzf "$src" -C "$build" --strip-components=1 || exit 1
          for p in "${patches[@]}"; do patch -d "$build" -p1 <"$p" || exit 1; done
          cd "$build" &&
          ./bootstrap -DCMAKE_BUILD_TYPE=Release -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF \
            -DLINTER=OFF -DGENERATE_DOWNGRADE_SCRIPT=OFF -DPG_CONFIG="$PG_BIN/pg_config" &&
          cd build && make -j"$(nproc)") >"$log" 2>&1; then
      show_log_tail "$log" 40; err "timescaledb: build failed"; return 1
    fi
    touch "$build/.built"
  else
    info "timescaledb: cached build in $build"
  fi
  if ! (cd "$build/build" && make install) >>"$log" 2>&1; then
    show_log_tail "$log" 20; err "timescaledb: make install failed"; return 1
  fi
  timescaledb_installed || { err "timescaledb: installed files not found in $(pg_sharedir)/extension"; return 1; }
  basename "$build" >"$TS_CACHE/installed"
  info "timescaledb: $(timescaledb_version) installed, took $((SECONDS - start))s"
}

install_prometheus() {
  if [ ! -x "$PROMETHEUS_BIN" ]; then
    [ "$PROMETHEUS_BIN" = /usr/bin/prometheus ] || { err "prometheus: $PROMETHEUS_BIN not found (PROMETHEUS_BIN is set)"; return 1; }
    apt_install prometheus || return 1
  fi
  info "prometheus: $(prometheus_version)"
}

# ------------------------------------------------------------------ kafka ---

kafka_pidfile() { echo "$KAFKA_STATE/kafka.pid"; }
kafka_marker()  { echo "$KAFKA_STATE/server.properties"; }
kafka_pid()     { live_pid "$(kafka_pidfile)" "$(kafka_marker)"; }

# Short-lived Kafka CLI JVMs: small heap, C1 only — they start ~2x faster.
# Bounded by KAFKA_TOOL_TIMEOUT: an admin client can otherwise retry for minutes.
kafka_tool() {
  timeout "${KAFKA_TOOL_TIMEOUT:-120}" "$JAVA" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$REPO_ROOT/scripts/kafka/tools-log4j.properties" \
    -cp "$KAFKA_LIB/*" "$@"
}

# Version of the running broker as it logged it (AppInfoParser), else of the jars.
kafka_version() {
  local v="" jar
  if [ -f "$KAFKA_STATE/logs/server.log" ]; then
    v=$(grep -o 'Kafka version: [^ ]*' "$KAFKA_STATE/logs/server.log" | tail -n1 | cut -d' ' -f3 || true)
  fi
  if [ -z "$v" ]; then
    for jar in "$KAFKA_LIB"/kafka_2.13-*.jar; do
      [ -f "$jar" ] && { v=${jar##*/kafka_2.13-}; v=${v%.jar}; }
    done
  fi
  echo "Apache Kafka ${v:-unknown} (Scala 2.13, KRaft)"
}

# The SASL_SSL listener's material, made once: a self-signed certificate for 127.0.0.1/localhost (PKCS12 keystore,
# its PEM for the clients) and two random secrets (keystore, user password), readable by this account only.
ensure_kafka_tls() {
  local d=$KAFKA_TLS_DIR
  [ -s "$d/broker.p12" ] && [ -s "$d/ca.pem" ] && [ -s "$d/keystore.secret" ] && [ -s "$d/sasl.secret" ] && return 0
  command -v keytool >/dev/null || { err "kafka: keytool (part of the JDK) is needed for the TLS listener"; return 1; }
  rm -rf "$d" && mkdir -p "$d" && chmod 700 "$d"
  head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$d/keystore.secret"
  head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$d/sasl.secret"
  keytool -genkeypair -alias broker -keyalg EC -groupname secp256r1 -validity 3650 -dname "CN=localhost" \
    -ext "SAN=ip:127.0.0.1,dns:localhost" -storetype PKCS12 -keystore "$d/broker.p12" \
    -storepass "$(cat "$d/keystore.secret")" >/dev/null 2>&1 || { err "kafka: keytool could not make the certificate"; return 1; }
  keytool -exportcert -rfc -alias broker -keystore "$d/broker.p12" -storepass "$(cat "$d/keystore.secret")" \
    -file "$d/ca.pem" >/dev/null 2>&1 || { err "kafka: keytool could not export the certificate"; return 1; }
  chmod 600 "$d"/*
  rm -f "$KAFKA_STATE/scram.done"
}

# SCRAM credentials live in the cluster metadata: added once through the plaintext listener after start.
ensure_kafka_scram() {
  local secret; secret=$(cat "$KAFKA_TLS_DIR/sasl.secret")
  [ -f "$KAFKA_STATE/scram.done" ] && [ "$(cat "$KAFKA_STATE/scram.done")" = "$(sha256sum <"$KAFKA_TLS_DIR/sasl.secret")" ] && return 0
  # One mechanism per request: the broker refuses to alter one user's credentials twice in a request.
  if KAFKA_TOOL_TIMEOUT=60 kafka_tool kafka.admin.ConfigCommand --bootstrap-server "$KAFKA_BROKERS" --alter \
       --entity-type users --entity-name "$KAFKA_SASL_USER" --add-config "SCRAM-SHA-256=[password=$secret]" \
       >>"$KAFKA_STATE/logs/scram.log" 2>&1 &&
     KAFKA_TOOL_TIMEOUT=60 kafka_tool kafka.admin.ConfigCommand --bootstrap-server "$KAFKA_BROKERS" --alter \
       --entity-type users --entity-name "$KAFKA_SASL_USER" --add-config "SCRAM-SHA-512=[password=$secret]" \
       >>"$KAFKA_STATE/logs/scram.log" 2>&1; then
    sha256sum <"$KAFKA_TLS_DIR/sasl.secret" >"$KAFKA_STATE/scram.done"
    info "kafka: SASL_SSL listener on $KAFKA_TLS_BROKERS (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; user $KAFKA_SASL_USER)"
  else
    show_log_tail "$KAFKA_STATE/logs/scram.log"; err "kafka: could not add the SCRAM credentials"; return 1
  fi
}

write_kafka_config() {
  local ks_secret sasl_secret
  ks_secret=$(cat "$KAFKA_TLS_DIR/keystore.secret") sasl_secret=$(cat "$KAFKA_TLS_DIR/sasl.secret")
  cat >"$KAFKA_STATE/server.properties" <<EOF
# Generated by scripts/services.sh on every \`up\`; edits are overwritten.
# Single node, KRaft combined mode, loopback only, sized for a 2-core test box.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT,SASL_SSL://$HOST:$KAFKA_TLS_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT,SASL_SSL://$HOST:$KAFKA_TLS_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL

# A managed cluster's kind of listener, for the clients' TLS and SASL tests (this file is 0600: it holds secrets).
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$KAFKA_SASL_USER="$sasl_secret";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PKCS12
ssl.keystore.location=$KAFKA_TLS_DIR/broker.p12
ssl.keystore.password=$ks_secret
ssl.key.password=$ks_secret
log.dirs=$KAFKA_STATE/data

num.partitions=3
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true
# One broker: internal topics cannot have more replicas; fewer partitions = faster first start.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Tests join consumer groups constantly: don't wait 3 s for more members.
group.initial.rebalance.delay.ms=0

num.network.threads=2
num.io.threads=4
log.retention.hours=168
log.cleaner.dedupe.buffer.size=33554432
EOF
}

kafka_up() {
  local pid
  if ! kafka_installed; then install_kafka || return 1; fi
  mkdir -p "$KAFKA_STATE/data" "$KAFKA_STATE/logs"
  if pid=$(kafka_pid); then
    info "kafka: already running (pid $pid)"
  else
    for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$KAFKA_TLS_PORT"; do
      if port_open "$p"; then
        err "kafka: $HOST:$p is already in use by another process (set KAFKA_PORT / KAFKA_CONTROLLER_PORT / KAFKA_TLS_PORT):"
        port_owner "$p" >&2; return 1
      fi
    done
    ensure_kafka_tls || return 1
    (umask 077; write_kafka_config) && chmod 600 "$KAFKA_STATE/server.properties"
    # The cluster id is made once and kept, so a restart reuses the formatted log dirs.
    if [ ! -s "$KAFKA_STATE/cluster.id" ]; then
      kafka_tool kafka.tools.StorageTool random-uuid | tail -n1 >"$KAFKA_STATE/cluster.id.tmp" || true
      [ -s "$KAFKA_STATE/cluster.id.tmp" ] || { err "kafka: could not generate a cluster id"; return 1; }
      mv "$KAFKA_STATE/cluster.id.tmp" "$KAFKA_STATE/cluster.id"
    fi
    if [ ! -f "$KAFKA_STATE/data/meta.properties" ]; then
      info "kafka: formatting storage (cluster id $(cat "$KAFKA_STATE/cluster.id"))"
      kafka_tool kafka.tools.StorageTool format --ignore-formatted \
        -t "$(cat "$KAFKA_STATE/cluster.id")" -c "$KAFKA_STATE/server.properties" \
        >>"$KAFKA_STATE/logs/format.log" 2>&1 ||
        { show_log_tail "$KAFKA_STATE/logs/format.log"; err "kafka: storage format failed"; return 1; }
    fi
    info "kafka: starting $(kafka_version) on $KAFKA_BROKERS"
    # shellcheck disable=SC2086  # heap/opts are deliberately word-split
    daemonize "$(kafka_pidfile)" "$KAFKA_STATE/logs/kafka.out" \
      "$JAVA" $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
      -Djava.awt.headless=true -Dkafka.logs.dir="$KAFKA_STATE/logs" \
      -Dlog4j.configuration="file:$REPO_ROOT/scripts/kafka/log4j.properties" $KAFKA_OPTS \
      -cp "$KAFKA_LIB/*" kafka.Kafka "$KAFKA_STATE/server.properties" || return 1
  fi
  kafka_wait_ready && ensure_kafka_scram
}

# Ready = the broker answers a real Metadata request (TopicCommand --list), not
# merely an open port: during KRaft startup the port opens before it can serve.
kafka_wait_ready() {
  local start=$SECONDS deadline=$((SECONDS + KAFKA_START_TIMEOUT)) out
  while :; do
    if ! kafka_pid >/dev/null; then
      show_log_tail "$KAFKA_STATE/logs/kafka.out" 20
      show_log_tail "$KAFKA_STATE/logs/server.log" 60
      err "kafka: the broker process exited"
      return 1
    fi
    if port_open "$KAFKA_PORT" &&
       out=$(KAFKA_TOOL_TIMEOUT=45 kafka_tool org.apache.kafka.tools.TopicCommand \
               --bootstrap-server "$KAFKA_BROKERS" --list 2>&1); then
      info "kafka: ready on $KAFKA_BROKERS after $((SECONDS - start))s — $(kafka_version), pid $(kafka_pid)"
      local topics
      topics=$(printf '%s\n' "$out" | grep -v -e '^\[' -e '^__' -e '^$' | tr '\n' ' ' || true)
      info "kafka: topics: ${topics:-(none)}"
      info "kafka: log $KAFKA_STATE/logs/server.log"
      return 0
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      show_log_tail "$KAFKA_STATE/logs/server.log" 60
      err "kafka: no metadata answer from $KAFKA_BROKERS within ${KAFKA_START_TIMEOUT}s"
      return 1
    fi
    sleep 1
  done
}

# Stops a service this script started: $1 its name, $2 the function printing its pid, $3 the one printing its pid file.
stop_service() {
  local name=$1 pid
  if pid=$($2); then
    info "$name: stopping (pid $pid)"
    stop_pid "$name" "$pid" || return 1
  else
    info "$name: not running"
  fi
  rm -f "$($3)"
}

kafka_down() { stop_service kafka kafka_pid kafka_pidfile; }

kafka_status() {
  local pid
  if pid=$(kafka_pid) && port_open "$KAFKA_PORT"; then
    log "kafka:      running  pid $pid  $KAFKA_BROKERS  $(kafka_version)"
    log "            log $KAFKA_STATE/logs/server.log"
    return 0
  elif [ -n "${pid:-}" ]; then
    log "kafka:      starting pid $pid  ($KAFKA_BROKERS not accepting yet)  $(kafka_version)"
  else
    log "kafka:      stopped  $KAFKA_BROKERS  $(kafka_installed && kafka_version || echo "jars not installed")"
  fi
  log "            log $KAFKA_STATE/logs/server.log"
  return 1
}

# --------------------------------------------------------------- postgres ---

# Where the cluster lives. The server must run as a non-root account; when we
# are root that account is `postgres`, which cannot enter /root (mode 700), so
# then the cluster goes to /var/tmp instead. The choice is recorded in
# $STATE/postgres.dir so every later command finds the same folder.
pg_dir() {
  if [ -n "${TICKWATCH_PG_DIR:-}" ]; then echo "$TICKWATCH_PG_DIR"
  elif [ -s "$STATE/postgres.dir" ]; then cat "$STATE/postgres.dir"
  else echo "$STATE/postgres"; fi
}

pg_dir_for_up() {
  if [ -n "${TICKWATCH_PG_DIR:-}" ] || [ -s "$STATE/postgres.dir" ] || ! is_root; then pg_dir; return; fi
  mkdir -p "$STATE"
  local dir=$STATE/postgres
  if ! runuser -u postgres -- test -x "$STATE" 2>/dev/null; then
    dir=/var/tmp/tickwatch-postgres-$(printf '%s' "$STATE" | md5sum | cut -c1-8)
  fi
  echo "$dir" >"$STATE/postgres.dir"
  echo "$dir"
}

# Run as the cluster's owner: `postgres` when we are root, else ourselves.
as_pg_owner() {
  if is_root; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

pg_ctl_status() {
  local dir; dir=$(pg_dir)
  [ -f "$dir/data/PG_VERSION" ] || return 1
  as_pg_owner "$PG_BIN/pg_ctl" status -D "$dir/data" >/dev/null 2>&1
}

pg_pid() { local dir; dir=$(pg_dir); head -n1 "$dir/data/postmaster.pid" 2>/dev/null; }

# Admin connection: unix socket, bootstrap superuser, trust (socket dir is private).
pg_admin_psql() {
  local dir; dir=$(pg_dir)
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir/run" -p "$PG_PORT" -U postgres -d postgres
}

pg_server_version() {
  PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -At "$DATABASE_URL" -c 'SELECT version()' 2>/dev/null
}

# Server options that preload TimescaleDB (with telemetry off: it must never try to reach the internet) when it is
# installed and not turned off; empty otherwise.
pg_preload_opts() {
  if [ "$TS_PRELOAD" != off ] && timescaledb_installed; then
    # Policies run in background workers: one scheduler per database with the extension plus one per running job
    # (the tests create many databases), all taken from max_worker_processes.
    printf ' -c shared_preload_libraries=timescaledb -c timescaledb.telemetry_level=off'
    printf ' -c max_worker_processes=48 -c timescaledb.max_background_workers=40'
  fi
}

postgres_up() {
  if [ ! -x "$PG_BIN/postgres" ] || { is_root && ! id -u postgres >/dev/null 2>&1; }; then
    install_postgres || return 1
  fi
  local dir; dir=$(pg_dir_for_up)
  mkdir -p "$dir/run"
  is_root && chown postgres:postgres "$dir" "$dir/run"
  chmod 700 "$dir" "$dir/run"

  if [ ! -f "$dir/data/PG_VERSION" ]; then
    info "postgres: initdb in $dir/data"
    # Local (socket) = trust for the admin steps below; TCP = password (scram),
    # so the DATABASE_URL credentials are really exercised.
    if ! as_pg_owner "$PG_BIN/initdb" -D "$dir/data" -U postgres --encoding=UTF8 --locale=C \
          --auth-local=trust --auth-host=scram-sha-256 --no-instructions >"$dir/initdb.log" 2>&1; then
      show_log_tail "$dir/initdb.log"; err "postgres: initdb failed"; return 1
    fi
    as_pg_owner tee -a "$dir/data/postgresql.conf" >/dev/null <<'EOF'

# --- scripts/services.sh: throwaway dev/CI cluster (port and socket dir are
# passed on the pg_ctl command line so PGPORT_TICKWATCH can change them) ---
listen_addresses = '127.0.0.1'
timezone = 'UTC'
log_timezone = 'UTC'
EOF
  fi

  local preload; preload=$(pg_preload_opts)
  if pg_ctl_status; then
    info "postgres: already running (pid $(pg_pid))"
    if [ -n "$preload" ] && [[ $(pg_admin_psql -At -c 'SHOW shared_preload_libraries' 2>/dev/null) != *timescaledb* ]]; then
      info "postgres: restarting to preload timescaledb (installed after the server started)"
      postgres_down || return 1
    fi
  fi
  if ! pg_ctl_status; then
    if port_open "$PG_PORT"; then
      err "postgres: $HOST:$PG_PORT is already in use by another process (set PGPORT_TICKWATCH):"
      port_owner "$PG_PORT" >&2; return 1
    fi
    info "postgres: starting $("$PG_BIN/postgres" --version) on $HOST:$PG_PORT"
    # pg_ctl forks the postmaster: it must not inherit our fds either.
    if ! as_pg_owner bash -c "$CLOSE_FDS"'; exec "$@"' closed-fds "$PG_BIN/pg_ctl" start -D "$dir/data" -l "$dir/postgres.log" -w -t "$PG_START_TIMEOUT" -s \
        -o "-c port=$PG_PORT -c listen_addresses=$HOST -c unix_socket_directories='$dir/run'$preload" </dev/null; then
      show_log_tail "$dir/postgres.log"; err "postgres: pg_ctl start failed"; return 1
    fi
  fi

  # Role and database are (re)asserted on every `up`: cheap, and self-healing.
  if ! pg_admin_psql <<EOF
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
    CREATE ROLE $PG_USER;
  END IF;
END \$\$;
ALTER ROLE $PG_USER WITH LOGIN SUPERUSER PASSWORD '$PG_PASSWORD';
SELECT 'CREATE DATABASE $PG_DB OWNER $PG_USER' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_DB')
\gexec
EOF
  then show_log_tail "$dir/postgres.log"; err "postgres: could not create role/database"; return 1; fi

  local v
  if ! v=$(pg_server_version); then
    show_log_tail "$dir/postgres.log"; err "postgres: cannot log in with $DATABASE_URL"; return 1
  fi
  info "postgres: ready on $HOST:$PG_PORT, pid $(pg_pid) — $v"
  info "postgres: DATABASE_URL=$DATABASE_URL  log $dir/postgres.log"
}

postgres_down() {
  local dir; dir=$(pg_dir)
  if pg_ctl_status; then
    info "postgres: stopping (pid $(pg_pid))"
    if ! as_pg_owner "$PG_BIN/pg_ctl" stop -D "$dir/data" -m fast -w -t "$STOP_TIMEOUT" -s; then
      warn "postgres: fast shutdown timed out, using immediate"
      as_pg_owner "$PG_BIN/pg_ctl" stop -D "$dir/data" -m immediate -w -t 10 -s || return 1
    fi
    info "postgres: stopped"
  else
    info "postgres: not running"
  fi
}

pg_timescaledb_state() {
  if ! timescaledb_installed; then echo "not installed (plain PostgreSQL)"; return; fi
  local libs; libs=$(PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -At "$DATABASE_URL" -c 'SHOW shared_preload_libraries' 2>/dev/null || true)
  if [[ $libs == *timescaledb* ]]; then echo "$(timescaledb_version) preloaded"; else echo "$(timescaledb_version) installed, not preloaded"; fi
}

postgres_status() {
  local dir v; dir=$(pg_dir)
  local bin_v="not installed"
  [ -x "$PG_BIN/postgres" ] && bin_v=$("$PG_BIN/postgres" --version)
  if pg_ctl_status && v=$(pg_server_version); then
    log "postgres:   running  pid $(pg_pid)  $HOST:$PG_PORT  $v"
    log "            timescaledb: $(pg_timescaledb_state)"
    log "            log $dir/postgres.log  data $dir/data"
    return 0
  fi
  log "postgres:   stopped  $HOST:$PG_PORT  $bin_v"
  log "            log $dir/postgres.log  data $dir/data"
  return 1
}

# ------------------------------------------------------------- prometheus ---

prom_pidfile() { echo "$PROM_STATE/prometheus.pid"; }
prom_marker()  { echo "--storage.tsdb.path=$PROM_STATE/data"; }
prom_pid()     { live_pid "$(prom_pidfile)" "$(prom_marker)"; }

prometheus_version() {
  [ -x "$PROMETHEUS_BIN" ] || { echo "not installed"; return 0; }
  "$PROMETHEUS_BIN" --version 2>&1 | head -n1 | sed 's/ (branch.*//'
}

# host:port pairs in a Prometheus config that are not loopback. Natively, a
# config written for Docker (service names like app:9464) would point outside.
non_loopback_targets() {
  grep -v '^[[:space:]]*#' "$1" | grep -oE '[A-Za-z0-9._-]+:[0-9]{2,5}\b' |
    grep -vE '^(localhost|127\.[0-9.]+):' | sort -u || true
}

prometheus_config() {
  if [ -n "${PROMETHEUS_CONFIG:-}" ]; then echo "$PROMETHEUS_CONFIG"; return; fi
  local f bad
  for f in "$REPO_ROOT/docker/prometheus/prometheus.native.yml" "$REPO_ROOT/docker/prometheus/prometheus.yml"; do
    [ -f "$f" ] || continue
    bad=$(non_loopback_targets "$f")
    if [ -z "$bad" ]; then echo "$f"; return; fi
    warn "prometheus: not using $f, it scrapes non-loopback targets: $(echo "$bad" | tr '\n' ' ')" >&2
  done
  # Nothing usable in the repo yet: scrape only itself.
  mkdir -p "$PROM_STATE"
  cat >"$PROM_STATE/prometheus.generated.yml" <<EOF
# Generated by scripts/services.sh: docker/prometheus/prometheus{.native,}.yml missing or unusable.
global:
  scrape_interval: 15s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['$HOST:$PROMETHEUS_PORT']
EOF
  echo "$PROM_STATE/prometheus.generated.yml"
}

prometheus_up() {
  local pid cfg
  if [ ! -x "$PROMETHEUS_BIN" ]; then install_prometheus || return 1; fi
  mkdir -p "$PROM_STATE/data"
  if pid=$(prom_pid); then
    info "prometheus: already running (pid $pid)"
  else
    if port_open "$PROMETHEUS_PORT"; then
      err "prometheus: $HOST:$PROMETHEUS_PORT is already in use by another process (set PROMETHEUS_PORT):"
      port_owner "$PROMETHEUS_PORT" >&2; return 1
    fi
    cfg=$(prometheus_config)
    info "prometheus: starting $(prometheus_version) on $PROMETHEUS_URL, config $cfg"
    daemonize "$(prom_pidfile)" "$PROM_STATE/prometheus.log" \
      "$PROMETHEUS_BIN" --config.file="$cfg" "$(prom_marker)" \
      --storage.tsdb.retention.time=7d --web.listen-address="$HOST:$PROMETHEUS_PORT" \
      --web.enable-lifecycle || return 1
  fi
  local start=$SECONDS
  while :; do
    if ! prom_pid >/dev/null; then
      show_log_tail "$PROM_STATE/prometheus.log"; err "prometheus: process exited"; return 1
    fi
    if http_get "$PROMETHEUS_URL/-/ready" >/dev/null 2>&1; then
      info "prometheus: ready on $PROMETHEUS_URL after $((SECONDS - start))s — $(prometheus_version), pid $(prom_pid)"
      info "prometheus: log $PROM_STATE/prometheus.log"
      return 0
    fi
    if [ $((SECONDS - start)) -ge "$PROMETHEUS_START_TIMEOUT" ]; then
      show_log_tail "$PROM_STATE/prometheus.log"; err "prometheus: not ready within ${PROMETHEUS_START_TIMEOUT}s"; return 1
    fi
    sleep 0.5
  done
}

prometheus_down() { stop_service prometheus prom_pid prom_pidfile; }

prometheus_status() {
  local pid
  if pid=$(prom_pid) && http_get "$PROMETHEUS_URL/-/ready" >/dev/null 2>&1; then
    log "prometheus: running  pid $pid  $PROMETHEUS_URL  $(prometheus_version)"
    log "            log $PROM_STATE/prometheus.log"
    return 0
  fi
  if [ -n "${pid:-}" ]; then log "prometheus: starting pid $pid  ($PROMETHEUS_URL not ready)  $(prometheus_version)"
  else log "prometheus: stopped  $PROMETHEUS_URL  $(prometheus_version)"; fi
  log "            log $PROM_STATE/prometheus.log"
  return 1
}

# ------------------------------------------------------------- subcommands ---

# Normalise service names; none means all.
parse_services() {
  SERVICES=()
  EXPLICIT=1
  if [ $# = 0 ]; then SERVICES=("${ALL_SERVICES[@]}"); EXPLICIT=0; return; fi
  local s
  for s in "$@"; do
    case $s in
      kafka) SERVICES+=(kafka) ;;
      postgres|postgresql|pg) SERVICES+=(postgres) ;;
      prometheus|prom) SERVICES+=(prometheus) ;;
      all) SERVICES=("${ALL_SERVICES[@]}") ;;
      *) die "unknown service '$s' (kafka, postgres, prometheus)" ;;
    esac
  done
}

# Prometheus is optional unless named: later issues need it, today's CI doesn't.
optional() { [ "$1" = prometheus ] && [ "$EXPLICIT" = 0 ]; }

cmd_install() {
  parse_services "$@"
  take_lock
  local s rc=0 start=$SECONDS
  for s in "${SERVICES[@]}"; do
    if ! "install_$s"; then
      if optional "$s"; then warn "$s: install failed; the other services are unaffected"
      else rc=1; fi
    fi
  done
  info "install finished in $((SECONDS - start))s"
  return "$rc"
}

cmd_up() {
  parse_services "$@"
  take_lock
  local s rc=0 start=$SECONDS failed=()
  for s in "${SERVICES[@]}"; do
    if ! "${s}_up"; then
      if optional "$s"; then warn "$s: could not start; continuing without it (run \`$0 up $s\` to require it)"
      else rc=1; failed+=("$s"); fi
    fi
  done
  if [ "$rc" = 0 ]; then
    info "up finished in $((SECONDS - start))s — use: eval \"\$($0 env)\""
  else
    err "up failed for: ${failed[*]} (after $((SECONDS - start))s)"
  fi
  return "$rc"
}

cmd_down() {
  parse_services "$@"
  take_lock
  local i rc=0
  # Reverse order of `up`.
  for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
    "${SERVICES[i]}_down" || rc=1
  done
  return "$rc"
}

cmd_status() {
  parse_services "$@"
  local s rc=0
  for s in "${SERVICES[@]}"; do "${s}_status" || rc=1; done
  return "$rc"
}

cmd_logs() {
  parse_services "$@"
  local s f
  for s in "${SERVICES[@]}"; do
    case $s in
      kafka) f=$KAFKA_STATE/logs/server.log ;;
      postgres) f=$(pg_dir)/postgres.log ;;
      prometheus) f=$PROM_STATE/prometheus.log ;;
    esac
    if [ -f "$f" ]; then printf '==> %s <==\n' "$f"; tail -n "${LOG_LINES:-50}" "$f"; else log "$s: no log yet ($f)"; fi
  done
}

cmd_env() {
  cat <<EOF
export KAFKA_BROKERS=$KAFKA_BROKERS
export KAFKA_TLS_BROKERS=$KAFKA_TLS_BROKERS
export KAFKA_TLS_CA_FILE=$KAFKA_TLS_DIR/ca.pem
export KAFKA_TLS_USERNAME=$KAFKA_SASL_USER
export KAFKA_TLS_PASSWORD=\$(cat '$KAFKA_TLS_DIR/sasl.secret' 2>/dev/null)
export DATABASE_URL=$DATABASE_URL
export PROMETHEUS_URL=$PROMETHEUS_URL
EOF
}

cmd_reset() {
  [ $# = 0 ] || die "reset takes no arguments (it resets everything)"
  cmd_down
  local pgdir; pgdir=$(pg_dir)
  # Refuse obviously wrong targets before rm -rf.
  case $STATE in /|"$HOME"|"$HOME/"|"") die "refusing to delete STATE=$STATE" ;; esac
  case $pgdir in /|"$HOME"|"$HOME/"|"") die "refusing to delete $pgdir" ;; esac
  [ -d "$pgdir" ] && [[ $pgdir != "$STATE"/* ]] && { info "deleting $pgdir"; rm -rf "$pgdir"; }
  info "deleting $STATE (jar cache $KAFKA_LIB is kept)"
  rm -rf "$STATE"
}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

main() {
  local cmd=${1:-}
  [ $# = 0 ] || shift
  case $cmd in
    install) cmd_install "$@" ;;
    up|start) cmd_up "$@" ;;
    down|stop) cmd_down "$@" ;;
    status) cmd_status "$@" ;;
    logs) cmd_logs "$@" ;;
    env) cmd_env ;;
    reset) cmd_reset "$@" ;;
    -h|--help|help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
