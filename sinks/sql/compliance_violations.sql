-- Open compliance violations (latest state per control and resource) in [start, end).
SELECT control_id, resource_id, resource_type, severity, standards, message, remediation, last_seen
FROM (
    SELECT control_id, resource_id, argMax(resource_type, event_time) AS resource_type,
        argMax(severity, event_time) AS severity, argMax(standards, event_time) AS standards,
        argMax(message, event_time) AS message, argMax(remediation, event_time) AS remediation,
        argMax(status, event_time) AS status, max(event_time) AS last_seen
    FROM $db.compliance_results
    WHERE event_time >= $start AND event_time < $end
    GROUP BY control_id, resource_id
)
WHERE status = 'open'
    AND ($standard = '' OR arrayExists(s -> splitByChar(':', s)[1] = $standard, standards))
ORDER BY indexOf(['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFO'], severity), control_id, resource_id
