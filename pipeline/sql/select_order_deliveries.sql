-- Every delivery that touched one order: those keyed by it ($4, the order's entity key, which
-- is also how a delivery that never produced an event is found: dead-lettered, ignored) and
-- those that carried a canonical event about it. The dead letter, if any, is named so the
-- operator can `pipeline dlq show` it. The shop's deliveries are scanned through
-- webhook_events_shop_received; entity_key has no index of its own.
SELECT w.id, w.topic, w.external_event_id, w.source_event_id, w.status, w.attempts, w.error,
       w.received_at, w.processed_at, w.kafka_topic, w.kafka_partition, w.kafka_offset,
       (SELECT max(d.id) FROM dead_letters d
        WHERE d.platform = w.platform AND d.shop_id = w.shop_id
          AND d.delivery_id = w.external_event_id) AS dead_letter_id
FROM webhook_events w
WHERE w.platform = $1 AND w.shop_id = $2
  AND (w.entity_key = $4
       OR w.external_event_id IN (
           SELECT e.delivery_id FROM commerce_events e
           WHERE e.platform = $1 AND e.shop_id = $2 AND e.entity_type = 'order'
             AND e.entity_id = $3))
ORDER BY w.received_at, w.id
