-- Failure lifecycle: FAILED now means "an attempt failed, a retry is scheduled"; a delivery that
-- will not be retried is DEAD_LETTERED. Dead letters are indexed here for `pipeline dlq`.

ALTER TABLE webhook_events DROP CONSTRAINT webhook_events_status_check;
UPDATE webhook_events SET status = 'DEAD_LETTERED' WHERE status = 'FAILED';
ALTER TABLE webhook_events ADD CONSTRAINT webhook_events_status_check CHECK (status IN
    ('COMPLETED', 'DUPLICATE', 'STALE', 'IGNORED', 'FAILED', 'DEAD_LETTERED'));

CREATE TABLE dead_letters (
    id                 bigserial   PRIMARY KEY,
    platform           text,
    shop_id            text,
    topic              text,
    delivery_id        text,
    error_class        text        NOT NULL,
    error              text        NOT NULL,
    attempts           integer     NOT NULL,
    first_failed_at    timestamptz NOT NULL,
    last_failed_at     timestamptz NOT NULL,
    source_topic       text        NOT NULL,
    source_partition   integer     NOT NULL,
    source_offset      bigint      NOT NULL,
    message_key        bytea,
    payload            bytea       NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    replayed_at        timestamptz,
    replay_count       integer     NOT NULL DEFAULT 0,
    UNIQUE (source_topic, source_partition, source_offset)
);
CREATE INDEX dead_letters_filter ON dead_letters (platform, shop_id, created_at);
CREATE INDEX dead_letters_pending ON dead_letters (id) WHERE replayed_at IS NULL;
