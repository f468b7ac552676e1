"""Lazada: one app secret signs app_key + raw body; thin per-line order and product pushes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Literal

from pipeline.envelope import Envelope
from pipeline.errors import InvalidPayload
from pipeline.platforms.base import Credentials, DeliveryInfo, Normalized, Rejection
from pipeline.platforms.fields import (
    body_object,
    body_shop_id,
    content_id,
    delivery_key,
    epoch_time,
    header,
    hmac_sha256,
    ident,
    json_object,
    obj,
    required_ident,
    safe_ident,
    signed_by_any,
    source_of,
    text,
    token,
    version_of,
)
from schemas.events import Source
from schemas.orders import OrderStatus, OrderStatusChange, OrderStatusEvent, status_event_id
from schemas.products import Product, ProductEvent, ProductEventType, product_event_id

NAME: Final = "lazada"
SIGNATURE_HEADER: Final = "Authorization"

TRADE_ORDER: Final = 0
TOPICS: Final[dict[int, str]] = {
    TRADE_ORDER: "trade_order",
    3: "product_created",
    4: "product_updated",
    5: "product_deleted",
}
PRODUCT_TOPICS: Final[dict[str, ProductEventType]] = {
    "product_created": "product.created",
    "product_updated": "product.updated",
    "product_deleted": "product.deleted",
}

# Lazada's order statuses (lowercase) onto the canonical set.
STATUS_MAP: Final[dict[str, OrderStatus]] = {
    "unpaid": "pending",
    # Lazada's "pending" means paid and awaiting packing, not awaiting payment.
    "pending": "paid",
    "packed": "paid",
    "repacked": "paid",
    "ready_to_ship": "paid",
    "ready_to_ship_pending": "paid",
    "shipped": "fulfilled",
    # Handed to the carrier but not received: still out of the seller's hands, not yet final.
    "failed_delivery": "fulfilled",
    "delivered": "completed",
    "confirmed": "completed",
    "failed": "cancelled",
    "canceled": "cancelled",
    "cancelled": "cancelled",
    "returned": "returned",
    "shipped_back": "returned",
    # Lost or damaged by the carrier: the order will not complete and the buyer is refunded.
    "lost_by_3pl": "cancelled",
    "damaged_by_3pl": "cancelled",
}

# Lazada does not document a product push's time field; these are tried in order, then the
# envelope `timestamp`.
_PRODUCT_TIME_FIELDS: Final = ("update_time", "status_update_time")


def sign(secret: str, app_key: str, body: bytes) -> str:
    """The Authorization value Lazada sends: lowercase hex HMAC-SHA256 of app_key + body."""
    return hmac_sha256(secret, app_key.encode("utf-8") + body).hex()


def delivery_headers(secret: str, app_key: str, body: bytes) -> dict[str, str]:
    """The headers Lazada sends with `body` (for tests, benchmarks and local tools)."""
    return {SIGNATURE_HEADER: sign(secret, app_key, body), "Content-Type": "application/json"}


class LazadaAdapter:
    """Adapter for Lazada Open Platform push messages."""

    name: str = NAME
    credential_scope: Literal["shop", "app"] = "app"
    empty_ack: bool = False
    shop_hint: str = "the Lazada seller id"

    def canonical_shop(self, text: str) -> str | None:
        return token(text)

    def handshake(self, headers: Mapping[str, str], body: bytes) -> bool:
        return False

    def shop_of(self, headers: Mapping[str, str], body: bytes) -> str:
        return body_shop_id(body, "seller_id", "an id")

    def verify(self, credentials: Credentials, headers: Mapping[str, str], body: bytes) -> bool:
        if credentials.app_key is None:
            return False
        message = credentials.app_key.encode("utf-8") + body
        return signed_by_any(credentials.secrets, message, header(headers, SIGNATURE_HEADER), "hex")

    def describe(self, shop_id: str, headers: Mapping[str, str], body: bytes) -> DeliveryInfo:
        payload = body_object(body)
        message_type = payload.get("message_type")
        if message_type is None:
            raise Rejection(400, "body has no message_type")
        if not isinstance(message_type, int) or isinstance(message_type, bool):
            raise Rejection(400, "body message_type is not an integer")
        topic = TOPICS.get(message_type, f"message_type_{message_type}")
        data = payload.get("data")
        fields = data if isinstance(data, dict) else {}
        resource, key = "", None
        parts: tuple[object, ...] = ()
        if message_type == TRADE_ORDER:
            # Pushed per line: the line, its status and its time tell one change from another.
            resource, key = "order", safe_ident(fields.get("trade_order_id"))
            parts = (
                fields.get("trade_order_line_id"),
                fields.get("order_status"),
                fields.get("status_update_time"),
            )
        elif topic in PRODUCT_TOPICS:
            resource, key = "product", safe_ident(fields.get("item_id"))
            parts = (fields.get("item_id"), _product_time_raw(fields, payload))
        delivery_id = content_id(shop_id, message_type, *parts, data)
        entity = None if key is None else (resource, key)
        return DeliveryInfo(
            topic=topic,
            delivery_id=delivery_id,
            entity_key=delivery_key(NAME, shop_id, delivery_id, entity),
        )

    def normalize(self, envelope: Envelope) -> Normalized:
        if envelope.topic != TOPICS[TRADE_ORDER] and envelope.topic not in PRODUCT_TOPICS:
            return Normalized(events=(), ignored=f"topic {envelope.topic} is not handled yet")
        payload = json_object(envelope.body)
        data = obj(payload.get("data"), "data")
        source = source_of(NAME, envelope)
        if envelope.topic == TOPICS[TRADE_ORDER]:
            return Normalized(events=(_status_event(source, data),))
        return Normalized(events=(_product_event(source, payload, data),))


def _status_event(source: Source, data: dict[str, Any]) -> OrderStatusEvent:
    """One order line's new status.

    Lazada pushes per order line, so the order takes the status of whichever line changed
    last; a full order (every line's status, amounts) needs the `/order/get` API.
    """
    platform_status = text(data.get("order_status"))
    if platform_status is None:
        raise InvalidPayload("data.order_status is missing")
    status = STATUS_MAP.get(platform_status.strip().lower())
    if status is None:
        raise InvalidPayload(f"data.order_status {platform_status[:50]!r} is not a known status")
    change = OrderStatusChange(
        platform=NAME,
        shop_id=source.shop_id,
        external_id=required_ident(data.get("trade_order_id"), "data.trade_order_id"),
        line_id=ident(data.get("trade_order_line_id"), "data.trade_order_line_id"),
        status=status,
        platform_status=platform_status,
        source_updated_at=epoch_time(data.get("status_update_time"), "data.status_update_time"),
    )
    version = version_of(change.source_updated_at, f"delivery:{source.delivery_id}")
    return OrderStatusEvent(
        event_id=status_event_id(change, version),
        type="order.status_changed",
        occurred_at=change.source_updated_at or source.received_at,
        order=change,
        source=source,
    )


def _product_event(source: Source, payload: dict[str, Any], data: dict[str, Any]) -> ProductEvent:
    """A thin product: the push names the item only, so no title and no variants."""
    event_type = PRODUCT_TOPICS[source.topic]
    product = Product(
        platform=NAME,
        shop_id=source.shop_id,
        external_id=required_ident(data.get("item_id"), "data.item_id"),
        deleted=event_type == "product.deleted",
        source_updated_at=_product_time(data, payload),
        complete=False,
    )
    version = version_of(product.source_updated_at, f"delivery:{source.delivery_id}")
    return ProductEvent(
        event_id=product_event_id(product, event_type, version),
        type=event_type,
        occurred_at=product.source_updated_at or source.received_at,
        product=product,
        source=source,
    )


def _product_time(data: dict[str, Any], payload: dict[str, Any]) -> datetime | None:
    """The product's own update time if the push has one, else the envelope's `timestamp`."""
    for name in _PRODUCT_TIME_FIELDS:
        moment = epoch_time(data.get(name), f"data.{name}")
        if moment is not None:
            return moment
    return epoch_time(payload.get("timestamp"), "timestamp")


def _product_time_raw(data: dict[str, Any], payload: dict[str, Any]) -> object:
    """The raw value `_product_time` reads, for the content id (no validation at the ingress)."""
    for name in _PRODUCT_TIME_FIELDS:
        if data.get(name) not in (None, ""):
            return data[name]
    return payload.get("timestamp")
