-- One run's plan, whether it finished, and the next offset of each partition it has started.
SELECT r.kind, r.plan::text AS plan, r.finished_at,
       coalesce(jsonb_object_agg(c.partition, c.next_offset)
                FILTER (WHERE c.partition IS NOT NULL), '{}')::text AS next_offsets
FROM replay_runs r LEFT JOIN replay_checkpoints c USING (run_id)
WHERE r.run_id = $1
GROUP BY r.run_id
