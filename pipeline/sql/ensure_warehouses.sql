-- An automatic warehouse for each platform location that has no mapping yet (waits for a
-- concurrent insert of the same code, so the next statement sees it).
INSERT INTO warehouses (code, name)
SELECT w.code, 'unmapped location ' || w.location_label
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
     AS w(platform, shop_id, location_id, code, location_label)
WHERE NOT EXISTS (
    SELECT 1 FROM channel_locations c
    WHERE c.platform = w.platform AND c.shop_id = w.shop_id AND c.location_id = w.location_id)
ON CONFLICT (code) DO NOTHING
