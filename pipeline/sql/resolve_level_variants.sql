-- Stock levels that arrived before their product learn its variant and SKU.
UPDATE inventory_levels l SET variant_id = v.id, sku = COALESCE(v.sku, l.sku)
FROM product_variants v
WHERE v.id = ANY($1::uuid[])
  AND l.platform = v.platform AND l.shop_id = v.shop_id
  AND l.inventory_item_id = v.inventory_item_id
  AND (l.variant_id IS DISTINCT FROM v.id OR l.sku IS DISTINCT FROM COALESCE(v.sku, l.sku))
