-- The canonical events about one order (its snapshots, status changes and fulfilments), with
-- what each says in brief; the payload itself holds customer data and is not read whole.
-- received_at is when the delivery that carried the event was received.
SELECT event_id, type, delivery_id, occurred_at, recorded_at,
       COALESCE((payload #>> '{source,received_at}')::timestamptz, recorded_at) AS received_at,
       COALESCE(payload #>> '{order,status}', payload #>> '{fulfillment,status}') AS status,
       COALESCE(payload #>> '{order,platform_status}',
                payload #>> '{fulfillment,platform_status}') AS platform_status,
       payload #>> '{order,line_id}' AS line_id,
       payload #>> '{fulfillment,external_id}' AS fulfillment_id
FROM commerce_events
WHERE platform = $1 AND shop_id = $2 AND entity_type = 'order' AND entity_id = $3
ORDER BY occurred_at, recorded_at, event_id
