-- The warehouse of each platform location. FOR SHARE waits for a concurrent
-- `pipeline locations map`, so a level is never written to the warehouse it just left.
SELECT c.platform, c.shop_id, c.location_id, c.warehouse_id
FROM channel_locations c
JOIN unnest($1::text[], $2::text[], $3::text[]) AS w(platform, shop_id, location_id)
  ON c.platform = w.platform AND c.shop_id = w.shop_id AND c.location_id = w.location_id
FOR SHARE OF c
