-- `pipeline reemit`: one keyset page of canonical events to publish again, in stored order.
-- NULL means "any". The time filter is on recorded_at: when the worker stored (and then
-- published) the event, which is the time a consumer's loss is measured in.
SELECT id, event_id, payload::text AS payload
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
ORDER BY id
LIMIT $10
