-- Orders that ended without shipping (cancelled, refunded, returned) release their active
-- reservations; each level's reserved drops by what was released.
WITH released AS (
    UPDATE reservations r SET released_at = now()
    FROM orders o
    WHERE r.order_id = o.id
      AND o.id = ANY($1::uuid[])
      AND o.status IN ('cancelled', 'refunded', 'returned')
      AND r.released_at IS NULL AND r.consumed_at IS NULL
    RETURNING r.inventory_level_id, r.quantity
)
UPDATE inventory_levels l SET reserved = l.reserved - d.quantity, updated_at = now()
FROM (SELECT inventory_level_id, sum(quantity)::integer AS quantity FROM released
      WHERE inventory_level_id IS NOT NULL GROUP BY inventory_level_id) d
WHERE l.id = d.inventory_level_id
