-- A guarded write's fence check, in its transaction: the lock's newest token becomes $2 unless
-- a newer one was seen; no row back means $2 is stale. The row stays locked until commit, so
-- guarded writes under one lock run one at a time.
INSERT INTO lock_fences (name, token) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET token = excluded.token, updated_at = now()
    WHERE excluded.token >= lock_fences.token
RETURNING token
