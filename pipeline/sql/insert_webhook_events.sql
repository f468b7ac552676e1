-- One row per distinct delivery; a redelivery after a crash finds its row and leaves it.
INSERT INTO webhook_events
    (platform, shop_id, topic, external_event_id, source_event_id, entity_key, status, error,
     received_at, kafka_topic, kafka_partition, kafka_offset)
SELECT *
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::text[], $9::timestamptz[], $10::text[], $11::integer[], $12::bigint[])
ON CONFLICT (platform, external_event_id) DO NOTHING
RETURNING status
