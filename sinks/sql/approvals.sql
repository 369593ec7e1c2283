-- Approval requests and who decided them in [start, end).
SELECT request_id, argMax(status, event_time) AS status, argMax(`by`, event_time) AS decided_by,
    argMax(reason, event_time) AS reason, min(event_time) AS requested, max(event_time) AS updated
FROM $db.approvals
WHERE event_time >= $start AND event_time < $end
GROUP BY request_id
ORDER BY requested
