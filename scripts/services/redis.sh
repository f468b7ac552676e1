# shellcheck shell=bash
# Redis from Debian's `redis-server` package, in-memory only, bound to 127.0.0.1.
# Sourced by scripts/services.sh; uses REDIS_HOST/REDIS_PORT/REDIS_PASSWORD/REDIS_LOCAL.

REDIS_RUN=$RUN_DIR/redis
REDIS_PIDFILE=$REDIS_RUN/redis.pid
REDIS_LOG=$REDIS_RUN/redis.log

# Ours: this checkout's record (common.sh, "Ownership"); without one, the pid file in this run
# dir naming a redis-server working in this run dir (what these scripts left before they
# recorded owners).
REDIS_PATTERN=redis-server
redis_ours() {
  local pid
  if [[ -f $RUN_DIR/owners/redis ]]; then
    owner_live redis "$REDIS_PORT" "$REDIS_PATTERN" && printf '%s\n' "$R_PID"
  elif pid=$(pidfile_running "$REDIS_PIDFILE" "$REDIS_PATTERN") &&
    [[ $(readlink -f "/proc/$pid/cwd" 2>/dev/null) == "$(readlink -f "$REDIS_RUN")" ]]; then
    printf '%s\n' "$pid"
  else
    return 1
  fi
}
redis_ready() {
  local host=$REDIS_HOST
  [[ $REDIS_LOCAL == 1 ]] && host=127.0.0.1
  probe redis "$host" "$REDIS_PORT" "$REDIS_PASSWORD"
}

redis_start() {
  local addr=$REDIS_HOST:$REDIS_PORT pid auth=()
  if [[ $REDIS_LOCAL != 1 ]]; then
    redis_ready || die "redis: remote $addr is not reachable (no PONG)"
    say "redis: reachable at $addr (remote, not managed)"
    return 0
  fi
  if pid=$(redis_ours); then
    wait_ready redis "$SERVICES_TIMEOUT" "$REDIS_LOG" "$pid" redis_ready
    [[ -f $RUN_DIR/owners/redis ]] || owner_claim redis "$REDIS_PORT" "$pid" # from a pid file
    say "redis: ready on $addr (already running, ours, pid $pid)"
    return 0
  fi
  if redis_ready; then
    owner_reuse redis "$REDIS_PORT" "$REDIS_PATTERN" "$addr"
    return 0
  fi
  probe tcp 127.0.0.1 "$REDIS_PORT" && die "redis: port $REDIS_PORT is taken by something that does not answer PING"
  command -v redis-server >/dev/null || apt_install redis-server
  say "redis: starting"
  mkdir -p "$REDIS_RUN"
  rm -f "$REDIS_PIDFILE"
  [[ -n $REDIS_PASSWORD ]] && auth=(--requirepass "$REDIS_PASSWORD")
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize yes --pidfile "$REDIS_PIDFILE" --logfile "$REDIS_LOG" --dir "$REDIS_RUN" \
    "${auth[@]}" </dev/null >"$REDIS_RUN/start.log" 2>&1 9>&- ||
    fail_log redis "$REDIS_RUN/start.log" "redis-server failed to start"
  # --daemonize returns before the pid file exists; give it a moment.
  for _ in {1..20}; do
    pid=$(pidfile_running "$REDIS_PIDFILE" "$REDIS_PATTERN") && break
    sleep 0.25
  done
  [[ -n $pid ]] || fail_log redis "$REDIS_LOG" "redis-server exited during startup"
  owner_claim redis "$REDIS_PORT" "$pid"
  wait_ready redis "$SERVICES_TIMEOUT" "$REDIS_LOG" "$pid" redis_ready
  say "redis: ready on $addr (pid $pid)"
}

redis_stop() {
  local pid
  if pid=$(redis_ours); then
    say "redis: stopping (pid $pid)"
    stop_pid redis "$pid" 10 # SIGTERM: clean shutdown; nothing to save (--save '')
    owner_release redis "$REDIS_PORT"
  fi
  rm -f "$REDIS_PIDFILE"
}
