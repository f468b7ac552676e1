"""The sink's SQL, one statement per file, loaded once at import."""

from __future__ import annotations

from importlib import resources


def _load(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.sql").read_text(encoding="utf-8")


INSERT_EVENTS = _load("insert_events")
UPSERT_ORDERS = _load("upsert_orders")
DELETE_ORDER_LINES = _load("delete_order_lines")
INSERT_ORDER_LINES = _load("insert_order_lines")
INSERT_WEBHOOK_EVENTS = _load("insert_webhook_events")
INSERT_DEAD_LETTERS = _load("insert_dead_letters")
