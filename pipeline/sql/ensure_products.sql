-- A minimal product row for an event that names a product not seen yet (a price push).
INSERT INTO products (id, platform, shop_id, external_id, last_event_id)
SELECT *
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::uuid[])
ON CONFLICT (platform, shop_id, external_id) DO NOTHING
