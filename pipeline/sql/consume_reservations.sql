-- The orders given shipped (fulfilled, completed): their active reservations are consumed (the
-- stock left, so it is no longer reserved), and each level's reserved drops by as much.
WITH consumed AS (
    UPDATE reservations SET consumed_at = now()
    WHERE order_id = ANY($1::uuid[]) AND released_at IS NULL AND consumed_at IS NULL
    RETURNING inventory_level_id, quantity
)
UPDATE inventory_levels l SET reserved = l.reserved - d.quantity, updated_at = now()
FROM (SELECT inventory_level_id, sum(quantity)::integer AS quantity FROM consumed
      WHERE inventory_level_id IS NOT NULL GROUP BY inventory_level_id) d
WHERE l.id = d.inventory_level_id
