-- A run that read its whole plan.
UPDATE replay_runs SET finished_at = now() WHERE run_id = $1
