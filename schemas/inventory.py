"""Canonical inventory events (topic `commerce.inventory`): stock levels by location, reserved
stock changes and stock status signals."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

from schemas.events import Source, deterministic_id, entity_key

LevelEventType = Literal[
    "inventory.level_updated", "inventory.level_connected", "inventory.level_disconnected"
]
LEVEL_EVENT_TYPES: Final = (
    "inventory.level_updated",
    "inventory.level_connected",
    "inventory.level_disconnected",
)

# A platform that has no locations (WooCommerce) reports stock at the channel's default location.
DEFAULT_LOCATION: Final = ""


@dataclass(frozen=True, slots=True)
class StockLevel:
    """Stock of one platform stock item at one platform location.

    `inventory_item_id` is what the platform counts stock by (Shopify's inventory item, else the
    variant id); `variant_id` and `sku` are given when the payload names them. `available` is
    None when the event only says the level was disconnected.
    """

    platform: str
    shop_id: str
    inventory_item_id: str
    location_id: str = DEFAULT_LOCATION
    available: int | None = None
    variant_id: str | None = None
    sku: str | None = None
    source_updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class InventoryLevelEvent:
    """A stock level was set, connected to a location or disconnected from it."""

    event_id: uuid.UUID
    type: LevelEventType
    occurred_at: datetime
    level: StockLevel
    source: Source
    schema: str = "commerce.inventory_level/v1"

    stream = "inventory"
    entity_type = "inventory_item"

    @property
    def entity_id(self) -> str:
        return self.level.inventory_item_id

    @property
    def entity_key(self) -> str:
        lv = self.level
        return entity_key(lv.platform, lv.shop_id, "inventory_item", lv.inventory_item_id)


@dataclass(frozen=True, slots=True)
class ValueChange:
    """One changed value as the platform reports it (Shopee's `changed_values`)."""

    name: str
    old: str | None = None
    new: str | None = None


@dataclass(frozen=True, slots=True)
class ReservedStockChange:
    """The platform reserved or released stock of a variant for an order (Shopee code 8)."""

    platform: str
    shop_id: str
    item_id: str
    variant_id: str | None = None
    order_id: str | None = None
    action: str | None = None
    changes: tuple[ValueChange, ...] = field(default_factory=tuple)
    source_updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ReservedStockEvent:
    """The platform's own reserved stock changed; recorded and published, no table changes."""

    event_id: uuid.UUID
    type: Literal["inventory.reserved_changed"]
    occurred_at: datetime
    reservation: ReservedStockChange
    source: Source
    schema: str = "commerce.inventory_reserved/v1"

    stream = "inventory"
    entity_type = "product"

    @property
    def entity_id(self) -> str:
        return self.reservation.item_id

    @property
    def entity_key(self) -> str:
        r = self.reservation
        return entity_key(r.platform, r.shop_id, "product", r.item_id)


StockStatus = Literal["in_stock", "low_stock", "out_of_stock"]


@dataclass(frozen=True, slots=True)
class StockStatusChange:
    """A platform's stock alert for a product or SKU (TikTok Shop type 27): no quantities."""

    platform: str
    shop_id: str
    product_id: str
    status: StockStatus
    platform_status: str
    sku_id: str | None = None
    warehouse_id: str | None = None
    source_updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StockStatusEvent:
    """A product's stock status changed; recorded and published, no table changes."""

    event_id: uuid.UUID
    type: Literal["inventory.status_changed"]
    occurred_at: datetime
    stock: StockStatusChange
    source: Source
    schema: str = "commerce.inventory_status/v1"

    stream = "inventory"
    entity_type = "product"

    @property
    def entity_id(self) -> str:
        return self.stock.product_id

    @property
    def entity_key(self) -> str:
        s = self.stock
        return entity_key(s.platform, s.shop_id, "product", s.product_id)


def inventory_event_id(
    platform: str, shop_id: str, subject: str, event_type: str, version: str
) -> uuid.UUID:
    """Same subject (item and location, or item), same type, same source version: same id."""
    return deterministic_id("inventory-event", platform, shop_id, subject, event_type, version)
