-- The orders given ended without shipping (cancelled, refunded, returned): their active
-- reservations are released, and each level's reserved drops by what was released.
WITH released AS (
    UPDATE reservations SET released_at = now()
    WHERE order_id = ANY($1::uuid[]) AND released_at IS NULL AND consumed_at IS NULL
    RETURNING inventory_level_id, quantity
)
UPDATE inventory_levels l SET reserved = l.reserved - d.quantity, updated_at = now()
FROM (SELECT inventory_level_id, sum(quantity)::integer AS quantity FROM released
      WHERE inventory_level_id IS NOT NULL GROUP BY inventory_level_id) d
WHERE l.id = d.inventory_level_id
