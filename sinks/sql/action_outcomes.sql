-- Action outcomes (whole actions, not steps) by type and final status in [start, end);
-- `simulated` separates runs whose effects were faked (the fake_infra test backend).
SELECT action_type, status, simulated, count() AS actions,
    round(avg(duration_ms), 1) AS avg_duration_ms
FROM (
    SELECT action_id, argMax(action_type, event_time) AS action_type,
        argMax(status, event_time) AS status, argMax(duration_ms, event_time) AS duration_ms,
        max(simulated) AS simulated
    FROM $db.outcomes
    WHERE scope = 'action' AND event_time >= $start AND event_time < $end
    GROUP BY action_id
)
GROUP BY action_type, status, simulated
ORDER BY action_type, status, simulated
