"""TikTok Shop webhooks: one app secret signs every shop, the shop and the event kind (`type`)
come from the body, each notification carries its own id, and pushes are thin."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final, Literal

from pipeline.envelope import Envelope
from pipeline.errors import InvalidPayload
from pipeline.platforms.base import Credentials, DeliveryInfo, Normalized, Rejection
from pipeline.platforms.fields import (
    body_object,
    body_shop_id,
    delivery_key,
    epoch_iso,
    epoch_time,
    header,
    hmac_sha256,
    ident,
    items,
    json_object,
    obj,
    received_at,
    required_ident,
    signed_by_any,
    source_of,
    text,
    token,
    version_of,
    whole_number,
)
from schemas.catalogue import AnyEvent
from schemas.fulfillments import (
    Fulfillment,
    FulfillmentEvent,
    FulfillmentStatus,
    fulfillment_event_id,
)
from schemas.inventory import (
    StockStatus,
    StockStatusChange,
    StockStatusEvent,
    inventory_event_id,
)
from schemas.orders import OrderStatus, OrderStatusChange, OrderStatusEvent, status_event_id

NAME: Final = "tiktok"
SIGNATURE_HEADER: Final = "Authorization"

ORDER_STATUS_CHANGE: Final = 1
PACKAGE_UPDATE: Final = 4
CANCELLATION_STATUS_CHANGE: Final = 11
INVENTORY_STATUS_CHANGE: Final = 27

TYPE_TOPICS: Final[dict[int, str]] = {
    ORDER_STATUS_CHANGE: "order_status_change",
    PACKAGE_UPDATE: "package_update",
    CANCELLATION_STATUS_CHANGE: "cancellation_status_change",
    INVENTORY_STATUS_CHANGE: "inventory_status_change",
}

STATUS_MAP: Final[dict[str, OrderStatus]] = {
    "UNPAID": "pending",
    "ON_HOLD": "pending",
    "AWAITING_SHIPMENT": "paid",
    "AWAITING_COLLECTION": "paid",
    "PARTIALLY_SHIPPING": "partially_fulfilled",
    "IN_TRANSIT": "fulfilled",
    "DELIVERED": "completed",
    "COMPLETED": "completed",
    "CANCEL": "cancelled",
    # Not in TikTok's documented list, but seen in third-party code: accepted as the same.
    "CANCELLED": "cancelled",
}

# Package words are not confirmed for the type-4 push; an unknown one leaves the status unset
# (the stored status is kept) rather than refusing the delivery.
PACKAGE_STATUS_MAP: Final[dict[str, FulfillmentStatus]] = {
    "TO_FULFILL": "pending",
    "PROCESSING": "pending",
    "SHIPPED": "in_transit",
    "IN_TRANSIT": "in_transit",
    "DELIVERED": "delivered",
    "COMPLETED": "delivered",
    "CANCELLED": "cancelled",
}

# TikTok documents type 27 as low / out of stock alerts; the exact words are not confirmed, so
# the usual spellings are accepted and anything else is dead-lettered (replayable after a fix).
STOCK_STATUS_MAP: Final[dict[str, StockStatus]] = {
    "LOW_STOCK": "low_stock",
    "LOW": "low_stock",
    "OUT_OF_STOCK": "out_of_stock",
    "SOLD_OUT": "out_of_stock",
    "NO_STOCK": "out_of_stock",
    "IN_STOCK": "in_stock",
    "RESTOCKED": "in_stock",
}

_ORDER_TYPES: Final = (ORDER_STATUS_CHANGE, PACKAGE_UPDATE, CANCELLATION_STATUS_CHANGE)
_SHOP_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


def sign(app_secret: str, app_key: str, body: bytes) -> str:
    """The Authorization value TikTok Shop sends: hex HMAC-SHA256 of app_key + body."""
    return hmac_sha256(app_secret, _signed_bytes(app_key, body)).hex()


def delivery_headers(app_secret: str, body: bytes, *, app_key: str) -> dict[str, str]:
    """The headers TikTok Shop sends with `body` (for tests, benchmarks and local tools)."""
    return {SIGNATURE_HEADER: sign(app_secret, app_key, body)}


class TikTokAdapter:
    """Adapter for TikTok Shop webhooks."""

    name: str = NAME
    credential_scope: Literal["shop", "app"] = "app"
    # Third-party reports: TikTok wants a quick, empty 200.
    empty_ack: bool = True
    shop_hint: str = "the TikTok Shop shop id (letters, digits, - and _)"

    def canonical_shop(self, text: str) -> str | None:
        shop = text.strip()
        return shop if _SHOP_RE.fullmatch(shop) else None

    def handshake(self, headers: Mapping[str, str], body: bytes) -> bool:
        return False

    def shop_of(self, headers: Mapping[str, str], body: bytes) -> str:
        return body_shop_id(body, "shop_id", "a TikTok Shop shop id", _SHOP_RE)

    def verify(self, credentials: Credentials, headers: Mapping[str, str], body: bytes) -> bool:
        if credentials.app_key is None:
            return False
        message = _signed_bytes(credentials.app_key, body)
        return signed_by_any(credentials.secrets, message, header(headers, SIGNATURE_HEADER), "hex")

    def describe(self, shop_id: str, headers: Mapping[str, str], body: bytes) -> DeliveryInfo:
        payload = body_object(body)
        kind = whole_number(payload.get("type"))
        if kind is None:
            raise Rejection(400, "body type is missing or not a whole number")
        delivery_id = token(payload.get("tts_notification_id"))
        if delivery_id is None:
            raise Rejection(400, "body tts_notification_id is missing or not a plain id")
        return DeliveryInfo(
            topic=topic_of(kind),
            delivery_id=delivery_id,
            entity_key=delivery_key(
                NAME, shop_id, delivery_id, _resource(kind, payload.get("data"))
            ),
            triggered_at=epoch_iso(payload.get("timestamp")),
        )

    def normalize(self, envelope: Envelope) -> Normalized:
        payload = json_object(envelope.body)
        kind = whole_number(payload.get("type"))
        if kind is None:
            raise InvalidPayload("type is missing or not a whole number")
        if kind == CANCELLATION_STATUS_CHANGE:
            # A cancellation request's progress; the order's own CANCEL arrives as type 1.
            return Normalized(events=(), ignored="tiktok type 11 is recorded, not mapped yet")
        read = _READERS.get(kind)
        if read is None:
            return Normalized(events=(), ignored=f"tiktok type {kind} is not handled yet")
        return Normalized(events=read(_Push(envelope, payload)))


def topic_of(kind: int) -> str:
    """The readable topic of a notification type; an unknown type keeps its number (`type_5`)."""
    return TYPE_TOPICS.get(kind, f"type_{kind}")


class _Push:
    """One notification being read into canonical events."""

    def __init__(self, envelope: Envelope, payload: dict[str, Any]) -> None:
        self.envelope = envelope
        self.data = obj(payload.get("data"), "data")
        self.sent_at = epoch_time(payload.get("timestamp"), "timestamp")
        self.updated_at = epoch_time(self.data.get("update_time"), "data.update_time")
        self.received_at = received_at(envelope.received_at_ms)
        self.source = source_of(NAME, envelope)

    @property
    def occurred_at(self) -> datetime:
        return self.updated_at or self.sent_at or self.received_at

    @property
    def version(self) -> str:
        """The change's own time, else the notification's, else the notification id."""
        return version_of(self.updated_at or self.sent_at, f"delivery:{self.envelope.delivery_id}")

    def order_status(self) -> tuple[AnyEvent, ...]:
        order_id = required_ident(self.data.get("order_id"), "data.order_id")
        platform_status = text(self.data.get("order_status"))
        if platform_status is None:
            raise InvalidPayload("data.order_status is missing")
        status = STATUS_MAP.get(platform_status)
        if status is None:
            raise InvalidPayload(
                f"data.order_status {platform_status[:40]!r} is not a known status"
            )
        change = OrderStatusChange(
            platform=NAME,
            shop_id=self.envelope.shop_id,
            external_id=order_id,
            status=status,
            platform_status=platform_status,
            source_updated_at=self.updated_at,
        )
        event = OrderStatusEvent(
            event_id=status_event_id(change, self.version),
            type="order.status_changed",
            occurred_at=self.occurred_at,
            order=change,
            source=self.source,
        )
        return (event,)

    def package_update(self) -> tuple[AnyEvent, ...]:
        # The type-4 shape is not confirmed: `package_id` is read, or each `package_id` of a
        # `package_list` (a split or combined order names several packages).
        order_id = required_ident(self.data.get("order_id"), "data.order_id")
        packages = _package_ids(self.data)
        platform_status = text(self.data.get("package_status"))
        status = PACKAGE_STATUS_MAP.get(platform_status) if platform_status else None
        events: list[AnyEvent] = []
        for package_id in packages:
            fulfillment = Fulfillment(
                platform=NAME,
                shop_id=self.envelope.shop_id,
                external_id=package_id,
                order_external_id=order_id,
                status=status,
                platform_status=platform_status,
                source_updated_at=self.updated_at,
            )
            events.append(
                FulfillmentEvent(
                    event_id=fulfillment_event_id(
                        fulfillment, "fulfillment.updated", f"{self.version}|{platform_status}"
                    ),
                    type="fulfillment.updated",
                    occurred_at=self.occurred_at,
                    fulfillment=fulfillment,
                    source=self.source,
                )
            )
        return tuple(events)

    def inventory_status(self) -> tuple[AnyEvent, ...]:
        product_id = required_ident(self.data.get("product_id"), "data.product_id")
        sku_id = ident(self.data.get("sku_id"), "data.sku_id")
        warehouse_id = ident(self.data.get("warehouse_id"), "data.warehouse_id")
        raw_status = self.data.get("inventory_status", self.data.get("status"))
        platform_status = _word(raw_status, "data.inventory_status")
        status = STOCK_STATUS_MAP.get(platform_status)
        if status is None:
            raise InvalidPayload(
                f"data.inventory_status {platform_status[:40]!r} is not a known stock status"
            )
        stock = StockStatusChange(
            platform=NAME,
            shop_id=self.envelope.shop_id,
            product_id=product_id,
            status=status,
            platform_status=platform_status,
            sku_id=sku_id,
            warehouse_id=warehouse_id,
            source_updated_at=self.updated_at,
        )
        subject = f"{product_id}:{sku_id or ''}:{warehouse_id or ''}"
        event = StockStatusEvent(
            event_id=inventory_event_id(
                NAME,
                self.envelope.shop_id,
                subject,
                "inventory.status_changed",
                f"{self.version}|{platform_status}",
            ),
            type="inventory.status_changed",
            occurred_at=self.occurred_at,
            stock=stock,
            source=self.source,
        )
        return (event,)


_READERS: Final[dict[int, Callable[[_Push], tuple[AnyEvent, ...]]]] = {
    ORDER_STATUS_CHANGE: _Push.order_status,
    PACKAGE_UPDATE: _Push.package_update,
    INVENTORY_STATUS_CHANGE: _Push.inventory_status,
}


def _signed_bytes(app_key: str, body: bytes) -> bytes:
    return app_key.encode("utf-8") + body


def _resource(kind: int, data: object) -> tuple[str, str] | None:
    """(entity type, id) the notification is about, or None when its data names none usable."""
    if not isinstance(data, dict):
        return None
    if kind in _ORDER_TYPES:
        found = token(data.get("order_id"))
        return ("order", found) if found else None
    if kind == INVENTORY_STATUS_CHANGE:
        found = token(data.get("product_id"))
        return ("product", found) if found else None
    return None


def _word(value: object, name: str) -> str:
    """A stock status word, upper-cased with spaces and hyphens as underscores (the exact
    spelling TikTok uses is not confirmed)."""
    found = text(value)
    if found is None:
        raise InvalidPayload(f"{name} is missing")
    return re.sub(r"[\s-]+", "_", found.strip()).upper()


def _package_ids(data: dict[str, Any]) -> tuple[str, ...]:
    single = ident(data.get("package_id"), "data.package_id")
    if single is not None:
        return (single,)
    listed = tuple(
        required_ident(
            obj(entry, f"data.package_list[{i}]").get("package_id"),
            f"data.package_list[{i}].package_id",
        )
        for i, entry in enumerate(items(data.get("package_list"), "data.package_list"))
    )
    if not listed:
        raise InvalidPayload("data.package_id is missing")
    return listed
