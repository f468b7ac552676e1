-- An order's lines as last described; numeric line ids in numeric order.
SELECT external_line_id, sku, title, quantity, unit_price, variant_id, product_id
FROM order_lines
WHERE order_id = $1
ORDER BY length(external_line_id), external_line_id
