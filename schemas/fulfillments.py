"""Canonical fulfilment events (topic `commerce.fulfillments`): shipments of an order's lines."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

from schemas.events import Source, deterministic_id, entity_key

FulfillmentEventType = Literal["fulfillment.created", "fulfillment.updated"]
FULFILLMENT_EVENT_TYPES: Final = ("fulfillment.created", "fulfillment.updated")

FulfillmentStatus = Literal["pending", "in_transit", "delivered", "cancelled", "failed"]
FULFILLMENT_STATUSES: Final = ("pending", "in_transit", "delivered", "cancelled", "failed")


def fulfillment_row_id(platform: str, shop_id: str, external_id: str) -> uuid.UUID:
    """The `fulfillments.id` of a fulfilment (a shipment, a package), from its identity."""
    return deterministic_id("fulfillment", platform, shop_id, external_id)


@dataclass(frozen=True, slots=True)
class FulfillmentLine:
    """How many units of one order line a fulfilment ships."""

    external_line_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Fulfillment:
    """One shipment of an order. Thin pushes (a Shopee tracking number) carry no lines: then
    `lines` is empty and stored lines are kept; None fields keep their stored values."""

    platform: str
    shop_id: str
    external_id: str
    order_external_id: str
    status: FulfillmentStatus | None = None
    platform_status: str | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    lines: tuple[FulfillmentLine, ...] = field(default_factory=tuple)
    source_updated_at: datetime | None = None

    @property
    def row_id(self) -> uuid.UUID:
        return fulfillment_row_id(self.platform, self.shop_id, self.external_id)


@dataclass(frozen=True, slots=True)
class FulfillmentEvent:
    """A fulfilment was created or changed; keyed by its order so it follows the order's events."""

    event_id: uuid.UUID
    type: FulfillmentEventType
    occurred_at: datetime
    fulfillment: Fulfillment
    source: Source
    schema: str = "commerce.fulfillment/v1"

    stream = "fulfillments"
    entity_type = "order"

    @property
    def entity_id(self) -> str:
        return self.fulfillment.order_external_id

    @property
    def entity_key(self) -> str:
        f = self.fulfillment
        return entity_key(f.platform, f.shop_id, "order", f.order_external_id)


def fulfillment_event_id(fulfillment: Fulfillment, event_type: str, version: str) -> uuid.UUID:
    """Same fulfilment, same type, same source version (or content): same id."""
    return deterministic_id(
        "fulfillment-event",
        fulfillment.platform,
        fulfillment.shop_id,
        fulfillment.external_id,
        event_type,
        version,
    )
