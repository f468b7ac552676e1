"""Shopify: HMAC-SHA256 over the raw body, shop from a header, full order snapshots."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import orjson

from pipeline.envelope import Envelope
from pipeline.errors import InvalidPayload
from pipeline.platforms.base import Credentials, DeliveryInfo, Normalized, Rejection
from pipeline.platforms.fields import (
    delivery_key,
    header,
    hmac_sha256,
    json_object,
    required_obj,
    safe_ident,
    signed_by_any,
    source_of,
    version_of,
)
from pipeline.platforms.fields import ident as _id
from pipeline.platforms.fields import iso_time as _time
from pipeline.platforms.fields import money as _money
from pipeline.platforms.fields import text as _opt_str
from pipeline.platforms.shopify_resources import RESOURCE_TOPICS, normalize_resource
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
# What Shopify names every shop in X-Shopify-Shop-Domain: one DNS label under myshopify.com (a
# custom domain never appears there, so a channel registered under one would never match).
_MYSHOPIFY_RE: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.myshopify\.com")
_TOKEN_RE: Final = re.compile(r"^[A-Za-z0-9._:/-]{1,200}$")


def sign(secret: str, body: bytes) -> str:
    """The X-Shopify-Hmac-Sha256 value for a body: base64 of HMAC-SHA256."""
    return base64.b64encode(hmac_sha256(secret, body)).decode("ascii")


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


def myshopify_domain(text: str) -> str | None:
    """The `<name>.myshopify.com` domain an operator typed, bare or as an http(s) URL (its path
    is dropped), lowercase; None for anything else, such as a bare name or a custom domain."""
    shop = text.strip().lower()
    if "://" in shop:
        try:
            parts = urlsplit(shop)
            port = parts.port
        except ValueError:
            return None
        if parts.scheme not in ("http", "https") or port is not None or "@" in parts.netloc:
            return None
        shop = parts.hostname or ""
    shop = shop.removesuffix("/")
    return shop if _MYSHOPIFY_RE.fullmatch(shop) else None


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
    credential_scope: Literal["shop", "app"] = "shop"
    empty_ack: bool = False
    shop_hint: str = "the shop's <name>.myshopify.com domain, such as demo.myshopify.com"

    def canonical_shop(self, text: str) -> str | None:
        return myshopify_domain(text)

    def handshake(self, headers: Mapping[str, str], body: bytes) -> bool:
        return False

    def shop_of(self, headers: Mapping[str, str], body: bytes) -> str:
        shop = header(headers, SHOP_HEADER).lower()
        if not shop:
            raise Rejection(400, f"missing {SHOP_HEADER} header")
        if not _SHOP_RE.match(shop):
            raise Rejection(400, f"{SHOP_HEADER} is not a shop domain")
        return shop

    def verify(self, credentials: Credentials, headers: Mapping[str, str], body: bytes) -> bool:
        return signed_by_any(credentials.secrets, body, header(headers, HMAC_HEADER), "base64")

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
        entity = None if resource_id is None else (_entity_of(topic)[0], resource_id)
        return DeliveryInfo(
            topic=topic,
            delivery_id=delivery_id,
            entity_key=delivery_key(NAME, shop_id, delivery_id, entity),
            event_id=_optional_token(headers, EVENT_ID_HEADER),
            api_version=_optional_token(headers, API_VERSION_HEADER),
            triggered_at=_optional_token(headers, TRIGGERED_AT_HEADER),
            malformed=malformed,
        )

    def normalize(self, envelope: Envelope) -> Normalized:
        event_type = ORDER_TOPICS.get(envelope.topic)
        if event_type is None and envelope.topic not in RESOURCE_TOPICS:
            return Normalized(events=(), ignored=f"topic {envelope.topic} is not handled yet")
        payload = json_object(envelope.body)
        source = source_of(NAME, envelope)
        if event_type is None:
            return Normalized(events=(normalize_resource(source, payload),))
        order = parse_order(envelope.shop_id, payload)
        version = version_of(order.source_updated_at, f"delivery:{envelope.delivery_id}")
        event = OrderEvent(
            event_id=order_event_id(order, event_type, version),
            type=event_type,
            occurred_at=order.source_updated_at or source.received_at,
            order=order,
            source=source,
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


def _line(index: int, raw: object) -> OrderLine:
    item = required_obj(raw, f"line_items[{index}]")
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


# Which entity a topic's deliveries are keyed by, and the payload field naming it: refunds and
# fulfilments follow their order so they land on the order's partition.
_ENTITY_OF_PREFIX: Final[dict[str, tuple[str, str]]] = {
    "orders/": ("order", "id"),
    "refunds/": ("order", "order_id"),
    "fulfillments/": ("order", "order_id"),
    "products/": ("product", "id"),
    "inventory_levels/": ("inventory_item", "inventory_item_id"),
}


def _entity_of(topic: str) -> tuple[str, str]:
    """(entity type, id field) for a topic; other topics key by their resource's `id`."""
    for prefix, entity in _ENTITY_OF_PREFIX.items():
        if topic.startswith(prefix):
            return entity
    return topic.split("/")[0], "id"


def _resource_id(topic: str, payload: object) -> str | None:
    if not isinstance(payload, dict):
        return None
    return safe_ident(payload.get(_entity_of(topic)[1]))


def _token(headers: Mapping[str, str], name: str) -> str:
    value = header(headers, name)
    if not value:
        raise Rejection(400, f"missing {name} header")
    if not _TOKEN_RE.match(value):
        raise Rejection(400, f"{name} header has unexpected characters")
    return value


def _optional_token(headers: Mapping[str, str], name: str) -> str | None:
    """An informational header; a value that is not a plain token is dropped, not trusted."""
    value = header(headers, name)
    return value if _TOKEN_RE.match(value) else None
