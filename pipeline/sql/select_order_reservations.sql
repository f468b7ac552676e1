-- Every reservation an order's lines ever held, active ones and history, oldest first.
SELECT r.id, r.external_line_id, r.sku, r.quantity, r.backordered, w.code AS warehouse,
       r.created_at, r.released_at, r.consumed_at
FROM reservations r
LEFT JOIN warehouses w ON w.id = r.warehouse_id
WHERE r.order_id = $1
ORDER BY r.created_at, r.id
