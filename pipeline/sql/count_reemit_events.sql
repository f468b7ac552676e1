-- `pipeline reemit`'s plan: how many events of each record schema (so each topic) match, over
-- which time span and id range. The same filter as select_reemit_events.sql, without a limit.
SELECT payload ->> 'schema' AS schema, count(*) AS events,
       min(recorded_at) AS first_recorded, max(recorded_at) AS last_recorded,
       min(id) AS first_id, max(id) AS last_id
FROM commerce_events
WHERE ($1::text IS NULL OR platform = $1)
  AND ($2::text IS NULL OR shop_id = $2)
  AND ($3::timestamptz IS NULL OR recorded_at >= $3)
  AND ($4::timestamptz IS NULL OR recorded_at < $4)
  AND ($5::text[] IS NULL OR type = ANY($5))
  AND ($6::text[] IS NULL OR entity_type = ANY($6))
  AND ($7::text IS NULL OR entity_id = $7)
  AND id > $8
  AND ($9::bigint IS NULL OR id <= $9)
GROUP BY 1
ORDER BY 1
