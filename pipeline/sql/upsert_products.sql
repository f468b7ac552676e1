-- Newest product state wins. A thin event (no title or status) keeps the stored values; a delete
-- sets deleted_at, a later update or restore clears it.
INSERT INTO products
    (id, platform, shop_id, external_id, title, status, deleted_at, source_updated_at,
     last_event_id)
SELECT *
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::timestamptz[], $8::timestamptz[], $9::uuid[])
ON CONFLICT (platform, shop_id, external_id) DO UPDATE SET
    title             = COALESCE(EXCLUDED.title, products.title),
    status            = COALESCE(EXCLUDED.status, products.status),
    deleted_at        = EXCLUDED.deleted_at,
    source_updated_at = EXCLUDED.source_updated_at,
    last_event_id     = EXCLUDED.last_event_id,
    updated_at        = now()
WHERE products.source_updated_at IS NULL
   OR EXCLUDED.source_updated_at > products.source_updated_at
   OR (EXCLUDED.source_updated_at = products.source_updated_at
       AND EXCLUDED.last_event_id <> products.last_event_id)
RETURNING id
