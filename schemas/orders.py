"""Canonical order events (topic `commerce.orders`, schema version 1)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Final, Literal

from schemas.events import Source, deterministic_id

OrderStatus = Literal[
    "pending", "paid", "partially_fulfilled", "fulfilled", "cancelled", "refunded"
]
ORDER_STATUSES: Final = (
    "pending",
    "paid",
    "partially_fulfilled",
    "fulfilled",
    "cancelled",
    "refunded",
)

OrderEventType = Literal[
    "order.created",
    "order.updated",
    "order.paid",
    "order.cancelled",
    "order.fulfilled",
    "order.partially_fulfilled",
]
ORDER_EVENT_TYPES: Final = (
    "order.created",
    "order.updated",
    "order.paid",
    "order.cancelled",
    "order.fulfilled",
    "order.partially_fulfilled",
)


def order_row_id(platform: str, shop_id: str, external_id: str) -> uuid.UUID:
    """The `orders.id` of an order, derived from its identity so every writer agrees."""
    return deterministic_id("order", platform, shop_id, external_id)


@dataclass(frozen=True, slots=True)
class OrderLine:
    """One line of an order as the platform last described it."""

    external_line_id: str
    quantity: int
    variant_id: str | None = None
    product_id: str | None = None
    sku: str | None = None
    title: str | None = None
    unit_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Order:
    """The newest known state of one order, as carried by one event."""

    platform: str
    shop_id: str
    external_id: str
    status: OrderStatus
    order_number: str | None = None
    financial_status: str | None = None
    fulfillment_status: str | None = None
    currency: str | None = None
    total_amount: Decimal | None = None
    subtotal_amount: Decimal | None = None
    total_tax: Decimal | None = None
    customer_email: str | None = None
    placed_at: datetime | None = None
    cancelled_at: datetime | None = None
    source_updated_at: datetime | None = None
    lines: tuple[OrderLine, ...] = field(default_factory=tuple)

    @property
    def row_id(self) -> uuid.UUID:
        return order_row_id(self.platform, self.shop_id, self.external_id)


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """Something happened to an order; `order` is its full state right after."""

    event_id: uuid.UUID
    type: OrderEventType
    occurred_at: datetime
    order: Order
    source: Source
    schema: str = "commerce.order/v1"

    @property
    def entity_key(self) -> str:
        return f"{self.order.platform}:{self.order.shop_id}:order:{self.order.external_id}"


def order_event_id(order: Order, event_type: str, version: str) -> uuid.UUID:
    """Same order, same event type, same source version: same id, whichever delivery carried it."""
    return deterministic_id(
        "order-event", order.platform, order.shop_id, order.external_id, event_type, version
    )
