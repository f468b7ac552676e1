-- Orders that shipped (fulfilled, completed) consume their active reservations: the stock left,
-- so it is no longer reserved.
WITH consumed AS (
    UPDATE reservations r SET consumed_at = now()
    FROM orders o
    WHERE r.order_id = o.id
      AND o.id = ANY($1::uuid[])
      AND o.status IN ('fulfilled', 'completed')
      AND r.released_at IS NULL AND r.consumed_at IS NULL
    RETURNING r.inventory_level_id, r.quantity
)
UPDATE inventory_levels l SET reserved = l.reserved - d.quantity, updated_at = now()
FROM (SELECT inventory_level_id, sum(quantity)::integer AS quantity FROM consumed
      WHERE inventory_level_id IS NOT NULL GROUP BY inventory_level_id) d
WHERE l.id = d.inventory_level_id
