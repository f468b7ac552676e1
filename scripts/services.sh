#!/usr/bin/env bash
# Local backing services for the pipeline, without Docker: Kafka 3.9.1 (KRaft, jars from
# Maven Central), PostgreSQL and Redis (Debian packages, installed when missing).
#
#   scripts/services.sh start             start what is missing; return when all are ready
#   scripts/services.sh stop              stop only what this checkout started
#   scripts/services.sh status            one line per service: up (whose) or down (exit 3 if any is down)
#   scripts/services.sh restart-kafka     stop + start Kafka (only if this checkout started it)
#   scripts/services.sh restart-postgres  stop + start Postgres (only if this checkout started it)
#   scripts/services.sh stop-kafka        stop Kafka only (only if this checkout started it)
#   scripts/services.sh start-kafka       start Kafka only (idempotent, like `start`)
#   scripts/services.sh stop-postgres     stop Postgres only (only if this checkout started it)
#   scripts/services.sh start-postgres    start Postgres only (idempotent, like `start`)
#   scripts/services.sh fetch-kafka       only make sure the Kafka jars are cached (no broker)
#
# Ownership: a server belongs to the checkout (run dir) whose `start` started it, recorded in
# that run dir (owners/<name>) and claimed machine-wide (PIPELINE_OWNERS_DIR/<name>-<port>).
# Another checkout reuses it and never stops it; `status` says which is which:
#   up (ours, pid N)                               this checkout started it
#   up (another checkout: /path, pid N)            another checkout started it; left to that one
#   up (another checkout: /path, gone; ...)        its checkout or run dir was deleted: the next
#                                                  `start` or `start-<name>` here adopts it
#   up (reused: no owner recorded)                 not started by these scripts (or by a version
#                                                  that did not record owners); never stopped
#   up (remote)  /  down
#
# Endpoints (a healthy server already answering there is reused, never stopped;
# a non-local host is only checked for reachability):
#   KAFKA_BOOTSTRAP_SERVERS  default 127.0.0.1:9092  (controller on port+1)
#   DATABASE_URL             default postgresql://postgres@127.0.0.1:5432/pipeline
#   REDIS_URL                default redis://127.0.0.1:6379/0
# Knobs:
#   PIPELINE_RUN_DIR         pid files, owner records, logs, Kafka data   (default <repo>/.run)
#   PIPELINE_OWNERS_DIR      machine-wide claims and lock (default /var/tmp/pipeline/owners)
#   PIPELINE_PG_DATA         Postgres data dir (default /var/tmp/pipeline/postgres-<port>)
#   PIPELINE_PG_FAST=1       fsync/synchronous_commit/full_page_writes off (CI speed)
#   PIPELINE_SERVICES_TIMEOUT  readiness deadline per service in seconds (default 120)
#   XDG_CACHE_HOME           Kafka jars cache: ${XDG_CACHE_HOME:-~/.cache}/pipeline/kafka-3.9.1
set -euo pipefail

SERVICES_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/services" && pwd)
REPO_DIR=$(cd "$SERVICES_DIR/../.." && pwd)
RUN_DIR=${PIPELINE_RUN_DIR:-$REPO_DIR/.run}
OWNERS_DIR=${PIPELINE_OWNERS_DIR:-/var/tmp/pipeline/owners}
SERVICES_TIMEOUT=${PIPELINE_SERVICES_TIMEOUT:-120}
PYTHON=$(command -v python3) || { echo "services: error: python3 is required" >&2; exit 1; }

KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092}
DATABASE_URL=${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/pipeline}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}

# shellcheck source=services/common.sh
source "$SERVICES_DIR/common.sh"

# Sets <PREFIX>_HOST, _PORT, _DB, _USER, _PASSWORD, _LOCAL.
eval "$(probe endpoint KAFKA "$KAFKA_BOOTSTRAP_SERVERS")"
eval "$(probe endpoint PG "$DATABASE_URL")"
eval "$(probe endpoint REDIS "$REDIS_URL")"
PG_USER=${PG_USER:-postgres}

mkdir -p "$RUN_DIR"
# shellcheck source=services/kafka.sh
source "$SERVICES_DIR/kafka.sh"
# shellcheck source=services/postgres.sh
source "$SERVICES_DIR/postgres.sh"
# shellcheck source=services/redis.sh
source "$SERVICES_DIR/redis.sh"

# Serialise start/stop/restart, machine-wide (every checkout, one lock), so that two
# invocations cannot start duplicates or race for a claim or the shared jar cache.
# Daemons are launched with `9>&-` so they do not inherit (and hold) the lock.
take_lock() {
  local lock=$OWNERS_DIR/.lock
  mkdir -p "$OWNERS_DIR" 2>/dev/null || lock=$RUN_DIR/.lock
  exec 9>"$lock"
  flock -w 600 9 || die "another services.sh is still running (lock $lock)"
}

# svc NAME: set S_FN (the function prefix), S_HOST, S_PORT, S_LOCAL, S_PATTERN for one service.
svc() {
  case $1 in
    kafka) S_FN=kafka S_HOST=$KAFKA_HOST S_PORT=$KAFKA_PORT S_LOCAL=$KAFKA_LOCAL S_PATTERN=$KAFKA_PATTERN ;;
    postgres) S_FN=pg S_HOST=$PG_HOST S_PORT=$PG_PORT S_LOCAL=$PG_LOCAL S_PATTERN=$PG_PATTERN ;;
    redis) S_FN=redis S_HOST=$REDIS_HOST S_PORT=$REDIS_PORT S_LOCAL=$REDIS_LOCAL S_PATTERN=$REDIS_PATTERN ;;
    *) die "unknown service $1" ;;
  esac
}

# whose NAME: for a service this checkout does not own, why (after `svc NAME`).
whose() {
  if [[ $S_LOCAL != 1 ]]; then
    printf 'remote, not managed'
  elif "${S_FN}_ready"; then
    owner_words "$1" "$S_PORT" "$S_PATTERN"
  else
    printf 'down'
  fi
}

# status_one NAME: one line, `NAME: up (WHOSE) HOST:PORT` or `NAME: down HOST:PORT`.
status_one() {
  local name=$1 pid data=''
  svc "$name"
  local addr=$S_HOST:$S_PORT
  if [[ $S_LOCAL == 1 ]] && pid=$("${S_FN}_ours"); then
    if "${S_FN}_ready"; then
      [[ $name == postgres ]] && record_read "$RUN_DIR/owners/postgres" && data=", data $R_DATA"
      say "$name: up (ours, pid $pid$data) $addr"
      return 0
    fi
    say "$name: down $addr (our pid $pid is running but not answering)"
    return 1
  fi
  if [[ $S_LOCAL != 1 ]] && "${S_FN}_ready"; then
    say "$name: up (remote) $addr"
  elif [[ $S_LOCAL == 1 ]] && "${S_FN}_ready"; then
    say "$name: up ($(owner_words "$name" "$S_PORT" "$S_PATTERN")) $addr"
  else
    say "$name: down $addr"
    return 1
  fi
}

# stop_if_ours NAME: stop it if this checkout started it, else say whose it is and leave it.
stop_if_ours() {
  local name=$1 words
  svc "$name"
  if [[ $S_LOCAL == 1 ]] && "${S_FN}_ours" >/dev/null; then
    "${S_FN}_stop"
    return 0
  fi
  words=$(whose "$name")
  if [[ $words == down ]]; then
    say "$name: not running"
  else
    say "$name: left running ($words)"
  fi
}

# only_ours NAME VERB: die unless this checkout started NAME.
only_ours() {
  svc "$1"
  if [[ $S_LOCAL != 1 ]] || ! "${S_FN}_ours" >/dev/null; then
    die "$1: not started by this checkout ($(whose "$1")); not $2"
  fi
}

# restart_one NAME: stop + start one service, only if this checkout started it.
restart_one() {
  only_ours "$1" restarting
  "${S_FN}_stop"
  "${S_FN}_start"
}

# stop_one NAME: stop one service, only if this checkout started it.
stop_one() {
  only_ours "$1" stopping
  "${S_FN}_stop"
}

main() {
  local cmd=${1:-}
  case $cmd in
    start)
      take_lock
      kafka_start
      pg_start
      redis_start
      ;;
    stop)
      take_lock
      pg_find_bindir || true
      stop_if_ours kafka
      stop_if_ours postgres
      stop_if_ours redis
      say "services: stopped what this checkout started; the rest was left running"
      ;;
    status)
      local rc=0
      pg_find_bindir || true
      status_one kafka || rc=3
      status_one postgres || rc=3
      status_one redis || rc=3
      return "$rc"
      ;;
    restart-kafka)
      take_lock
      restart_one kafka
      ;;
    restart-postgres)
      take_lock
      restart_one postgres
      ;;
    stop-kafka)
      take_lock
      stop_one kafka
      ;;
    start-kafka)
      take_lock
      kafka_start
      ;;
    stop-postgres)
      take_lock
      stop_one postgres
      ;;
    start-postgres)
      take_lock
      pg_start
      ;;
    fetch-kafka)
      # For tools that run their own brokers from the same jars (bench/cluster.py).
      take_lock
      kafka_fetch_jars
      say "kafka: jars ready in $KAFKA_LIBS"
      ;;
    *)
      sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
      exit 2
      ;;
  esac
}

main "$@"
