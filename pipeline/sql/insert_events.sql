-- Append canonical events; an event id already stored is a replay or a content duplicate.
INSERT INTO commerce_events
    (event_id, type, platform, shop_id, entity_type, entity_id, delivery_id, payload, occurred_at)
SELECT *
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::jsonb[], $9::timestamptz[])
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id
