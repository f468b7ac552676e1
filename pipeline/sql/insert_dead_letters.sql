-- Index of the dead-letter topic for `pipeline dlq`; a redelivered dead letter is recorded once.
INSERT INTO dead_letters
    (platform, shop_id, topic, delivery_id, error_class, error, attempts, first_failed_at,
     last_failed_at, source_topic, source_partition, source_offset, message_key, payload)
SELECT *
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::integer[], $8::timestamptz[], $9::timestamptz[], $10::text[], $11::integer[],
            $12::bigint[], $13::bytea[], $14::bytea[])
ON CONFLICT (source_topic, source_partition, source_offset) DO NOTHING
