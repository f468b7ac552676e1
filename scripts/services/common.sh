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

# --- Ownership ----------------------------------------------------------------------------
# A server these scripts start belongs to the checkout (run dir) that started it; only that
# checkout's stop, stop-* and restart-* touch it. `start` writes two records, both
# key=value lines (pid=, start=, port=, checkout=, run_dir=, and data= for Postgres):
#   $RUN_DIR/owners/<name>          this checkout's own record: the only proof of "ours"
#   $OWNERS_DIR/<name>-<port>       the machine-wide claim on the endpoint, so that any other
#                                   checkout can say whose the server is (or that its owner is gone)
# start= is the process's start time (/proc/PID/stat field 22): a recycled pid never matches.

# proc_start PID: the start time of a live process, in clock ticks since boot.
proc_start() {
  local stat fields
  { stat=$(<"/proc/$1/stat"); } 2>/dev/null || return 1
  read -ra fields <<<"${stat##*) }" # fields[0] is field 3 (state), so field 22 is [19]
  printf '%s\n' "${fields[19]}"
}

# record_read FILE: set R_PID, R_START, R_PORT, R_CHECKOUT, R_RUN_DIR, R_DATA from a record.
record_read() {
  local key val
  R_PID='' R_START='' R_PORT='' R_CHECKOUT='' R_RUN_DIR='' R_DATA=''
  [[ -f $1 ]] || return 1
  while IFS='=' read -r key val; do
    case $key in
      pid) R_PID=$val ;;
      start) R_START=$val ;;
      port) R_PORT=$val ;;
      checkout) R_CHECKOUT=$val ;;
      run_dir) R_RUN_DIR=$val ;;
      data) R_DATA=$val ;;
    esac
  done <"$1" 2>/dev/null
  [[ -n $R_PID ]]
}

# record_alive PATTERN: the process R_PID/R_START names is still that one, and matches PATTERN.
record_alive() {
  pid_running "$R_PID" "$1" && [[ $(proc_start "$R_PID") == "$R_START" ]]
}

# record_write FILE PORT PID [DATA]: atomically record PID on PORT as started from this checkout.
record_write() {
  local file=$1 port=$2 pid=$3 data=${4:-} start
  start=$(proc_start "$pid") || return 1
  mkdir -p "$(dirname "$file")" 2>/dev/null || return 1
  {
    printf 'pid=%s\nstart=%s\nport=%s\n' "$pid" "$start" "$port"
    printf 'checkout=%s\nrun_dir=%s\n' "$REPO_DIR" "$RUN_DIR"
    [[ -z $data ]] || printf 'data=%s\n' "$data"
  } >"$file.$$" 2>/dev/null && mv -f "$file.$$" "$file"
}

# owner_claim NAME PORT PID [DATA]: this checkout now owns the server PID on PORT.
owner_claim() {
  record_write "$RUN_DIR/owners/$1" "$2" "$3" "${4:-}" ||
    die "$1: could not record pid $3 as ours in $RUN_DIR/owners/$1"
  record_write "$OWNERS_DIR/$1-$2" "$2" "$3" "${4:-}" ||
    say "$1: warning: could not write $OWNERS_DIR/$1-$2: other checkouts will see it as reused"
}

# owner_live NAME PORT PATTERN: this checkout's record names a live process on PORT matching
# PATTERN (sets R_*). A record copied along with a run dir names another run dir: not ours.
owner_live() {
  record_read "$RUN_DIR/owners/$1" && [[ $R_RUN_DIR == "$RUN_DIR" && $R_PORT == "$2" ]] &&
    record_alive "$3"
}

# owner_release NAME PORT: forget our record and our claim (never another checkout's claim).
owner_release() {
  rm -f "$RUN_DIR/owners/$1"
  if record_read "$OWNERS_DIR/$1-$2" && [[ $R_RUN_DIR == "$RUN_DIR" ]]; then
    rm -f "$OWNERS_DIR/$1-$2"
  fi
}

# owner_other NAME PORT PATTERN: the claim on PORT names a live server that this checkout does
# not own. Sets O_PID, O_DATA, O_WHERE (the owner's checkout, and its run dir if not the default)
# and O_GONE=1 when that owner's own record of it is gone (checkout or run dir deleted): nobody
# can stop it any more, so the next `start` here adopts it.
owner_other() {
  local name=$1 port=$2 pattern=$3 owner_run
  record_read "$OWNERS_DIR/$name-$port" && record_alive "$pattern" || return 1
  O_PID=$R_PID O_DATA=$R_DATA O_WHERE=$R_CHECKOUT owner_run=$R_RUN_DIR
  [[ $owner_run == "$R_CHECKOUT/.run" ]] || O_WHERE+=" (run dir $owner_run)"
  O_GONE=1 # unless the owner's record still names it (not ours: we do not own it, see caller)
  if [[ $owner_run != "$RUN_DIR" ]] && record_read "$owner_run/owners/$name" &&
    [[ $R_PID == "$O_PID" ]] && record_alive "$pattern"; then
    O_GONE=0
  fi
  return 0
}

# owner_words NAME PORT PATTERN: for a server that answers but is not ours, who it belongs to.
owner_words() {
  if ! owner_other "$1" "$2" "$3"; then
    printf 'reused: no owner recorded'
  elif [[ $O_GONE == 1 ]]; then
    # shellcheck disable=SC2016 # backquotes for the reader, not for the shell
    printf 'another checkout: %s, gone; pid %s; `start` here adopts it' "$O_WHERE" "$O_PID"
  else
    printf 'another checkout: %s, pid %s' "$O_WHERE" "$O_PID"
  fi
}

# owner_reuse NAME PORT PATTERN ADDR: `start` found a healthy server that is not ours. Adopt it
# when its owner is gone (so that some checkout can stop it again), else just say whose it is.
owner_reuse() {
  local name=$1 port=$2 pattern=$3 addr=$4
  if owner_other "$name" "$port" "$pattern" && [[ $O_GONE == 1 ]]; then
    owner_claim "$name" "$port" "$O_PID" "$O_DATA"
    say "$name: ready on $addr (adopted from $O_WHERE, which no longer records it; ours now, pid $O_PID)"
  else
    say "$name: ready on $addr ($(owner_words "$name" "$port" "$pattern"))"
  fi
}
