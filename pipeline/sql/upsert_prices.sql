-- A variant's price from a price push, newest wins; creates the variant when it is new.
INSERT INTO product_variants
    (id, product_id, platform, shop_id, external_variant_id, price, currency, source_updated_at)
SELECT *
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::numeric[],
            $7::text[], $8::timestamptz[])
ON CONFLICT (platform, shop_id, external_variant_id) DO UPDATE SET
    price             = EXCLUDED.price,
    currency          = COALESCE(EXCLUDED.currency, product_variants.currency),
    source_updated_at = EXCLUDED.source_updated_at,
    updated_at        = now()
WHERE product_variants.source_updated_at IS NULL
   OR EXCLUDED.source_updated_at >= product_variants.source_updated_at
RETURNING id
