-- An order's fulfilments with their lines. The tracking URL is left out: with the carrier and
-- number it adds nothing, and some carriers' pages show the delivery address.
SELECT f.external_id, f.status, f.platform_status, f.carrier, f.tracking_number,
       f.source_updated_at, f.created_at, f.updated_at,
       COALESCE(array_agg(fl.external_line_id ORDER BY fl.external_line_id)
                FILTER (WHERE fl.external_line_id IS NOT NULL), '{}') AS line_ids,
       COALESCE(array_agg(fl.quantity ORDER BY fl.external_line_id)
                FILTER (WHERE fl.external_line_id IS NOT NULL), '{}') AS line_quantities
FROM fulfillments f
LEFT JOIN fulfillment_lines fl ON fl.fulfillment_id = f.id
WHERE f.order_id = $1
GROUP BY f.id
ORDER BY f.created_at, f.external_id
