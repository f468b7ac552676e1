-- Where a run continues in each partition, saved after every batch it has stored.
INSERT INTO replay_checkpoints (run_id, partition, next_offset)
SELECT $1, p, o FROM unnest($2::integer[], $3::bigint[]) AS t (p, o)
ON CONFLICT (run_id, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()
