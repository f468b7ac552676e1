-- Newest fulfilment state wins. A thin push (a tracking number alone) keeps stored values for
-- whatever it does not carry.
INSERT INTO fulfillments
    (id, platform, shop_id, external_id, order_external_id, order_id, status, platform_status,
     carrier, tracking_number, tracking_url, source_updated_at, last_event_id)
SELECT *
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::uuid[], $7::text[],
            $8::text[], $9::text[], $10::text[], $11::text[], $12::timestamptz[], $13::uuid[])
ON CONFLICT (platform, shop_id, external_id) DO UPDATE SET
    status            = COALESCE(EXCLUDED.status, fulfillments.status),
    platform_status   = COALESCE(EXCLUDED.platform_status, fulfillments.platform_status),
    carrier           = COALESCE(EXCLUDED.carrier, fulfillments.carrier),
    tracking_number   = COALESCE(EXCLUDED.tracking_number, fulfillments.tracking_number),
    tracking_url      = COALESCE(EXCLUDED.tracking_url, fulfillments.tracking_url),
    source_updated_at = EXCLUDED.source_updated_at,
    last_event_id     = EXCLUDED.last_event_id,
    updated_at        = now()
WHERE fulfillments.source_updated_at IS NULL
   OR EXCLUDED.source_updated_at > fulfillments.source_updated_at
   OR (EXCLUDED.source_updated_at = fulfillments.source_updated_at
       AND EXCLUDED.last_event_id <> fulfillments.last_event_id)
RETURNING id
