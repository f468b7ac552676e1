-- A replayed delivery's audit row: the same row, never a second one. Besides what a later attempt
-- may do (insert_webhook_events.sql), a replay moves an IGNORED, FAILED or DEAD_LETTERED row on
-- when today's code decides differently (a reader gap fixed since); a row already stored stays as
-- it is, so a replay never turns COMPLETED into DUPLICATE, and replaying twice changes nothing.
INSERT INTO webhook_events
    (platform, shop_id, topic, external_event_id, source_event_id, entity_key, status, error,
     received_at, kafka_topic, kafka_partition, kafka_offset, attempts)
SELECT *
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::text[], $9::timestamptz[], $10::text[], $11::integer[], $12::bigint[],
            $13::integer[])
ON CONFLICT (platform, external_event_id) DO UPDATE SET
    status          = EXCLUDED.status,
    error           = EXCLUDED.error,
    attempts        = GREATEST(EXCLUDED.attempts, webhook_events.attempts),
    processed_at    = now(),
    kafka_topic     = EXCLUDED.kafka_topic,
    kafka_partition = EXCLUDED.kafka_partition,
    kafka_offset    = EXCLUDED.kafka_offset
WHERE (webhook_events.status IN ('FAILED', 'DEAD_LETTERED')
       AND EXCLUDED.attempts > webhook_events.attempts)
   OR (webhook_events.status IN ('IGNORED', 'FAILED', 'DEAD_LETTERED')
       AND (EXCLUDED.status, EXCLUDED.error)
           IS DISTINCT FROM (webhook_events.status, webhook_events.error))
RETURNING status
