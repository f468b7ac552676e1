#!/usr/bin/env bash
# Local backing services for the pipeline, without Docker: Kafka 3.9.1 (KRaft, jars from
# Maven Central), PostgreSQL and Redis (Debian packages, installed when missing).
#
#   scripts/services.sh start             start what is missing; return when all are ready
#   scripts/services.sh stop              stop only what `start` started
#   scripts/services.sh status            one line per service (exit 3 if any is down)
#   scripts/services.sh restart-kafka     stop + start Kafka (only if started by this script)
#   scripts/services.sh restart-postgres  stop + start Postgres (only if started by this script)
#   scripts/services.sh stop-kafka        stop Kafka only (only if started by this script)
#   scripts/services.sh start-kafka       start Kafka only (idempotent, like `start`)
#   scripts/services.sh stop-postgres     stop Postgres only (only if started by this script)
#   scripts/services.sh start-postgres    start Postgres only (idempotent, like `start`)
#   scripts/services.sh fetch-kafka       only make sure the Kafka jars are cached (no broker)
#
# Endpoints (a healthy server already answering there is reused, never stopped;
# a non-local host is only checked for reachability):
#   KAFKA_BOOTSTRAP_SERVERS  default 127.0.0.1:9092  (controller on port+1)
#   DATABASE_URL             default postgresql://postgres@127.0.0.1:5432/pipeline
#   REDIS_URL                default redis://127.0.0.1:6379/0
# Knobs:
#   PIPELINE_RUN_DIR         pid files, logs, Kafka data   (default <repo>/.run)
#   PIPELINE_PG_DATA         Postgres data dir (default /var/tmp/pipeline/postgres-<port>)
#   PIPELINE_PG_FAST=1       fsync/synchronous_commit/full_page_writes off (CI speed)
#   PIPELINE_SERVICES_TIMEOUT  readiness deadline per service in seconds (default 120)
#   XDG_CACHE_HOME           Kafka jars cache: ${XDG_CACHE_HOME:-~/.cache}/pipeline/kafka-3.9.1
set -euo pipefail

SERVICES_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/services" && pwd)
REPO_DIR=$(cd "$SERVICES_DIR/../.." && pwd)
RUN_DIR=${PIPELINE_RUN_DIR:-$REPO_DIR/.run}
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

# Serialise start/stop/restart so two concurrent invocations cannot start duplicates.
# Daemons are launched with `9>&-` so they do not inherit (and hold) the lock.
take_lock() {
  exec 9>"$RUN_DIR/.lock"
  flock -w 600 9 || die "another services.sh is still running (lock $RUN_DIR/.lock)"
}

# restart_one NAME: stop + start one service, only if this script started it.
restart_one() {
  local name=$1 fn=$1
  [[ $name == postgres ]] && fn=pg
  "${fn}_ours" >/dev/null || die "$name: not started by this script (reused, remote or down); not restarting"
  "${fn}_stop"
  "${fn}_start"
}

# stop_one NAME: stop one service, only if this script started it.
stop_one() {
  local name=$1 fn=$1
  [[ $name == postgres ]] && fn=pg
  "${fn}_ours" >/dev/null || die "$name: not started by this script (reused, remote or down); not stopping"
  "${fn}_stop"
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
      kafka_stop
      pg_stop
      redis_stop
      say "services: stopped (anything reused was left running)"
      ;;
    status)
      local rc=0
      kafka_status || rc=3
      pg_status || rc=3
      redis_status || rc=3
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
      sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
      exit 2
      ;;
  esac
}

main "$@"
