"""Canonical order events (topic `commerce.orders`): full snapshots and thin status changes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Final, Literal

from schemas.events import Source, deterministic_id, entity_key

OrderStatus = Literal[
    "pending",
    "paid",
    "partially_fulfilled",
    "fulfilled",
    "completed",
    "cancelled",
    "refunded",
    "returned",
]
ORDER_STATUSES: Final = (
    "pending",
    "paid",
    "partially_fulfilled",
    "fulfilled",
    "completed",
    "cancelled",
    "refunded",
    "returned",
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
    # The platform's own status word where it has one (WooCommerce `status`); new in v1.1.
    platform_status: str | None = None

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

    stream = "orders"
    entity_type = "order"

    @property
    def entity_id(self) -> str:
        return self.order.external_id

    @property
    def entity_key(self) -> str:
        return entity_key(self.order.platform, self.order.shop_id, "order", self.order.external_id)


def order_event_id(order: Order, event_type: str, version: str) -> uuid.UUID:
    """Same order, same event type, same source version: same id, whichever delivery carried it."""
    return deterministic_id(
        "order-event", order.platform, order.shop_id, order.external_id, event_type, version
    )


@dataclass(frozen=True, slots=True)
class OrderStatusChange:
    """What a thin push says of an order: its id and new status, never amounts or lines.

    `line_id` is set when the platform reports per line (Lazada); `platform_status` is the
    platform's own word, kept because the canonical set is coarser.
    """

    platform: str
    shop_id: str
    external_id: str
    status: OrderStatus
    platform_status: str
    source_updated_at: datetime | None = None
    line_id: str | None = None

    @property
    def row_id(self) -> uuid.UUID:
        return order_row_id(self.platform, self.shop_id, self.external_id)


@dataclass(frozen=True, slots=True)
class OrderStatusEvent:
    """An order's status changed (Shopee, Lazada, TikTok Shop pushes and the like)."""

    event_id: uuid.UUID
    type: Literal["order.status_changed"]
    occurred_at: datetime
    order: OrderStatusChange
    source: Source
    schema: str = "commerce.order_status/v1"

    stream = "orders"
    entity_type = "order"

    @property
    def entity_id(self) -> str:
        return self.order.external_id

    @property
    def entity_key(self) -> str:
        return entity_key(self.order.platform, self.order.shop_id, "order", self.order.external_id)


def status_event_id(change: OrderStatusChange, version: str) -> uuid.UUID:
    """Same order (and line), same platform status, same source version: same id."""
    return deterministic_id(
        "order-status",
        change.platform,
        change.shop_id,
        change.external_id,
        change.line_id or "",
        change.platform_status,
        version,
    )
