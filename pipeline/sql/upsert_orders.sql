-- Newest state wins: an update whose source time is older than the stored one changes nothing.
INSERT INTO orders
    (id, platform, shop_id, external_id, order_number, status, financial_status,
     fulfillment_status, currency, total_amount, subtotal_amount, total_tax, customer_email,
     placed_at, cancelled_at, source_updated_at, last_event_id, platform_status)
SELECT *
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::text[], $9::text[], $10::numeric[], $11::numeric[], $12::numeric[], $13::text[],
            $14::timestamptz[], $15::timestamptz[], $16::timestamptz[], $17::uuid[], $18::text[])
ON CONFLICT (platform, shop_id, external_id) DO UPDATE SET
    order_number       = EXCLUDED.order_number,
    status             = EXCLUDED.status,
    financial_status   = EXCLUDED.financial_status,
    fulfillment_status = EXCLUDED.fulfillment_status,
    currency           = EXCLUDED.currency,
    total_amount       = EXCLUDED.total_amount,
    subtotal_amount    = EXCLUDED.subtotal_amount,
    total_tax          = EXCLUDED.total_tax,
    customer_email     = EXCLUDED.customer_email,
    placed_at          = EXCLUDED.placed_at,
    cancelled_at       = EXCLUDED.cancelled_at,
    source_updated_at  = EXCLUDED.source_updated_at,
    last_event_id      = EXCLUDED.last_event_id,
    platform_status    = EXCLUDED.platform_status,
    updated_at         = now()
WHERE orders.source_updated_at IS NULL
   OR EXCLUDED.source_updated_at > orders.source_updated_at
   -- same version, another event (orders/paid beside orders/updated): apply; the same event
   -- again (a replay, a redelivery): leave the row, and its updated_at, alone
   OR (EXCLUDED.source_updated_at = orders.source_updated_at
       AND EXCLUDED.last_event_id <> orders.last_event_id)
RETURNING id
