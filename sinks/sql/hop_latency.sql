-- Per-hop latency from processing times (`produced_at`) of events made in [start, end): each
-- event against its cause — metric sample → decision (learn), decision → verdict and
-- decision → action (govern; approved actions are caused by the approval, not counted here),
-- action → outcome (execute). Records of older writers (no produced_at) are left out.
-- Each effect names the table of its cause; one join pairs them all.
SELECT hop, count() AS events,
    round(quantile(0.5)(ms), 1) AS p50_ms, round(quantile(0.99)(ms), 1) AS p99_ms,
    max(ms) AS max_ms
FROM (
    SELECT e.hop AS hop,
        toUnixTimestamp64Milli(e.produced_at) - toUnixTimestamp64Milli(c.produced_at) AS ms
    FROM (
        SELECT DISTINCT '1 sample -> decision' AS hop, 'sample' AS cause, causation_id,
            event_id, produced_at
        FROM $db.decisions WHERE event_time >= $start AND event_time < $end
        UNION ALL
        SELECT DISTINCT '2 decision -> verdict', 'decision', causation_id, event_id, produced_at
        FROM $db.policy_verdicts WHERE event_time >= $start AND event_time < $end
        UNION ALL
        SELECT DISTINCT '3 decision -> action', 'decision', causation_id, event_id, produced_at
        FROM $db.actions WHERE event_time >= $start AND event_time < $end
        UNION ALL
        SELECT DISTINCT '4 action -> outcome', 'action', causation_id, event_id, produced_at
        FROM $db.outcomes WHERE scope = 'action' AND event_time >= $start AND event_time < $end
    ) AS e
    INNER JOIN (
        SELECT DISTINCT 'sample' AS kind, event_id, produced_at FROM $db.metric_samples
        UNION ALL
        SELECT DISTINCT 'decision', event_id, produced_at FROM $db.decisions
        UNION ALL
        SELECT DISTINCT 'action', event_id, produced_at FROM $db.actions
    ) AS c ON e.causation_id = c.event_id AND e.cause = c.kind
    WHERE e.produced_at IS NOT NULL AND c.produced_at IS NOT NULL
)
GROUP BY hop
ORDER BY hop
