"""Shopify: HMAC-SHA256 over the raw body, shop from a header, full order snapshots."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import orjson

from pipeline.envelope import Envelope
from pipeline.errors import InvalidPayload
from pipeline.platforms.base import DeliveryInfo, Normalized, Rejection
from schemas.events import Source
from schemas.orders import (
    Order,
    OrderEvent,
    OrderEventType,
    OrderLine,
    OrderStatus,
    order_event_id,
)

NAME: Final = "shopify"
HMAC_HEADER: Final = "X-Shopify-Hmac-Sha256"
SHOP_HEADER: Final = "X-Shopify-Shop-Domain"
TOPIC_HEADER: Final = "X-Shopify-Topic"
WEBHOOK_ID_HEADER: Final = "X-Shopify-Webhook-Id"
EVENT_ID_HEADER: Final = "X-Shopify-Event-Id"
API_VERSION_HEADER: Final = "X-Shopify-API-Version"
TRIGGERED_AT_HEADER: Final = "X-Shopify-Triggered-At"

ORDER_TOPICS: Final[dict[str, OrderEventType]] = {
    "orders/create": "order.created",
    "orders/updated": "order.updated",
    "orders/paid": "order.paid",
    "orders/cancelled": "order.cancelled",
    "orders/fulfilled": "order.fulfilled",
    "orders/partially_fulfilled": "order.partially_fulfilled",
}

_SHOP_RE: Final = re.compile(r"^[a-z0-9][a-z0-9.-]{0,253}$")
_TOKEN_RE: Final = re.compile(r"^[A-Za-z0-9._:/-]{1,200}$")


def sign(secret: str, body: bytes) -> str:
    """The X-Shopify-Hmac-Sha256 value for a body: base64 of HMAC-SHA256."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def delivery_headers(
    secret: str,
    body: bytes,
    *,
    shop: str,
    topic: str,
    webhook_id: str,
    api_version: str | None = "2025-10",
    event_id: str | None = None,
    triggered_at: str | None = None,
) -> dict[str, str]:
    """The headers Shopify sends with `body` (for tests, benchmarks and local tools)."""
    headers = {
        HMAC_HEADER: sign(secret, body),
        SHOP_HEADER: shop,
        TOPIC_HEADER: topic,
        WEBHOOK_ID_HEADER: webhook_id,
    }
    optional = {
        API_VERSION_HEADER: api_version,
        EVENT_ID_HEADER: event_id,
        TRIGGERED_AT_HEADER: triggered_at,
    }
    headers.update({name: value for name, value in optional.items() if value is not None})
    return headers


def canonical_status(
    financial_status: str | None, fulfillment_status: str | None, cancelled: bool
) -> OrderStatus:
    """Map Shopify's two status fields and cancellation onto the canonical status set."""
    if cancelled or financial_status == "voided":
        return "cancelled"
    if financial_status == "refunded":
        return "refunded"
    if fulfillment_status == "fulfilled":
        return "fulfilled"
    if fulfillment_status == "partial":
        return "partially_fulfilled"
    if financial_status in ("paid", "partially_refunded"):
        return "paid"
    return "pending"


class ShopifyAdapter:
    """Adapter for Shopify Admin webhooks."""

    name: str = NAME

    def shop_of(self, headers: Mapping[str, str], body: bytes) -> str:
        shop = headers.get(SHOP_HEADER, "").strip().lower()
        if not shop:
            raise Rejection(400, f"missing {SHOP_HEADER} header")
        if not _SHOP_RE.match(shop):
            raise Rejection(400, f"{SHOP_HEADER} is not a shop domain")
        return shop

    def verify(self, secrets: Sequence[str], headers: Mapping[str, str], body: bytes) -> bool:
        given = headers.get(HMAC_HEADER, "").strip().encode("ascii", "replace")
        if not given:
            return False
        return any(hmac.compare_digest(sign(s, body).encode("ascii"), given) for s in secrets)

    def describe(self, shop_id: str, headers: Mapping[str, str], body: bytes) -> DeliveryInfo:
        topic = _token(headers, TOPIC_HEADER)
        delivery_id = _token(headers, WEBHOOK_ID_HEADER)
        malformed = False
        resource_id: str | None = None
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            malformed = True
        else:
            resource_id = _resource_id(topic, payload)
        if resource_id is None:
            entity_key = f"{NAME}:{shop_id}:delivery:{delivery_id}"
        else:
            resource = "order" if topic.startswith(("orders/", "refunds/")) else topic.split("/")[0]
            entity_key = f"{NAME}:{shop_id}:{resource}:{resource_id}"
        return DeliveryInfo(
            topic=topic,
            delivery_id=delivery_id,
            entity_key=entity_key,
            event_id=_optional_token(headers, EVENT_ID_HEADER),
            api_version=_optional_token(headers, API_VERSION_HEADER),
            triggered_at=_optional_token(headers, TRIGGERED_AT_HEADER),
            malformed=malformed,
        )

    def normalize(self, envelope: Envelope) -> Normalized:
        event_type = ORDER_TOPICS.get(envelope.topic)
        if event_type is None:
            return Normalized(events=(), ignored=f"topic {envelope.topic} is not handled yet")
        try:
            payload = orjson.loads(envelope.body)
        except orjson.JSONDecodeError as exc:
            raise InvalidPayload(f"body is not JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise InvalidPayload("body is not a JSON object")
        order = parse_order(envelope.shop_id, payload)
        received_at = datetime.fromtimestamp(envelope.received_at_ms / 1000, tz=UTC)
        version = (
            order.source_updated_at.isoformat()
            if order.source_updated_at
            else f"delivery:{envelope.delivery_id}"
        )
        event = OrderEvent(
            event_id=order_event_id(order, event_type, version),
            type=event_type,
            occurred_at=order.source_updated_at or received_at,
            order=order,
            source=Source(
                platform=NAME,
                shop_id=envelope.shop_id,
                topic=envelope.topic,
                delivery_id=envelope.delivery_id,
                received_at=received_at,
            ),
        )
        return Normalized(events=(event,))


def parse_order(shop_id: str, payload: dict[str, Any]) -> Order:
    """Read a Shopify order resource; anything unusable raises InvalidPayload."""
    external_id = _id(payload.get("id"), "id")
    if external_id is None:
        raise InvalidPayload("order has no id")
    financial = _opt_str(payload.get("financial_status"))
    fulfillment = _opt_str(payload.get("fulfillment_status"))
    cancelled_at = _time(payload.get("cancelled_at"), "cancelled_at")
    customer = payload.get("customer")
    email = _opt_str(payload.get("email")) or (
        _opt_str(customer.get("email")) if isinstance(customer, dict) else None
    )
    raw_lines = payload.get("line_items") or []
    if not isinstance(raw_lines, list):
        raise InvalidPayload("line_items is not a list")
    return Order(
        platform=NAME,
        shop_id=shop_id,
        external_id=external_id,
        status=canonical_status(financial, fulfillment, cancelled_at is not None),
        order_number=_opt_str(payload.get("name")) or _opt_str(payload.get("order_number")),
        financial_status=financial,
        fulfillment_status=fulfillment,
        currency=_opt_str(payload.get("currency")),
        total_amount=_money(payload.get("total_price"), "total_price"),
        subtotal_amount=_money(payload.get("subtotal_price"), "subtotal_price"),
        total_tax=_money(payload.get("total_tax"), "total_tax"),
        customer_email=email,
        placed_at=_time(payload.get("created_at"), "created_at"),
        cancelled_at=cancelled_at,
        source_updated_at=_time(payload.get("updated_at"), "updated_at"),
        lines=tuple(_line(i, item) for i, item in enumerate(raw_lines)),
    )


def _line(index: int, item: object) -> OrderLine:
    if not isinstance(item, dict):
        raise InvalidPayload(f"line_items[{index}] is not an object")
    line_id = _id(item.get("id"), f"line_items[{index}].id") or str(index)
    quantity = item.get("quantity", 0)
    if not isinstance(quantity, int) or isinstance(quantity, bool) or not 0 <= quantity < 2**31:
        raise InvalidPayload(f"line_items[{index}].quantity is not a count")
    return OrderLine(
        external_line_id=line_id,
        quantity=quantity,
        variant_id=_id(item.get("variant_id"), f"line_items[{index}].variant_id"),
        product_id=_id(item.get("product_id"), f"line_items[{index}].product_id"),
        sku=_opt_str(item.get("sku")),
        title=_opt_str(item.get("title")),
        unit_price=_money(item.get("price"), f"line_items[{index}].price"),
    )


def _resource_id(topic: str, payload: object) -> str | None:
    if not isinstance(payload, dict):
        return None
    raw = payload.get("order_id") if topic.startswith("refunds/") else payload.get("id")
    try:
        return _id(raw, "id")
    except InvalidPayload:
        return None


def _token(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name, "").strip()
    if not value:
        raise Rejection(400, f"missing {name} header")
    if not _TOKEN_RE.match(value):
        raise Rejection(400, f"{name} header has unexpected characters")
    return value


def _optional_token(headers: Mapping[str, str], name: str) -> str | None:
    """An informational header; a value that is not a plain token is dropped, not trusted."""
    value = headers.get(name, "").strip()
    return value if _TOKEN_RE.match(value) else None


def _id(value: object, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidPayload(f"{name} is not an id")
    text = str(value).strip()
    if not text or len(text) > 100:
        raise InvalidPayload(f"{name} is not an id")
    return text


def _opt_str(value: object) -> str | None:
    if value is None or value == "":
        return None
    return str(value)[:500]


_MAX_MONEY: Final = Decimal("1e15")


def _money(value: object, name: str) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidPayload(f"{name} is not an amount")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise InvalidPayload(f"{name} is not an amount") from None
    if not amount.is_finite() or abs(amount) >= _MAX_MONEY:
        raise InvalidPayload(f"{name} is out of range")
    return amount


def _time(value: object, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidPayload(f"{name} is not a timestamp")
    try:
        parsed = datetime.fromisoformat(value)
        # Shopify always sends an offset; a naive time would be ambiguous, so read it as UTC.
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidPayload(f"{name} is not an ISO 8601 timestamp in range") from None
