-- Dead letters grouped by source topic, kind and reason in [start, end).
SELECT source_topic, error_kind, reason, uniqExact(event_id) AS records,
    min(event_time) AS first_seen, max(event_time) AS last_seen
FROM $db.dead_letters
WHERE event_time >= $start AND event_time < $end
GROUP BY source_topic, error_kind, reason
ORDER BY records DESC, source_topic
LIMIT 100
