"""Shopify products, inventory levels and fulfilments: the webhook topics besides orders."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from pipeline.errors import InvalidPayload
from pipeline.platforms.fields import (
    count,
    ident,
    iso_time,
    items,
    money,
    required_ident,
    required_obj,
    text,
    version_of,
)
from schemas.catalogue import AnyEvent
from schemas.events import Source
from schemas.fulfillments import (
    Fulfillment,
    FulfillmentEvent,
    FulfillmentEventType,
    FulfillmentLine,
    FulfillmentStatus,
    fulfillment_event_id,
)
from schemas.inventory import InventoryLevelEvent, LevelEventType, StockLevel, inventory_event_id
from schemas.products import (
    Product,
    ProductEvent,
    ProductEventType,
    ProductVariant,
    product_event_id,
)

PRODUCT_TOPICS: Final[dict[str, ProductEventType]] = {
    "products/create": "product.created",
    "products/update": "product.updated",
    "products/delete": "product.deleted",
}
LEVEL_TOPICS: Final[dict[str, LevelEventType]] = {
    "inventory_levels/update": "inventory.level_updated",
    "inventory_levels/connect": "inventory.level_connected",
    "inventory_levels/disconnect": "inventory.level_disconnected",
}
FULFILLMENT_TOPICS: Final[dict[str, FulfillmentEventType]] = {
    "fulfillments/create": "fulfillment.created",
    "fulfillments/update": "fulfillment.updated",
}
RESOURCE_TOPICS: Final = (
    frozenset(PRODUCT_TOPICS) | frozenset(LEVEL_TOPICS) | frozenset(FULFILLMENT_TOPICS)
)

# The carrier's word, when the fulfilment has one, is fresher than the fulfilment's own status.
SHIPMENT_STATUS_MAP: Final[dict[str, FulfillmentStatus]] = {
    "label_printed": "pending",
    "label_purchased": "pending",
    "confirmed": "pending",
    "ready_for_pickup": "pending",
    "in_transit": "in_transit",
    "out_for_delivery": "in_transit",
    "attempted_delivery": "in_transit",
    "delivered": "delivered",
    "failure": "failed",
}
# `success` means handed over for shipping: in transit until the carrier says otherwise.
STATUS_MAP: Final[dict[str, FulfillmentStatus]] = {
    "pending": "pending",
    "open": "pending",
    "success": "in_transit",
    "cancelled": "cancelled",
    "error": "failed",
    "failure": "failed",
}

# A deleted product id never comes back, so one deletion needs no version beyond itself.
_DELETED_VERSION: Final = "deleted"


def normalize_resource(source: Source, payload: dict[str, Any]) -> AnyEvent:
    """The canonical event for one delivery of a topic in RESOURCE_TOPICS."""
    if source.topic in PRODUCT_TOPICS:
        return product_event(source, payload)
    if source.topic in LEVEL_TOPICS:
        return level_event(source, payload)
    if source.topic in FULFILLMENT_TOPICS:
        return fulfillment_event(source, payload)
    raise ValueError(f"{source.topic} is not a resource topic")


def product_event(source: Source, payload: dict[str, Any]) -> ProductEvent:
    """products/create|update carry the whole product; products/delete only its id."""
    event_type = PRODUCT_TOPICS[source.topic]
    external_id = required_ident(payload.get("id"), "id")
    if event_type == "product.deleted":
        # The payload is just {"id": n} with no time: the moment it reached us orders it after
        # every update received before it, and makes a late older update stale.
        product = Product(
            platform=source.platform,
            shop_id=source.shop_id,
            external_id=external_id,
            deleted=True,
            complete=False,
            source_updated_at=source.received_at,
        )
        version = _DELETED_VERSION
    else:
        product = Product(
            platform=source.platform,
            shop_id=source.shop_id,
            external_id=external_id,
            title=text(payload.get("title")),
            status=text(payload.get("status")),
            source_updated_at=iso_time(payload.get("updated_at"), "updated_at"),
            variants=tuple(
                _variant(i, v) for i, v in enumerate(items(payload.get("variants"), "variants"))
            ),
            complete=True,
        )
        version = _version(product.source_updated_at, source)
    return ProductEvent(
        event_id=product_event_id(product, event_type, version),
        type=event_type,
        occurred_at=product.source_updated_at or source.received_at,
        product=product,
        source=source,
    )


def level_event(source: Source, payload: dict[str, Any]) -> InventoryLevelEvent:
    """Stock of one inventory item at one location; a disconnect has no quantity."""
    event_type = LEVEL_TOPICS[source.topic]
    available = (
        None
        if event_type == "inventory.level_disconnected"
        else count(payload.get("available"), "available", signed=True)
    )
    level = StockLevel(
        platform=source.platform,
        shop_id=source.shop_id,
        inventory_item_id=required_ident(payload.get("inventory_item_id"), "inventory_item_id"),
        location_id=required_ident(payload.get("location_id"), "location_id"),
        available=available,
        # Inventory level payloads may lack updated_at (disconnects do): then the delivery
        # versions the event and the sink cannot order it by time.
        source_updated_at=iso_time(payload.get("updated_at"), "updated_at"),
    )
    subject = f"{level.inventory_item_id}@{level.location_id}"
    version = _version(level.source_updated_at, source)
    return InventoryLevelEvent(
        event_id=inventory_event_id(source.platform, source.shop_id, subject, event_type, version),
        type=event_type,
        occurred_at=level.source_updated_at or source.received_at,
        level=level,
        source=source,
    )


def fulfillment_event(source: Source, payload: dict[str, Any]) -> FulfillmentEvent:
    """A shipment of an order's lines, with the carrier's tracking when it has one."""
    event_type = FULFILLMENT_TOPICS[source.topic]
    platform_status = text(payload.get("status"))
    fulfillment = Fulfillment(
        platform=source.platform,
        shop_id=source.shop_id,
        external_id=required_ident(payload.get("id"), "id"),
        order_external_id=required_ident(payload.get("order_id"), "order_id"),
        status=fulfillment_status(platform_status, text(payload.get("shipment_status"))),
        platform_status=platform_status,
        carrier=text(payload.get("tracking_company")),
        tracking_number=_first(payload, "tracking_number", "tracking_numbers"),
        tracking_url=_first(payload, "tracking_url", "tracking_urls"),
        lines=tuple(
            _fulfillment_line(i, item)
            for i, item in enumerate(items(payload.get("line_items"), "line_items"))
        ),
        source_updated_at=iso_time(payload.get("updated_at"), "updated_at"),
    )
    version = _version(fulfillment.source_updated_at, source)
    return FulfillmentEvent(
        event_id=fulfillment_event_id(fulfillment, event_type, version),
        type=event_type,
        occurred_at=fulfillment.source_updated_at or source.received_at,
        fulfillment=fulfillment,
        source=source,
    )


def fulfillment_status(status: str | None, shipment_status: str | None) -> FulfillmentStatus | None:
    """The carrier's `shipment_status` when set and known, else the fulfilment's `status`.

    An unknown shipment_status falls back to `status` rather than dead-lettering the delivery
    (Shopify adds carrier states over time); an unknown `status` is invalid.
    """
    if shipment_status is not None and shipment_status in SHIPMENT_STATUS_MAP:
        return SHIPMENT_STATUS_MAP[shipment_status]
    if status is None:
        return None
    mapped = STATUS_MAP.get(status)
    if mapped is None:
        raise InvalidPayload(f"status {status[:50]!r} is not a known fulfillment status")
    return mapped


def _variant(index: int, raw: object) -> ProductVariant:
    name = f"variants[{index}]"
    variant = required_obj(raw, name)
    return ProductVariant(
        external_variant_id=required_ident(variant.get("id"), f"{name}.id"),
        sku=text(variant.get("sku")),
        title=text(variant.get("title")),
        price=money(variant.get("price"), f"{name}.price"),
        # Shopify prices are in the shop's currency, which the product payload does not name.
        currency=None,
        inventory_item_id=ident(variant.get("inventory_item_id"), f"{name}.inventory_item_id"),
        source_updated_at=iso_time(variant.get("updated_at"), f"{name}.updated_at"),
    )


def _fulfillment_line(index: int, raw: object) -> FulfillmentLine:
    name = f"line_items[{index}]"
    line = required_obj(raw, name)
    quantity = count(line.get("quantity"), f"{name}.quantity")
    if quantity is None:
        raise InvalidPayload(f"{name}.quantity is missing")
    return FulfillmentLine(
        external_line_id=required_ident(line.get("id"), f"{name}.id"), quantity=quantity
    )


def _first(payload: dict[str, Any], single: str, plural: str) -> str | None:
    """`single` if set, else the first of the list `plural` (Shopify sends both forms)."""
    found = text(payload.get(single))
    if found is not None:
        return found
    values = items(payload.get(plural), plural)
    return text(values[0]) if values else None


def _version(moment: datetime | None, source: Source) -> str:
    return version_of(moment, f"delivery:{source.delivery_id}")
