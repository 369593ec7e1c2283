#!/usr/bin/env bash
# Local single-node Apache Kafka 4.x (KRaft) from Maven Central jars: kafka.sh start|stop|status|fetch
# Jars and data live outside the checkout, in ${NOVACRON_KAFKA_HOME:-~/.cache/novacron}.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
py=${NOVACRON_PYTHON:-$(command -v python3)}
cd "$here" && exec "$py" -m streams.kafka_local "${1:-status}"
