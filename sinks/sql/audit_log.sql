-- The hash-chained audit log in [start, end), in chain order (verify with sinks.audit.verify_chain).
SELECT seq, time, actor, kind, subject_id, correlation_id, details, prev_hash, hash
FROM $db.audit_log FINAL
WHERE time >= $start AND time < $end
ORDER BY seq
