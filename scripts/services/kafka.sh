# shellcheck shell=bash
# Kafka 3.9.1, single node, KRaft combined mode, run from Maven Central jars (no Docker).
# Sourced by scripts/services.sh; uses KAFKA_HOST/KAFKA_PORT/KAFKA_LOCAL set there.

KAFKA_VERSION=3.9.1
KAFKA_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/pipeline/kafka-$KAFKA_VERSION
KAFKA_LIBS=$KAFKA_CACHE/libs
KAFKA_RUN=$RUN_DIR/kafka
KAFKA_PIDFILE=$KAFKA_RUN/kafka.pid
KAFKA_LOG=$KAFKA_RUN/kafka.log
KAFKA_CONF=$KAFKA_RUN/server.properties
KAFKA_DATA=$KAFKA_RUN/data
KAFKA_CONTROLLER_PORT=${PIPELINE_KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}
KAFKA_HEAP=${PIPELINE_KAFKA_HEAP:--Xms256m -Xmx512m}
KAFKA_TOOL_OPTS=(-Xmx256m "-Dlog4j.configuration=file:$SERVICES_DIR/kafka/tools-log4j.properties")

# Ours: this checkout's record (common.sh, "Ownership"); without one, a pid file in this run dir
# naming a broker on this run dir's config (what these scripts left before they recorded owners).
KAFKA_PATTERN=kafka.Kafka
kafka_ours() {
  if [[ -f $RUN_DIR/owners/kafka ]]; then
    owner_live kafka "$KAFKA_PORT" "$KAFKA_PATTERN" && printf '%s\n' "$R_PID"
  else
    pidfile_running "$KAFKA_PIDFILE" "$KAFKA_PATTERN $KAFKA_CONF"
  fi
}
kafka_ready() {
  if [[ $KAFKA_LOCAL == 1 ]]; then probe kafka 127.0.0.1 "$KAFKA_PORT"; else probe kafka "$KAFKA_HOST" "$KAFKA_PORT"; fi
}

ensure_java() {
  command -v java >/dev/null && command -v mvn >/dev/null && return 0
  apt_install openjdk-17-jre-headless maven
}

# Download the broker's runtime jars once into the cache. The marker (a hash of the pom)
# is written only after a complete download, so an interrupted one is redone.
kafka_fetch_jars() {
  local pom=$SERVICES_DIR/kafka/pom.xml marker=$KAFKA_CACHE/.complete want
  ensure_java
  want=$(sha256sum "$pom" | cut -d' ' -f1)
  [[ -f $marker && $(<"$marker") == "$want" ]] && return 0
  say "kafka: downloading jars for $KAFKA_VERSION into $KAFKA_LIBS"
  rm -rf "$KAFKA_LIBS" "$marker"
  mkdir -p "$KAFKA_CACHE"
  cp "$pom" "$KAFKA_CACHE/pom.xml"
  mvn -B -q -f "$KAFKA_CACHE/pom.xml" \
    org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS" </dev/null >"$KAFKA_CACHE/mvn.log" 2>&1 ||
    fail_log kafka "$KAFKA_CACHE/mvn.log" "maven download of the Kafka jars failed"
  compgen -G "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null ||
    fail_log kafka "$KAFKA_CACHE/mvn.log" "kafka_2.13-$KAFKA_VERSION.jar missing after download"
  printf '%s\n' "$want" >"$marker"
}

# Write server.properties and format the storage (keeps existing data: --ignore-formatted).
kafka_configure() {
  local cid
  mkdir -p "$KAFKA_DATA"
  sed -e "s|@PORT@|$KAFKA_PORT|g" -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
    -e "s|@DATA_DIR@|$KAFKA_DATA|g" "$SERVICES_DIR/kafka/server.properties.in" >"$KAFKA_CONF"
  if [[ -f $KAFKA_DATA/meta.properties ]]; then
    cid=$(sed -n 's/^cluster\.id=//p' "$KAFKA_DATA/meta.properties")
  else
    cid=$(java "${KAFKA_TOOL_OPTS[@]}" -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool random-uuid)
  fi
  java "${KAFKA_TOOL_OPTS[@]}" -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool format \
    -t "$cid" -c "$KAFKA_CONF" --ignore-formatted >>"$KAFKA_RUN/format.log" 2>&1 ||
    fail_log kafka "$KAFKA_RUN/format.log" "storage format failed"
}

kafka_start() {
  local addr=$KAFKA_HOST:$KAFKA_PORT pid port
  if [[ $KAFKA_LOCAL != 1 ]]; then
    kafka_ready || die "kafka: remote $addr is not reachable (no Kafka ApiVersions reply)"
    say "kafka: reachable at $addr (remote, not managed)"
    return 0
  fi
  if pid=$(kafka_ours); then
    wait_ready kafka "$SERVICES_TIMEOUT" "$KAFKA_LOG" "$pid" kafka_ready
    [[ -f $RUN_DIR/owners/kafka ]] || owner_claim kafka "$KAFKA_PORT" "$pid" # from a pid file
    say "kafka: ready on $addr (already running, ours, pid $pid)"
    return 0
  fi
  if kafka_ready; then
    owner_reuse kafka "$KAFKA_PORT" "$KAFKA_PATTERN" "$addr"
    return 0
  fi
  for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    probe tcp 127.0.0.1 "$port" && die "kafka: port $port is taken by something that is not a healthy Kafka broker"
  done
  say "kafka: starting"
  kafka_fetch_jars
  mkdir -p "$KAFKA_RUN"
  kafka_configure
  [[ -f $KAFKA_LOG ]] && mv -f "$KAFKA_LOG" "$KAFKA_LOG.1"
  # shellcheck disable=SC2086 # KAFKA_HEAP is a list of JVM flags
  nohup setsid java $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    "-Dlog4j.configuration=file:$SERVICES_DIR/kafka/log4j.properties" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_CONF" </dev/null >"$KAFKA_LOG" 2>&1 9>&- &
  pid=$!
  printf '%s\n' "$pid" >"$KAFKA_PIDFILE"
  owner_claim kafka "$KAFKA_PORT" "$pid"
  # The PLAINTEXT port opens only once the node has registered and been unfenced.
  wait_ready kafka "$SERVICES_TIMEOUT" "$KAFKA_LOG" "$pid" kafka_ready
  say "kafka: ready on $addr (pid $pid)"
}

kafka_stop() {
  local pid
  if pid=$(kafka_ours); then
    say "kafka: stopping (pid $pid)"
    stop_pid kafka "$pid" 30
    owner_release kafka "$KAFKA_PORT"
  fi
  rm -f "$KAFKA_PIDFILE"
}
