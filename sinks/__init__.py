"""History: ClickHouse DDL, backends (chDB, clickhouse-connect), batching writer and queries."""
