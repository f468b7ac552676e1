# shellcheck shell=bash
# PostgreSQL from Debian's `postgresql` package, run as the postgres user on 127.0.0.1 only.
# Sourced by scripts/services.sh; uses PG_HOST/PG_PORT/PG_DB/PG_USER/PG_PASSWORD/PG_LOCAL.

# The postgres user cannot read /root or most work trees, so the cluster lives elsewhere.
PG_DATA=${PIPELINE_PG_DATA:-/var/tmp/pipeline/postgres-$PG_PORT}
PG_LOG=$PG_DATA/server.log # written by the postgres user; linked from the run dir
PG_BIN=

pg_find_bindir() {
  local dir candidates=()
  [[ -n $PG_BIN ]] && return 0
  command -v pg_config >/dev/null && candidates+=("$(pg_config --bindir 2>/dev/null || true)")
  # Debian keeps server binaries in /usr/lib/postgresql/<ver>/bin, not on PATH; newest first.
  while IFS= read -r dir; do candidates+=("$dir"); done < <(
    printf '%s\n' /usr/lib/postgresql/*/bin | sort -rV)
  for dir in "${candidates[@]}"; do
    if [[ -x $dir/initdb && -x $dir/pg_ctl && -x $dir/psql ]]; then
      PG_BIN=$dir
      return 0
    fi
  done
  return 1
}

pg_install() {
  pg_find_bindir && return 0
  # Stop the package from creating (and starting) its own "main" cluster on 5432.
  mkdir -p /etc/postgresql-common/createcluster.d
  printf 'create_main_cluster = false\n' >/etc/postgresql-common/createcluster.d/50-pipeline.conf
  apt_install postgresql
  pg_find_bindir || die "postgres: installed, but no initdb/pg_ctl under /usr/lib/postgresql/*/bin"
}

# Run a command as the postgres user, from a directory it can read.
as_pg() {
  if ((EUID == 0)); then
    (cd / && runuser -u postgres -- "$@")
  elif [[ $(id -un) == postgres ]]; then
    (cd / && "$@")
  else
    (cd / && sudo -u postgres -- "$@")
  fi
}

# psql as the postgres superuser over TCP (trust auth on our own cluster).
pg_sql() {
  local host=$PG_HOST psql=${PG_BIN:+$PG_BIN/psql} password=
  [[ $PG_LOCAL == 1 ]] && host=127.0.0.1
  [[ $PG_USER == postgres ]] && password=$PG_PASSWORD
  PGPASSWORD=$password PGCONNECT_TIMEOUT=3 "${psql:-psql}" -h "$host" -p "$PG_PORT" \
    -U postgres -d postgres -XAtq -v ON_ERROR_STOP=1 "$@"
}

pg_healthy() { [[ $(pg_sql -c 'select 1' 2>/dev/null) == 1 ]]; }
pg_ready() {
  if [[ $PG_LOCAL == 1 ]]; then pg_healthy; else probe postgres "$PG_HOST" "$PG_PORT"; fi
}

# Ours by this checkout's record (scripts/services/common.sh, "Ownership"): the data dir and
# its postmaster.pid are shared by every checkout using the same port, so they prove nothing.
# pg_owned sets R_PID and R_DATA (the data dir the recorded postmaster runs on).
PG_PATTERN='postgres -D '
pg_owned() {
  if [[ -f $RUN_DIR/owners/postgres ]]; then
    owner_live postgres "$PG_PORT" "$PG_PATTERN" && pid_running "$R_PID" "$PG_PATTERN$R_DATA"
  else
    pg_legacy_ours
  fi
}

# Without a record (started before owners were recorded): ours if this run dir's
# postgres-ctl.log, the output of `pg_ctl start`, was written as the running postmaster started
# (postmaster.pid line 3: its start time) and no checkout has claimed the port since.
pg_legacy_ours() {
  local ctl=$RUN_DIR/postgres-ctl.log pid started written
  [[ -f $ctl ]] || return 1
  if record_read "$OWNERS_DIR/postgres-$PG_PORT" && record_alive "$PG_PATTERN"; then return 1; fi
  pid=$(sed -n 1p "$PG_DATA/postmaster.pid" 2>/dev/null) || return 1
  started=$(sed -n 3p "$PG_DATA/postmaster.pid" 2>/dev/null) || return 1
  written=$(stat -c %Y "$ctl") || return 1
  pid_running "$pid" "$PG_PATTERN$PG_DATA" && [[ $started =~ ^[0-9]+$ ]] || return 1
  ((written >= started && written <= started + SERVICES_TIMEOUT + 10)) || return 1
  R_PID=$pid R_DATA=$PG_DATA
}
pg_ours() { pg_owned && printf '%s\n' "$R_PID"; }

pg_init() {
  install -d -m 755 "$(dirname "$PG_DATA")"
  install -d -m 700 -o postgres -g postgres "$PG_DATA"
  say "postgres: initdb $PG_DATA"
  as_pg "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U postgres -E UTF8 --no-locale \
    >"$RUN_DIR/postgres-initdb.log" 2>&1 ||
    fail_log postgres "$RUN_DIR/postgres-initdb.log" "initdb failed"
  printf "include_if_exists = 'pipeline.conf'\n" >>"$PG_DATA/postgresql.conf"
}

# Settings are rewritten on every start, so PIPELINE_PG_FAST can be toggled.
pg_configure() {
  local conf=$PG_DATA/pipeline.conf fast=${PIPELINE_PG_FAST:-0}
  {
    printf '# Written by scripts/services.sh on every start.\n'
    printf "listen_addresses = '127.0.0.1'\nport = %s\n" "$PG_PORT"
    printf "unix_socket_directories = '%s'\n" "$PG_DATA"
    printf 'max_connections = 200\n'
    if [[ $fast == 1 ]]; then
      printf 'fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n'
    fi
  } >"$conf"
  chown postgres:postgres "$conf"
}

# Create the URL's role (if not postgres) and database when missing.
pg_ensure_db() {
  local db=${PG_DB:-pipeline}
  if [[ $PG_USER != postgres && $(pg_sql -v u="$PG_USER" <<<"select 1 from pg_roles where rolname = :'u'") != 1 ]]; then
    say "postgres: creating role $PG_USER"
    if [[ -n $PG_PASSWORD ]]; then
      pg_sql -v u="$PG_USER" -v p="$PG_PASSWORD" <<<"create role :\"u\" login createdb password :'p'" ||
        die "postgres: could not create role $PG_USER"
    else
      pg_sql -v u="$PG_USER" <<<"create role :\"u\" login createdb" ||
        die "postgres: could not create role $PG_USER"
    fi
  fi
  if [[ $(pg_sql -v d="$db" <<<"select 1 from pg_database where datname = :'d'") != 1 ]]; then
    say "postgres: creating database $db"
    pg_sql -v d="$db" -v o="$PG_USER" <<<"create database :\"d\" owner :\"o\"" ||
      die "postgres: could not create database $db"
  fi
}

pg_start() {
  local addr=$PG_HOST:$PG_PORT pid
  if [[ $PG_LOCAL != 1 ]]; then
    probe postgres "$PG_HOST" "$PG_PORT" || die "postgres: remote $addr is not reachable (no PostgreSQL reply)"
    say "postgres: reachable at $addr (remote, not managed)"
    return 0
  fi
  pg_install
  if pid=$(pg_ours); then
    wait_ready postgres "$SERVICES_TIMEOUT" "$PG_LOG" "$pid" pg_healthy
    pg_ensure_db
    [[ -f $RUN_DIR/owners/postgres ]] || owner_claim postgres "$PG_PORT" "$pid" "$PG_DATA" # legacy
    say "postgres: ready on $addr (already running, ours, pid $pid)"
    return 0
  fi
  if pg_healthy; then
    pg_ensure_db
    owner_reuse postgres "$PG_PORT" "$PG_PATTERN" "$addr"
    return 0
  fi
  probe tcp 127.0.0.1 "$PG_PORT" && die "postgres: port $PG_PORT is taken by something that does not answer 'select 1' as user postgres (Debian's main cluster? see pg_lsclusters)"
  say "postgres: starting"
  [[ -f $PG_DATA/PG_VERSION ]] || pg_init
  pg_configure
  ln -sfn "$PG_LOG" "$RUN_DIR/postgres.log"
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$SERVICES_TIMEOUT" start \
    </dev/null >"$RUN_DIR/postgres-ctl.log" 2>&1 9>&- || fail_log postgres "$PG_LOG" "pg_ctl start failed"
  pid=$(head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null) || true
  pid_running "$pid" "$PG_PATTERN$PG_DATA" ||
    fail_log postgres "$PG_LOG" "postmaster not running after pg_ctl start"
  owner_claim postgres "$PG_PORT" "$pid" "$PG_DATA"
  wait_ready postgres "$SERVICES_TIMEOUT" "$PG_LOG" "$pid" pg_healthy
  pg_ensure_db
  say "postgres: ready on $addr (pid $pid, data $PG_DATA)"
}

pg_stop() {
  local pid data
  pg_owned || return 0
  pid=$R_PID data=$R_DATA
  say "postgres: stopping (pid $pid, data $data)"
  if pg_find_bindir; then
    as_pg "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null ||
      fail_log postgres "$data/server.log" "pg_ctl stop failed"
  else
    kill -INT "$pid" # fast shutdown
    stop_pid postgres "$pid" 60
  fi
  owner_release postgres "$PG_PORT"
}
