"""The sink's and the CLI's SQL, one statement per file, loaded once at import."""

from __future__ import annotations

from importlib import resources


def _load(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.sql").read_text(encoding="utf-8")


INSERT_EVENTS = _load("insert_events")
# `pipeline reemit`: canonical events published again from commerce_events.
SELECT_REEMIT_EVENTS = _load("select_reemit_events")
COUNT_REEMIT_EVENTS = _load("count_reemit_events")
UPSERT_ORDERS = _load("upsert_orders")
UPSERT_ORDER_STATUSES = _load("upsert_order_statuses")
DELETE_ORDER_LINES = _load("delete_order_lines")
INSERT_ORDER_LINES = _load("insert_order_lines")
INSERT_WEBHOOK_EVENTS = _load("insert_webhook_events")
UPSERT_REPLAYED_WEBHOOK_EVENTS = _load("upsert_replayed_webhook_events")
INSERT_DEAD_LETTERS = _load("insert_dead_letters")
UPSERT_PRODUCTS = _load("upsert_products")
UPSERT_VARIANTS = _load("upsert_variants")
RETIRE_VARIANTS = _load("retire_variants")
ENSURE_PRODUCTS = _load("ensure_products")
UPSERT_PRICES = _load("upsert_prices")
RESOLVE_LEVEL_VARIANTS = _load("resolve_level_variants")
ENSURE_WAREHOUSES = _load("ensure_warehouses")
ENSURE_CHANNEL_LOCATIONS = _load("ensure_channel_locations")
SELECT_LOCATION_WAREHOUSES = _load("select_location_warehouses")
UPSERT_INVENTORY_LEVELS = _load("upsert_inventory_levels")
UPSERT_FULFILLMENTS = _load("upsert_fulfillments")
DELETE_FULFILLMENT_LINES = _load("delete_fulfillment_lines")
INSERT_FULFILLMENT_LINES = _load("insert_fulfillment_lines")
FOLLOW_FULFILLMENT_STATUS = _load("follow_fulfillment_status")
RELEASE_RESERVATIONS = _load("release_reservations")
CONSUME_RESERVATIONS = _load("consume_reservations")
RELEASE_CHANGED_LINES = _load("release_changed_lines")
RESERVE_ORDER_LINES = _load("reserve_order_lines")

# `pipeline orders show`: one order and everything that touched it.
SELECT_ORDER = _load("select_order")
SELECT_ORDER_LINES = _load("select_order_lines")
SELECT_ORDER_RESERVATIONS = _load("select_order_reservations")
SELECT_ORDER_FULFILLMENTS = _load("select_order_fulfillments")
SELECT_ORDER_DELIVERIES = _load("select_order_deliveries")
SELECT_ORDER_EVENTS = _load("select_order_events")

# `pipeline replay` and `pipeline rebuild`: runs, their checkpoints, and the audit status filter.
INSERT_REPLAY_RUN = _load("insert_replay_run")
SELECT_REPLAY_RUN = _load("select_replay_run")
SAVE_REPLAY_CHECKPOINT = _load("save_replay_checkpoint")
FINISH_REPLAY_RUN = _load("finish_replay_run")
SELECT_DELIVERY_STATUSES = _load("select_delivery_statuses")

# Distributed locks: the fence check of a guarded write.
ADVANCE_LOCK_FENCE = _load("advance_lock_fence")

# Exchange-rate snapshots (`pipeline fx`).
INSERT_EXCHANGE_RATES = _load("insert_exchange_rates")
SELECT_EXCHANGE_RATE_DAYS = _load("select_exchange_rate_days")
SELECT_EXCHANGE_RATES = _load("select_exchange_rates")
