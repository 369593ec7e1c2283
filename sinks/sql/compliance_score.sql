-- Compliance score per standard: latest result per (control, resource) in [start, end).
SELECT splitByChar(':', standard)[1] AS framework,
    count() AS checks, countIf(passed) AS passed_checks,
    round(100 * countIf(passed) / count(), 2) AS score_pct
FROM (
    SELECT control_id, resource_id, argMax(standards, event_time) AS standards,
        argMax(passed, event_time) AS passed
    FROM $db.compliance_results
    WHERE event_time >= $start AND event_time < $end
    GROUP BY control_id, resource_id
)
ARRAY JOIN standards AS standard
WHERE $standard = '' OR framework = $standard
GROUP BY framework
ORDER BY framework
