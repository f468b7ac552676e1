#!/usr/bin/env bash
# Kafka's kafka-consumer-groups.sh (3.9.1), for machines without a Kafka distribution: the same
# tool and arguments, run from Maven Central jars. The jars `make services` caches for the
# broker lack it, so the first run downloads kafka-tools into
# ${XDG_CACHE_HOME:-~/.cache}/pipeline/kafka-3.9.1/tools (beside, never inside, the broker's libs).
#
#   scripts/kafka-consumer-groups.sh --bootstrap-server 127.0.0.1:9092 --group my-app \
#       --topic commerce.orders --reset-offsets --to-datetime 2026-12-01T02:00:00.000Z --execute
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
version=3.9.1
cache=${XDG_CACHE_HOME:-$HOME/.cache}/pipeline/kafka-$version
tools=$cache/tools
pom=$here/services/kafka/tools-pom.xml

fetch() {
  local marker=$tools/.complete want
  want=$(sha256sum "$pom" | cut -d' ' -f1)
  [[ -f $marker && $(<"$marker") == "$want" ]] && return 0
  if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
    echo "kafka-consumer-groups: needs java and maven (\`make services\` installs both)" >&2
    exit 1
  fi
  echo "kafka-consumer-groups: downloading kafka-tools $version into $tools (once)" >&2
  rm -rf "$tools/libs" "$marker"
  mkdir -p "$tools"
  cp "$pom" "$tools/pom.xml"
  if ! mvn -B -q -f "$tools/pom.xml" \
    org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tools/libs" </dev/null >"$tools/mvn.log" 2>&1; then
    echo "kafka-consumer-groups: maven download failed; see $tools/mvn.log" >&2
    exit 1
  fi
  printf '%s\n' "$want" >"$marker"
}

mkdir -p "$cache"
exec 9>"$cache/tools.lock" # two first runs at once download once
flock 9
fetch
flock -u 9
exec java -Xmx256m -XX:TieredStopAtLevel=1 \
  "-Dlog4j.configuration=file:$here/services/kafka/tools-log4j.properties" \
  -cp "$tools/libs/*" org.apache.kafka.tools.consumer.group.ConsumerGroupCommand "$@" 9>&-
