-- Dashboard roll-up: per resource per minute averages in [start, end) from the materialised view.
SELECT resource_id, cluster, minute, avg_cpu, avg_memory, avg_latency_ms, samples
FROM $db.metric_rollup_1m_v
WHERE minute >= toStartOfMinute($start) AND minute < $end
ORDER BY resource_id, minute
