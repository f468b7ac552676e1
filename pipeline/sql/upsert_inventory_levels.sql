-- Stock of one item at one location, newest wins. Shopify may omit updated_at: an undated
-- level is applied as it comes (nothing better is known). The variant is resolved by the
-- platform's inventory item id, else its variant id; reserved is never written here.
INSERT INTO inventory_levels
    (platform, shop_id, inventory_item_id, location_id, warehouse_id, variant_id, sku, available,
     connected, source_updated_at, last_event_id)
SELECT u.platform, u.shop_id, u.inventory_item_id, u.location_id, u.warehouse_id, v.id,
       COALESCE(u.sku, v.sku), u.available, u.connected, u.source_updated_at, u.event_id
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[],
            $8::integer[], $9::boolean[], $10::timestamptz[], $11::uuid[])
     AS u(platform, shop_id, inventory_item_id, location_id, warehouse_id, variant_ext, sku,
          available, connected, source_updated_at, event_id)
LEFT JOIN LATERAL (
    SELECT pv.id, pv.sku FROM product_variants pv
    WHERE pv.platform = u.platform AND pv.shop_id = u.shop_id
      AND (pv.inventory_item_id = u.inventory_item_id OR pv.external_variant_id = u.variant_ext)
    ORDER BY (pv.inventory_item_id = u.inventory_item_id) DESC, pv.deleted_at NULLS FIRST
    LIMIT 1
) v ON true
ON CONFLICT (platform, shop_id, inventory_item_id, location_id) DO UPDATE SET
    available         = COALESCE(EXCLUDED.available, inventory_levels.available),
    connected         = EXCLUDED.connected,
    variant_id        = COALESCE(EXCLUDED.variant_id, inventory_levels.variant_id),
    sku               = COALESCE(EXCLUDED.sku, inventory_levels.sku),
    source_updated_at = COALESCE(EXCLUDED.source_updated_at, inventory_levels.source_updated_at),
    last_event_id     = EXCLUDED.last_event_id,
    updated_at        = now()
WHERE EXCLUDED.source_updated_at IS NULL
   OR inventory_levels.source_updated_at IS NULL
   OR EXCLUDED.source_updated_at > inventory_levels.source_updated_at
   OR (EXCLUDED.source_updated_at = inventory_levels.source_updated_at
       AND EXCLUDED.last_event_id IS DISTINCT FROM inventory_levels.last_event_id)
RETURNING platform, shop_id, inventory_item_id, location_id
