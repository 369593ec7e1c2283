-- Per-hop latency from processing times (`produced_at`) of events made in [start, end): each
-- event against its cause — metric sample → decision (learn), decision → verdict and
-- decision → action (govern; approved actions are caused by the approval, not counted here),
-- action → outcome (execute). Records of older writers (no produced_at) are left out.
SELECT hop, count() AS events,
    round(quantile(0.5)(ms), 1) AS p50_ms, round(quantile(0.99)(ms), 1) AS p99_ms,
    max(ms) AS max_ms
FROM (
    SELECT '1 sample -> decision' AS hop,
        toUnixTimestamp64Milli(e.produced_at) - toUnixTimestamp64Milli(c.produced_at) AS ms
    FROM (SELECT DISTINCT event_id, causation_id, produced_at FROM $db.decisions
          WHERE event_time >= $start AND event_time < $end AND produced_at IS NOT NULL) AS e
    INNER JOIN (SELECT DISTINCT event_id, produced_at FROM $db.metric_samples
                WHERE produced_at IS NOT NULL) AS c ON e.causation_id = c.event_id
    UNION ALL
    SELECT '2 decision -> verdict' AS hop,
        toUnixTimestamp64Milli(e.produced_at) - toUnixTimestamp64Milli(c.produced_at) AS ms
    FROM (SELECT DISTINCT event_id, causation_id, produced_at FROM $db.policy_verdicts
          WHERE event_time >= $start AND event_time < $end AND produced_at IS NOT NULL) AS e
    INNER JOIN (SELECT DISTINCT event_id, produced_at FROM $db.decisions
                WHERE produced_at IS NOT NULL) AS c ON e.causation_id = c.event_id
    UNION ALL
    SELECT '3 decision -> action' AS hop,
        toUnixTimestamp64Milli(e.produced_at) - toUnixTimestamp64Milli(c.produced_at) AS ms
    FROM (SELECT DISTINCT event_id, causation_id, produced_at FROM $db.actions
          WHERE event_time >= $start AND event_time < $end AND produced_at IS NOT NULL) AS e
    INNER JOIN (SELECT DISTINCT event_id, produced_at FROM $db.decisions
                WHERE produced_at IS NOT NULL) AS c ON e.causation_id = c.event_id
    UNION ALL
    SELECT '4 action -> outcome' AS hop,
        toUnixTimestamp64Milli(e.produced_at) - toUnixTimestamp64Milli(c.produced_at) AS ms
    FROM (SELECT DISTINCT event_id, causation_id, produced_at FROM $db.outcomes
          WHERE scope = 'action' AND event_time >= $start AND event_time < $end
            AND produced_at IS NOT NULL) AS e
    INNER JOIN (SELECT DISTINCT event_id, produced_at FROM $db.actions
                WHERE produced_at IS NOT NULL) AS c ON e.causation_id = c.event_id
)
GROUP BY hop
ORDER BY hop
