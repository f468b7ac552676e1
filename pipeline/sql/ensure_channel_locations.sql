-- A platform location never seen before is listed, unmapped, in its automatic warehouse.
INSERT INTO channel_locations (platform, shop_id, location_id, warehouse_id, mapped)
SELECT w.platform, w.shop_id, w.location_id, h.id, false
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
     AS w(platform, shop_id, location_id, code)
JOIN warehouses h ON h.code = w.code
ON CONFLICT (platform, shop_id, location_id) DO NOTHING
