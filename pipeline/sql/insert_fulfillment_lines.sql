INSERT INTO fulfillment_lines (fulfillment_id, external_line_id, quantity)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::integer[])
ON CONFLICT (fulfillment_id, external_line_id) DO UPDATE SET quantity = EXCLUDED.quantity
