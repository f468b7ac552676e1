-- Every platform and the inventory side: app-level credentials and secret rotation; products,
-- variants, warehouses and stock by location; fulfilments; reservations; a wider status set.

CREATE TABLE app_credentials (
    platform        text        NOT NULL,
    app_key         text        NOT NULL,
    secret          text        NOT NULL,
    previous_secret text,
    callback_url    text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (platform, app_key)
);

-- A channel is verified either by its own secret (Shopify, WooCommerce) or by its app's.
ALTER TABLE channels ALTER COLUMN secret DROP NOT NULL;
ALTER TABLE channels ADD COLUMN previous_secret text;
ALTER TABLE channels ADD COLUMN app_key text;
ALTER TABLE channels ADD CONSTRAINT channels_app_fk
    FOREIGN KEY (platform, app_key) REFERENCES app_credentials (platform, app_key);
ALTER TABLE channels ADD CONSTRAINT channels_one_credential
    CHECK ((secret IS NULL) <> (app_key IS NULL));

ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check CHECK (status IN
    ('pending', 'paid', 'partially_fulfilled', 'fulfilled', 'completed', 'cancelled', 'refunded',
     'returned'));
ALTER TABLE orders ADD COLUMN platform_status text;

CREATE TABLE warehouses (
    id          bigserial   PRIMARY KEY,
    code        text        NOT NULL UNIQUE,
    name        text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Where a platform location's stock counts. location_id '' is the channel's default location
-- (platforms without locations). mapped = false: created automatically, awaiting an operator.
CREATE TABLE channel_locations (
    platform     text        NOT NULL,
    shop_id      text        NOT NULL,
    location_id  text        NOT NULL,
    warehouse_id bigint      NOT NULL REFERENCES warehouses (id),
    mapped       boolean     NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (platform, shop_id, location_id)
);
CREATE INDEX channel_locations_unmapped ON channel_locations (platform, shop_id) WHERE NOT mapped;

CREATE TABLE products (
    id                 uuid        PRIMARY KEY,
    platform           text        NOT NULL,
    shop_id            text        NOT NULL,
    external_id        text        NOT NULL,
    title              text,
    status             text,
    deleted_at         timestamptz,
    source_updated_at  timestamptz,
    last_event_id      uuid        NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (platform, shop_id, external_id)
);

CREATE TABLE product_variants (
    id                  uuid        PRIMARY KEY,
    product_id          uuid        NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    platform            text        NOT NULL,
    shop_id             text        NOT NULL,
    external_variant_id text        NOT NULL,
    sku                 text,
    title               text,
    price               numeric,
    currency            text,
    inventory_item_id   text,
    deleted_at          timestamptz,
    source_updated_at   timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (platform, shop_id, external_variant_id)
);
CREATE INDEX product_variants_item ON product_variants (platform, shop_id, inventory_item_id);
CREATE INDEX product_variants_sku ON product_variants (platform, shop_id, sku) WHERE sku IS NOT NULL;

-- Stock of one platform stock item at one platform location; the location's warehouse and the
-- item's variant are resolved when known. reserved = sum of the active reservations against it.
CREATE TABLE inventory_levels (
    id                 bigserial   PRIMARY KEY,
    platform           text        NOT NULL,
    shop_id            text        NOT NULL,
    inventory_item_id  text        NOT NULL,
    location_id        text        NOT NULL,
    warehouse_id       bigint      NOT NULL REFERENCES warehouses (id),
    variant_id         uuid,
    sku                text,
    available          integer,
    reserved           integer     NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    connected          boolean     NOT NULL DEFAULT true,
    source_updated_at  timestamptz,
    last_event_id      uuid,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (platform, shop_id, inventory_item_id, location_id)
);
CREATE INDEX inventory_levels_variant ON inventory_levels (variant_id, warehouse_id);

CREATE TABLE fulfillments (
    id                 uuid        PRIMARY KEY,
    platform           text        NOT NULL,
    shop_id            text        NOT NULL,
    external_id        text        NOT NULL,
    order_external_id  text        NOT NULL,
    order_id           uuid        NOT NULL,
    status             text        CHECK (status IN
                         ('pending', 'in_transit', 'delivered', 'cancelled', 'failed')),
    platform_status    text,
    carrier            text,
    tracking_number    text,
    tracking_url       text,
    source_updated_at  timestamptz,
    last_event_id      uuid        NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (platform, shop_id, external_id)
);
CREATE INDEX fulfillments_order ON fulfillments (order_id);

CREATE TABLE fulfillment_lines (
    fulfillment_id    uuid    NOT NULL REFERENCES fulfillments (id) ON DELETE CASCADE,
    external_line_id  text    NOT NULL,
    quantity          integer NOT NULL CHECK (quantity >= 0),
    PRIMARY KEY (fulfillment_id, external_line_id)
);

-- A paid order line's quantity held against one stock level until it is released (the order
-- was cancelled, refunded or returned, or the line changed) or consumed (the order shipped).
-- At most one is active per line; released and consumed ones stay as history. backordered is
-- the part the level's free stock did not cover then; a line whose variant or stock is unknown
-- has no level and is wholly backordered.
CREATE TABLE reservations (
    id                  bigserial   PRIMARY KEY,
    order_id            uuid        NOT NULL,
    external_line_id    text        NOT NULL,
    variant_id          uuid,
    inventory_level_id  bigint      REFERENCES inventory_levels (id),
    warehouse_id        bigint      REFERENCES warehouses (id),
    sku                 text,
    quantity            integer     NOT NULL CHECK (quantity >= 0),
    backordered         integer     NOT NULL DEFAULT 0 CHECK (backordered >= 0),
    created_at          timestamptz NOT NULL DEFAULT now(),
    released_at         timestamptz,
    consumed_at         timestamptz,
    CHECK (released_at IS NULL OR consumed_at IS NULL)
);
CREATE UNIQUE INDEX reservations_active_line ON reservations (order_id, external_line_id)
    WHERE released_at IS NULL AND consumed_at IS NULL;
-- Every reservation statement is keyed by order id; no other index, so that even young tables'
-- statistics cannot lead the planner into scanning all active reservations once per line.
CREATE INDEX reservations_order ON reservations (order_id);
