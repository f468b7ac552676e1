-- The stored snapshots on or before $1, newest first: one row per provider and day.
SELECT provider, base, as_of, count(*) AS quotes, max(fetched_at) AS fetched_at
FROM exchange_rates
WHERE as_of <= $1
GROUP BY provider, base, as_of
ORDER BY as_of DESC, provider
LIMIT $2
