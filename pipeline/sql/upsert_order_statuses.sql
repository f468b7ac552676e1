-- A thin push (ids and a status) sets the status of the order it names, newest push wins; an
-- order not seen yet gets a minimal row: no amounts, no lines, nothing invented.
INSERT INTO orders
    (id, platform, shop_id, external_id, status, platform_status, source_updated_at,
     last_event_id)
SELECT *
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::timestamptz[], $8::uuid[])
ON CONFLICT (platform, shop_id, external_id) DO UPDATE SET
    status            = EXCLUDED.status,
    platform_status   = EXCLUDED.platform_status,
    source_updated_at = EXCLUDED.source_updated_at,
    last_event_id     = EXCLUDED.last_event_id,
    updated_at        = now()
WHERE orders.source_updated_at IS NULL
   OR EXCLUDED.source_updated_at > orders.source_updated_at
   OR (EXCLUDED.source_updated_at = orders.source_updated_at
       AND EXCLUDED.last_event_id <> orders.last_event_id)
RETURNING id
