-- Decision log: policy verdicts by outcome in [start, end), deduplicated by event_id.
SELECT outcome, uniqExact(event_id) AS verdicts, round(avg(latency_ms), 3) AS avg_latency_ms,
    countIf(length(violations) > 0) AS with_violations
FROM $db.policy_verdicts
WHERE event_time >= $start AND event_time < $end
GROUP BY outcome
ORDER BY verdicts DESC
