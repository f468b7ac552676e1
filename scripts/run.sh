#!/usr/bin/env bash
# Runs the ingress and one worker in the foreground; Ctrl-C stops both cleanly.
# `make run` calls this after starting the services and applying migrations. Both processes
# log to stderr, one JSON line per event with `service` naming the process (LOG_FORMAT=text
# for plain lines); "run:" lines are this script's.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
HOST=${INGRESS_HOST:-127.0.0.1}
PORT=${INGRESS_PORT:-8080}
WORKER_PORT=${WORKER_WEB_PORT:-6066}
stopping=0

"$BIN/pipeline" ingress --host "$HOST" --port "$PORT" &
ingress=$!
"$BIN/pipeline" worker &
worker=$!

stop() {
  [[ $stopping == 1 ]] && return
  stopping=1
  trap - INT TERM
  echo "run: stopping the ingress and the worker..." >&2
  kill -TERM "$ingress" "$worker" "$announcer" 2>/dev/null
  wait "$ingress" "$worker" 2>/dev/null
  echo "run: stopped" >&2
  exit 0
}
trap stop INT TERM

echo "run: starting the ingress on $HOST:$PORT and a worker (health on :$WORKER_PORT)..." >&2
(
  if "$BIN/python" scripts/wait-ready.py "http://$HOST:$PORT/readyz" \
    "http://127.0.0.1:$WORKER_PORT/readyz"; then
    echo "run: ready: POST webhooks to http://$HOST:$PORT/webhooks/<platform> (Ctrl-C stops)" >&2
  fi
) &
announcer=$!

wait -n "$ingress" "$worker"
status=$?
# Ctrl-C reaches both processes too; one that handled it exits 0 (or 130/143), and bash then
# skips the INT trap: that is a normal stop, not a failure.
if [[ $stopping == 1 || $status == 0 || $status == 130 || $status == 143 ]]; then
  stop
fi
if kill -0 "$ingress" 2>/dev/null; then gone=worker; else gone=ingress; fi
echo "run: the $gone exited (status $status); stopping the other" >&2
kill -TERM "$ingress" "$worker" "$announcer" 2>/dev/null
wait "$ingress" "$worker" 2>/dev/null
exit "$status"
