-- The orders given are paid: each line without an active reservation gets one for its
-- quantity, against the connected level of the line's variant with the most free stock. What
-- free stock does not cover is recorded as backordered; a line whose variant or stock is
-- unknown is reserved against nothing, wholly backordered.
WITH held AS MATERIALIZED (
    SELECT order_id, external_line_id FROM reservations
    WHERE order_id = ANY($1::uuid[]) AND released_at IS NULL AND consumed_at IS NULL
), wanted AS (
    SELECT ol.order_id, ol.external_line_id, ol.quantity, ol.sku, ol.variant_id AS variant_ext,
           o.platform, o.shop_id
    FROM orders o
    JOIN order_lines ol ON ol.order_id = o.id
    WHERE o.id = ANY($1::uuid[])
      AND ol.order_id = ANY($1::uuid[])
      AND ol.quantity > 0
      AND NOT EXISTS (SELECT 1 FROM held h
                      WHERE h.order_id = ol.order_id AND h.external_line_id = ol.external_line_id)
), resolved AS (
    SELECT w.*, v.id AS variant_id, v.inventory_item_id, COALESCE(w.sku, v.sku) AS line_sku
    FROM wanted w
    LEFT JOIN LATERAL (
        SELECT pv.id, pv.inventory_item_id, pv.sku FROM product_variants pv
        WHERE pv.platform = w.platform AND pv.shop_id = w.shop_id
          AND (pv.external_variant_id = w.variant_ext
               OR (w.variant_ext IS NULL AND w.sku IS NOT NULL AND pv.sku = w.sku))
        ORDER BY (pv.external_variant_id = w.variant_ext) DESC NULLS LAST,
                 pv.deleted_at NULLS FIRST
        LIMIT 1
    ) v ON true
), placed AS (
    SELECT r.*, l.id AS level_id, l.warehouse_id, GREATEST(l.free, 0) AS free,
           COALESCE(sum(r.quantity) OVER (
               PARTITION BY l.id ORDER BY r.order_id, r.external_line_id
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS taken_before
    FROM resolved r
    LEFT JOIN LATERAL (
        SELECT il.id, il.warehouse_id, COALESCE(il.available, 0) - il.reserved AS free
        FROM inventory_levels il
        WHERE il.platform = r.platform AND il.shop_id = r.shop_id
          AND (il.inventory_item_id = r.inventory_item_id
               OR (r.variant_id IS NOT NULL AND il.variant_id = r.variant_id))
          AND il.connected
        ORDER BY COALESCE(il.available, 0) - il.reserved DESC, il.id
        LIMIT 1
    ) l ON true
), inserted AS (
    INSERT INTO reservations
        (order_id, external_line_id, variant_id, inventory_level_id, warehouse_id, sku, quantity,
         backordered)
    SELECT order_id, external_line_id, variant_id, level_id, warehouse_id, line_sku, quantity,
           CASE WHEN level_id IS NULL THEN quantity
                ELSE GREATEST(quantity - GREATEST(free - taken_before, 0), 0) END
    FROM placed
    ON CONFLICT (order_id, external_line_id) WHERE released_at IS NULL AND consumed_at IS NULL
    DO NOTHING
    RETURNING inventory_level_id, quantity
)
UPDATE inventory_levels l SET reserved = l.reserved + d.quantity, updated_at = now()
FROM (SELECT inventory_level_id, sum(quantity)::integer AS quantity FROM inserted
      WHERE inventory_level_id IS NOT NULL GROUP BY inventory_level_id) d
WHERE l.id = d.inventory_level_id
