-- The variants of applied product snapshots. A variant that was retired and comes back is live.
INSERT INTO product_variants
    (id, product_id, platform, shop_id, external_variant_id, sku, title, price, currency,
     inventory_item_id, source_updated_at)
SELECT *
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::numeric[], $9::text[], $10::text[], $11::timestamptz[])
ON CONFLICT (platform, shop_id, external_variant_id) DO UPDATE SET
    product_id        = EXCLUDED.product_id,
    sku               = EXCLUDED.sku,
    title             = EXCLUDED.title,
    price             = COALESCE(EXCLUDED.price, product_variants.price),
    currency          = COALESCE(EXCLUDED.currency, product_variants.currency),
    inventory_item_id = COALESCE(EXCLUDED.inventory_item_id, product_variants.inventory_item_id),
    deleted_at        = NULL,
    source_updated_at = EXCLUDED.source_updated_at,
    updated_at        = now()
RETURNING id
