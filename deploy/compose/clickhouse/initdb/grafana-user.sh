#!/bin/bash
# Runs once, on the first start of an empty ClickHouse data volume (clickhouse-server image):
# a read-only user for Grafana. Grafana does not check panel SQL, so the database must.
set -euo pipefail
db=${NOVACRON_DATABASE:-novacron}
user=${GRAFANA_CLICKHOUSE_USER:-grafana}
password=${GRAFANA_CLICKHOUSE_PASSWORD:?set GRAFANA_CLICKHOUSE_PASSWORD}
password=${password//\'/\\\'}
clickhouse client --user "${CLICKHOUSE_USER:-default}" --password "${CLICKHOUSE_PASSWORD:-}" -n <<SQL
CREATE DATABASE IF NOT EXISTS ${db};
-- readonly = 2: no writes or DDL, but the plugin may still set max_execution_time per query
CREATE SETTINGS PROFILE IF NOT EXISTS grafana_readonly
    SETTINGS readonly = 2, max_execution_time = 60 MAX 300, max_result_rows = 1000000;
CREATE USER IF NOT EXISTS ${user} IDENTIFIED WITH sha256_password BY '${password}'
    SETTINGS PROFILE 'grafana_readonly';
GRANT SELECT ON ${db}.* TO ${user};
SQL
