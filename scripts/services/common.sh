# shellcheck shell=bash
# Shared helpers for scripts/services.sh (sourced, not executed).

say() { printf '%s\n' "$*"; }
die() { printf 'services: error: %s\n' "$*" >&2; exit 1; }

# fail_log NAME LOGFILE MESSAGE: print the message and the tail of the service log, exit 1.
fail_log() {
  printf 'services: error: %s: %s\n' "$1" "$3" >&2
  if [[ -s $2 ]]; then
    printf -- '----- last 40 lines of %s -----\n' "$2" >&2
    tail -n 40 "$2" >&2
    printf -- '-----\n' >&2
  fi
  exit 1
}

probe() { "$PYTHON" "$SERVICES_DIR/probe.py" "$@"; }

# pid_running PID [CMDLINE_PATTERN]: live (not zombie) process whose command line matches.
pid_running() {
  local pid=$1 pattern=${2:-} state cmdline
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ $state != Z ]] || return 1
  [[ -z $pattern ]] && return 0
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"$pattern"* ]]
}

# pidfile_running PIDFILE PATTERN: prints the pid if the pid file names a matching live process.
pidfile_running() {
  local pid
  [[ -s $1 ]] || return 1
  pid=$(head -n 1 "$1")
  pid_running "$pid" "$2" || return 1
  printf '%s\n' "$pid"
}

# stop_pid NAME PID GRACE_SECONDS: SIGTERM, wait, then SIGKILL.
stop_pid() {
  local name=$1 pid=$2 grace=$3 deadline
  kill -TERM "$pid" 2>/dev/null || return 0
  deadline=$((SECONDS + grace))
  while pid_running "$pid"; do
    if ((SECONDS >= deadline)); then
      say "$name: still running after ${grace}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.3
  done
}

# wait_ready NAME TIMEOUT LOGFILE PID CHECK_CMD...: poll CHECK_CMD until it succeeds; fail with
# the log tail when the deadline passes or when PID (if non-empty) dies.
wait_ready() {
  local name=$1 timeout=$2 logfile=$3 pid=$4 deadline
  shift 4
  deadline=$((SECONDS + timeout))
  until "$@"; do
    if [[ -n $pid ]] && ! pid_running "$pid"; then
      fail_log "$name" "$logfile" "process $pid exited during startup"
    fi
    if ((SECONDS >= deadline)); then
      fail_log "$name" "$logfile" "not ready after ${timeout}s"
    fi
    sleep 0.5
  done
}

# apt_install PKG...: install Debian packages without letting them start daemons.
# `apt-get update` runs at most once per invocation of services.sh.
apt_install() {
  local sudo=() log="$RUN_DIR/apt.log"
  if ((EUID != 0)); then
    command -v sudo >/dev/null || die "need root (or sudo) to install: $*"
    sudo=(sudo)
  fi
  say "apt: installing $*"
  export DEBIAN_FRONTEND=noninteractive
  (
    # No init system here: keep package scripts from starting their own daemons
    # (Debian's postgresql/redis-server would otherwise grab 5432/6379).
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
      printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
      "${sudo[@]}" chmod 755 /usr/sbin/policy-rc.d
      trap '"${sudo[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    if [[ -z ${APT_UPDATED:-} ]]; then
      "${sudo[@]}" apt-get update -q
    fi
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "$@"
  ) </dev/null >>"$log" 2>&1 9>&- || fail_log apt "$log" "apt-get install $* failed"
  APT_UPDATED=1
}
