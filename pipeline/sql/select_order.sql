-- One order as `pipeline orders show` prints it. The customer's email is never read, only
-- whether one is stored: the audit trail must not put PII on an operator's screen.
SELECT id, platform, shop_id, external_id, order_number, status, platform_status,
       financial_status, fulfillment_status, currency, total_amount, subtotal_amount, total_tax,
       customer_email IS NOT NULL AS has_customer_email, placed_at, cancelled_at,
       source_updated_at, last_event_id, created_at, updated_at
FROM orders
WHERE platform = $1 AND shop_id = $2 AND external_id = $3
