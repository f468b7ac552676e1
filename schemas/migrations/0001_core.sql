-- Core tables: channels, the webhook audit trail, orders with their lines, canonical events.

CREATE TABLE channels (
    id              bigserial PRIMARY KEY,
    platform        text        NOT NULL,
    shop_id         text        NOT NULL,
    secret          text        NOT NULL,
    currency        char(3),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (platform, shop_id)
);

CREATE TABLE webhook_events (
    id                bigserial PRIMARY KEY,
    platform          text        NOT NULL,
    shop_id           text        NOT NULL,
    topic             text        NOT NULL,
    external_event_id text        NOT NULL,
    source_event_id   text,
    entity_key        text        NOT NULL,
    status            text        NOT NULL CHECK (status IN
                        ('COMPLETED', 'DUPLICATE', 'STALE', 'IGNORED', 'FAILED')),
    attempts          integer     NOT NULL DEFAULT 1,
    error             text,
    received_at       timestamptz NOT NULL,
    processed_at      timestamptz NOT NULL DEFAULT now(),
    kafka_topic       text        NOT NULL,
    kafka_partition   integer     NOT NULL,
    kafka_offset      bigint      NOT NULL,
    UNIQUE (platform, external_event_id)
);
CREATE INDEX webhook_events_shop_received ON webhook_events (platform, shop_id, received_at);
CREATE INDEX webhook_events_status ON webhook_events (status) WHERE status <> 'COMPLETED';

CREATE TABLE orders (
    id                 uuid        PRIMARY KEY,
    platform           text        NOT NULL,
    shop_id            text        NOT NULL,
    external_id        text        NOT NULL,
    order_number       text,
    status             text        NOT NULL CHECK (status IN
                         ('pending', 'paid', 'partially_fulfilled', 'fulfilled', 'cancelled', 'refunded')),
    financial_status   text,
    fulfillment_status text,
    currency           text,
    total_amount       numeric,
    subtotal_amount    numeric,
    total_tax          numeric,
    customer_email     text,
    placed_at          timestamptz,
    cancelled_at       timestamptz,
    source_updated_at  timestamptz,
    last_event_id      uuid        NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (platform, shop_id, external_id)
);

CREATE TABLE order_lines (
    order_id          uuid    NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    external_line_id  text    NOT NULL,
    variant_id        text,
    product_id        text,
    sku               text,
    title             text,
    quantity          integer NOT NULL CHECK (quantity >= 0),
    unit_price        numeric,
    PRIMARY KEY (order_id, external_line_id)
);
CREATE INDEX order_lines_sku ON order_lines (sku) WHERE sku IS NOT NULL;

CREATE TABLE commerce_events (
    event_id     uuid        PRIMARY KEY,
    type         text        NOT NULL,
    platform     text        NOT NULL,
    shop_id      text        NOT NULL,
    entity_type  text        NOT NULL,
    entity_id    text        NOT NULL,
    delivery_id  text        NOT NULL,
    payload      jsonb       NOT NULL,
    occurred_at  timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX commerce_events_entity ON commerce_events (platform, shop_id, entity_type, entity_id, occurred_at);
