INSERT INTO order_lines
    (order_id, external_line_id, variant_id, product_id, sku, title, quantity, unit_price)
SELECT *
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::integer[], $8::numeric[])
