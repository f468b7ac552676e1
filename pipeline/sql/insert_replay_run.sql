-- A new replay or rebuild run, with the plan it follows (resumes read the plan back).
INSERT INTO replay_runs (run_id, kind, plan) VALUES ($1, $2, $3::jsonb)
