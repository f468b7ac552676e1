#!/usr/bin/env bash
# Runs the ingress (port 8080) and one worker in the foreground; Ctrl-C stops both cleanly.
# `make run` calls this after starting the services and applying migrations.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
HOST=${INGRESS_HOST:-127.0.0.1}
PORT=${INGRESS_PORT:-8080}

"$BIN/pipeline" ingress --host "$HOST" --port "$PORT" &
ingress=$!
"$BIN/pipeline" worker &
worker=$!

stop() {
  trap - INT TERM
  echo "run: stopping ingress and worker..." >&2
  kill -TERM "$ingress" "$worker" 2>/dev/null
  wait "$ingress" "$worker" 2>/dev/null
  exit "${1:-0}"
}
trap 'stop 0' INT TERM

echo "run: ingress on http://$HOST:$PORT/webhooks/<platform>, worker health on :${WORKER_WEB_PORT:-6066}" >&2
# If either process dies on its own, stop the other and report failure.
wait -n "$ingress" "$worker"
status=$?
echo "run: the ingress or the worker exited (status $status); stopping the other" >&2
stop "$status"
