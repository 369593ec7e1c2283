-- Drift findings by severity and status in [start, end).
SELECT severity, status, uniqExact(event_id) AS findings, uniqExact(resource_id) AS resources,
    round(avg(drift_ratio), 4) AS avg_drift_ratio
FROM $db.drift_findings
WHERE event_time >= $start AND event_time < $end
GROUP BY severity, status
ORDER BY indexOf(['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFO'], severity), status
