-- One provider's rate set for one day; fetching the same day again keeps the newest answer.
INSERT INTO exchange_rates (provider, base, quote, rate, as_of, fetched_at)
SELECT $1, $2, quote, rate, $3, now()
FROM unnest($4::text[], $5::numeric[]) AS r (quote, rate)
ON CONFLICT (provider, base, quote, as_of)
    DO UPDATE SET rate = excluded.rate, fetched_at = excluded.fetched_at
