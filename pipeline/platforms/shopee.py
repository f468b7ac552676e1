"""Shopee Open Platform v2 push: one partner key signs every shop, the shop and the push kind
(`code`) come from the body, and pushes are thin (ids and a status, never a full order)."""

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
    content_id,
    delivery_key,
    epoch_iso,
    epoch_time,
    header,
    hmac_sha256,
    ident,
    items,
    json_object,
    money,
    nonzero_ident,
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
from schemas.fulfillments import Fulfillment, FulfillmentEvent, fulfillment_event_id
from schemas.inventory import (
    ReservedStockChange,
    ReservedStockEvent,
    ValueChange,
    inventory_event_id,
)
from schemas.orders import OrderStatus, OrderStatusChange, OrderStatusEvent, status_event_id
from schemas.products import PriceChange, PriceEvent, price_event_id

NAME: Final = "shopee"
SIGNATURE_HEADER: Final = "Authorization"

ORDER_STATUS: Final = 3
TRACKING_NUMBER: Final = 4
RESERVED_STOCK: Final = 8
ITEM_PRICE: Final = 22

CODE_TOPICS: Final[dict[int, str]] = {
    1: "shop_authorization",
    2: "shop_deauthorization",
    ORDER_STATUS: "order_status",
    TRACKING_NUMBER: "tracking_number",
    RESERVED_STOCK: "reserved_stock",
    12: "authorization_expiry",
    ITEM_PRICE: "item_price",
}

STATUS_MAP: Final[dict[str, OrderStatus]] = {
    "UNPAID": "pending",
    "READY_TO_SHIP": "paid",
    "PROCESSED": "paid",
    "INVOICE_PENDING": "paid",
    "SHIPPED": "fulfilled",
    "TO_CONFIRM_RECEIVE": "fulfilled",
    # The buyer asked to cancel; the seller or Shopee has not granted it, so the order stands.
    "IN_CANCEL": "paid",
    "CANCELLED": "cancelled",
    "TO_RETURN": "returned",
    "COMPLETED": "completed",
}

_ORDER_CODES: Final = (ORDER_STATUS, TRACKING_NUMBER)
_PRODUCT_CODES: Final = (RESERVED_STOCK, ITEM_PRICE)
_SHOP_RE: Final = re.compile(r"[0-9]{1,20}")


def sign(partner_key: str, callback_url: str, body: bytes) -> str:
    """The Authorization value Shopee sends: hex HMAC-SHA256 of `callback_url|body`."""
    return hmac_sha256(partner_key, _signed_bytes(callback_url, body)).hex()


def delivery_headers(partner_key: str, body: bytes, *, callback_url: str) -> dict[str, str]:
    """The headers Shopee sends with `body` (for tests, benchmarks and local tools)."""
    return {SIGNATURE_HEADER: sign(partner_key, callback_url, body)}


class ShopeeAdapter:
    """Adapter for Shopee v2 push notifications."""

    name: str = NAME
    credential_scope: Literal["shop", "app"] = "app"
    # Shopee counts anything but a 2xx with an empty body as a failed push.
    empty_ack: bool = True
    shop_hint: str = "the numeric Shopee shop id"

    def canonical_shop(self, text: str) -> str | None:
        shop = text.strip()
        return shop if _SHOP_RE.fullmatch(shop) else None

    def handshake(self, headers: Mapping[str, str], body: bytes) -> bool:
        return False

    def shop_of(self, headers: Mapping[str, str], body: bytes) -> str:
        return body_shop_id(body, "shop_id", "a Shopee shop id", _SHOP_RE)

    def verify(self, credentials: Credentials, headers: Mapping[str, str], body: bytes) -> bool:
        if credentials.callback_url is None:
            return False
        message = _signed_bytes(credentials.callback_url, body)
        return signed_by_any(credentials.secrets, message, header(headers, SIGNATURE_HEADER), "hex")

    def describe(self, shop_id: str, headers: Mapping[str, str], body: bytes) -> DeliveryInfo:
        payload = body_object(body)
        code = whole_number(payload.get("code"))
        if code is None:
            raise Rejection(400, "body code is missing or not a whole number")
        delivery_id = _msg_id(payload.get("msg_id")) or content_id(
            shop_id, code, payload.get("timestamp"), payload.get("data")
        )
        return DeliveryInfo(
            topic=topic_of(code),
            delivery_id=delivery_id,
            entity_key=delivery_key(
                NAME, shop_id, delivery_id, _resource(code, payload.get("data"))
            ),
            triggered_at=epoch_iso(payload.get("timestamp")),
        )

    def normalize(self, envelope: Envelope) -> Normalized:
        payload = json_object(envelope.body)
        code = whole_number(payload.get("code"))
        if code is None:
            raise InvalidPayload("code is missing or not a whole number")
        read = _READERS.get(code)
        if read is None:
            return Normalized(events=(), ignored=f"shopee code {code} is not handled yet")
        return Normalized(events=(read(_Push(envelope, payload)),))


def topic_of(code: int) -> str:
    """The readable topic of a push code; an unknown code keeps its number (`code_31`)."""
    return CODE_TOPICS.get(code, f"code_{code}")


class _Push:
    """One push being read into canonical events: the envelope, the body and its `data`."""

    def __init__(self, envelope: Envelope, payload: dict[str, Any]) -> None:
        self.envelope = envelope
        self.data = obj(payload.get("data"), "data")
        self.sent_at = epoch_time(payload.get("timestamp"), "timestamp")
        self.updated_at = epoch_time(self.data.get("update_time"), "data.update_time")
        self.received_at = received_at(envelope.received_at_ms)
        self.source = source_of(NAME, envelope)

    @property
    def moment(self) -> datetime | None:
        """The change's own time, else the push's."""
        return self.updated_at or self.sent_at

    @property
    def version(self) -> str:
        return version_of(self.moment, f"delivery:{self.envelope.delivery_id}")

    def order_status(self) -> OrderStatusEvent:
        ordersn = required_ident(self.data.get("ordersn"), "data.ordersn")
        platform_status = text(self.data.get("status"))
        if platform_status is None:
            raise InvalidPayload("data.status is missing")
        status = STATUS_MAP.get(platform_status)
        if status is None:
            raise InvalidPayload(f"data.status {platform_status[:40]!r} is not a known status")
        change = OrderStatusChange(
            platform=NAME,
            shop_id=self.envelope.shop_id,
            external_id=ordersn,
            status=status,
            platform_status=platform_status,
            source_updated_at=self.moment,
        )
        return OrderStatusEvent(
            event_id=status_event_id(change, self.version),
            type="order.status_changed",
            occurred_at=self.moment or self.received_at,
            order=change,
            source=self.source,
        )

    def tracking_number(self) -> FulfillmentEvent:
        ordersn = required_ident(self.data.get("ordersn"), "data.ordersn")
        package = ident(self.data.get("package_number"), "data.package_number")
        fulfillment = Fulfillment(
            platform=NAME,
            shop_id=self.envelope.shop_id,
            # An order shipped as one parcel may carry no package number: the order is the parcel.
            external_id=package or ordersn,
            order_external_id=ordersn,
            tracking_number=text(self.data.get("tracking_no")),
            source_updated_at=self.moment,
        )
        return FulfillmentEvent(
            event_id=fulfillment_event_id(fulfillment, "fulfillment.updated", self.version),
            type="fulfillment.updated",
            occurred_at=self.moment or self.received_at,
            fulfillment=fulfillment,
            source=self.source,
        )

    def reserved_stock(self) -> ReservedStockEvent:
        item_id = required_ident(self.data.get("item_id"), "data.item_id")
        variant_id = nonzero_ident(self.data.get("variation_id"), "data.variation_id")
        order_id = ident(self.data.get("ordersn"), "data.ordersn")
        action = text(self.data.get("action"))
        changes = tuple(
            _value_change(i, raw)
            for i, raw in enumerate(items(self.data.get("changed_values"), "data.changed_values"))
        )
        reservation = ReservedStockChange(
            platform=NAME,
            shop_id=self.envelope.shop_id,
            item_id=item_id,
            variant_id=variant_id,
            order_id=order_id,
            action=action,
            changes=changes,
            source_updated_at=self.updated_at,
        )
        # Several orders can reserve the same variant in one second: they are distinct events.
        subject = f"{item_id}:{variant_id or ''}"
        version = f"{self.version}|{order_id or ''}|{action or ''}"
        return ReservedStockEvent(
            event_id=inventory_event_id(
                NAME, self.envelope.shop_id, subject, "inventory.reserved_changed", version
            ),
            type="inventory.reserved_changed",
            occurred_at=self.moment or self.received_at,
            reservation=reservation,
            source=self.source,
        )

    def item_price(self) -> PriceEvent:
        # Shape from third-party integrations (not Shopee's public docs), which agree:
        # data{item_id, model_id, update_field, old_value, new_value, update_time}, one model per
        # push, update_field "original_price" (the seller's list price) or "local_price".
        item_id = required_ident(self.data.get("item_id"), "data.item_id")
        # Shopee sends 0 for an item without models.
        model_id = nonzero_ident(self.data.get("model_id"), "data.model_id")
        field = text(self.data.get("update_field"))
        if field not in (None, "original_price", "local_price"):
            raise InvalidPayload(f"data.update_field {field[:40]!r} is not a known price field")
        price = money(self.data.get("new_value"), "data.new_value")
        if price is None:
            raise InvalidPayload("data.new_value is missing")
        change = PriceChange(
            platform=NAME,
            shop_id=self.envelope.shop_id,
            external_product_id=item_id,
            external_variant_id=model_id or item_id,
            price=price,
            currency=text(self.data.get("currency")),
            original_price=price if field == "original_price" else None,
            source_updated_at=self.updated_at,
        )
        return PriceEvent(
            event_id=price_event_id(change, self.version),
            type="price.updated",
            occurred_at=self.moment or self.received_at,
            price=change,
            source=self.source,
        )


_READERS: Final[dict[int, Callable[[_Push], AnyEvent]]] = {
    ORDER_STATUS: _Push.order_status,
    TRACKING_NUMBER: _Push.tracking_number,
    RESERVED_STOCK: _Push.reserved_stock,
    ITEM_PRICE: _Push.item_price,
}


def _signed_bytes(callback_url: str, body: bytes) -> bytes:
    return callback_url.encode("utf-8") + b"|" + body


def _msg_id(value: object) -> str | None:
    """Shopee's `msg_id` when it is a plain token string as sent; otherwise the delivery is
    keyed by content."""
    return value if isinstance(value, str) and token(value) == value else None


def _resource(code: int, data: object) -> tuple[str, str] | None:
    """(entity type, id) the push is about, or None when its data names none usable."""
    if not isinstance(data, dict):
        return None
    if code in _ORDER_CODES:
        kind, raw = "order", data.get("ordersn")
    elif code in _PRODUCT_CODES:
        kind, raw = "product", data.get("item_id")
    else:
        return None
    found = token(raw)
    return (kind, found) if found is not None else None


def _value_change(index: int, raw: object) -> ValueChange:
    entry = obj(raw, f"data.changed_values[{index}]")
    name = text(entry.get("name"))
    if name is None:
        raise InvalidPayload(f"data.changed_values[{index}].name is missing")
    return ValueChange(name=name, old=text(entry.get("old")), new=text(entry.get("new")))
