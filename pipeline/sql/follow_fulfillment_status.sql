-- An order's fulfillment_status follows its live fulfilments' lines: every line shipped in
-- full is 'fulfilled', some units shipped is 'partial'. Orders without known lines are left.
WITH shipped AS (
    SELECT f.order_id, fl.external_line_id, sum(fl.quantity) AS quantity
    FROM fulfillments f
    JOIN fulfillment_lines fl ON fl.fulfillment_id = f.id
    WHERE f.order_id = ANY($1::uuid[])
      AND f.status IS DISTINCT FROM 'cancelled' AND f.status IS DISTINCT FROM 'failed'
    GROUP BY f.order_id, fl.external_line_id
), per_order AS (
    SELECT ol.order_id,
           CASE WHEN bool_and(COALESCE(s.quantity, 0) >= ol.quantity) THEN 'fulfilled'
                WHEN bool_or(COALESCE(s.quantity, 0) > 0) THEN 'partial'
           END AS fulfillment_status
    FROM order_lines ol
    LEFT JOIN shipped s ON s.order_id = ol.order_id AND s.external_line_id = ol.external_line_id
    WHERE ol.order_id = ANY($1::uuid[])
    GROUP BY ol.order_id
)
UPDATE orders o SET fulfillment_status = p.fulfillment_status, updated_at = now()
FROM per_order p
WHERE o.id = p.order_id
  AND p.fulfillment_status IS NOT NULL
  AND o.fulfillment_status IS DISTINCT FROM p.fulfillment_status
