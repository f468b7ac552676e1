-- The orders given are paid and their lines may have changed: an active reservation whose line
-- is gone, or whose quantity differs from the line's now, is released (a new one follows).
WITH released AS (
    UPDATE reservations r SET released_at = now()
    WHERE r.order_id = ANY($1::uuid[]) AND r.released_at IS NULL AND r.consumed_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM order_lines ol
                      WHERE ol.order_id = ANY($1::uuid[])
                        AND ol.order_id = r.order_id AND ol.external_line_id = r.external_line_id
                        AND ol.quantity = r.quantity)
    RETURNING r.inventory_level_id, r.quantity
)
UPDATE inventory_levels l SET reserved = l.reserved - d.quantity, updated_at = now()
FROM (SELECT inventory_level_id, sum(quantity)::integer AS quantity FROM released
      WHERE inventory_level_id IS NOT NULL GROUP BY inventory_level_id) d
WHERE l.id = d.inventory_level_id
