"""WooCommerce: HMAC-SHA256 over the body, shop from the store URL, full REST v3 snapshots.

WooCommerce sends no retries and a new Delivery-ID on every send, and builds the payload at
delivery time, so deliveries are deduplicated on content (resource id and modification time).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import orjson

from pipeline.envelope import Envelope
from pipeline.errors import InvalidPayload
from pipeline.platforms.base import Credentials, DeliveryInfo, Normalized, Rejection
from pipeline.platforms.fields import (
    content_id,
    count,
    delivery_key,
    header,
    hmac_sha256,
    ident,
    iso_time,
    items,
    json_object,
    money,
    nonzero_ident,
    obj,
    received_at,
    required_ident,
    required_obj,
    safe_ident,
    signed_by_any,
    source_of,
    text,
    version_of,
)
from schemas.catalogue import AnyEvent
from schemas.inventory import (
    DEFAULT_LOCATION,
    InventoryLevelEvent,
    StockLevel,
    inventory_event_id,
)
from schemas.orders import (
    Order,
    OrderEvent,
    OrderEventType,
    OrderLine,
    OrderStatus,
    OrderStatusChange,
    OrderStatusEvent,
    order_event_id,
    status_event_id,
)
from schemas.products import (
    Product,
    ProductEvent,
    ProductEventType,
    ProductVariant,
    product_event_id,
)

NAME: Final = "woocommerce"
SIGNATURE_HEADER: Final = "X-WC-Webhook-Signature"
TOPIC_HEADER: Final = "X-WC-Webhook-Topic"
SOURCE_HEADER: Final = "X-WC-Webhook-Source"
RESOURCE_HEADER: Final = "X-WC-Webhook-Resource"
EVENT_HEADER: Final = "X-WC-Webhook-Event"
WEBHOOK_ID_HEADER: Final = "X-WC-Webhook-ID"
DELIVERY_ID_HEADER: Final = "X-WC-Webhook-Delivery-ID"

# WooCommerce's order statuses onto the canonical set. Plugins add statuses of their own: an
# unknown one reads as pending (its word is kept in platform_status), never a dead letter.
STATUS_MAP: Final[dict[str, OrderStatus]] = {
    "pending": "pending",
    "on-hold": "pending",
    "checkout-draft": "pending",
    "processing": "paid",
    "completed": "completed",
    "cancelled": "cancelled",
    "failed": "cancelled",
    "trash": "cancelled",
    "refunded": "refunded",
}

ORDER_TOPICS: Final[dict[str, OrderEventType]] = {
    "order.created": "order.created",
    "order.updated": "order.updated",
    "order.restored": "order.updated",
}
PRODUCT_TOPICS: Final[dict[str, ProductEventType]] = {
    "product.created": "product.created",
    "product.updated": "product.updated",
    "product.restored": "product.updated",
}
ORDER_DELETED: Final = "order.deleted"
PRODUCT_DELETED: Final = "product.deleted"
LEVEL_UPDATED: Final = "inventory.level_updated"

# The ping WooCommerce posts when a webhook is created or activated: `webhook_id=<id>`, nothing
# else. Anchored on both ends so no real (JSON) delivery can match.
_PING_RE: Final = re.compile(rb"\Awebhook_id=[0-9]{1,20}\n?\Z")
_TOPIC_RE: Final = re.compile(r"^[a-z0-9_]{1,50}\.[a-z0-9_.-]{1,150}$")
_TOKEN_RE: Final = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")
# The shop id: a host name (optionally with a port) and a path of plain URL segments.
_SHOP_RE: Final = re.compile(
    r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::[0-9]{1,5})?"
    r"(?:/[a-z0-9._~%!$&'()*+,;=:@-]+)*$"
)


def sign(secret: str, body: bytes) -> str:
    """The X-WC-Webhook-Signature value for a body: base64 of HMAC-SHA256."""
    return base64.b64encode(hmac_sha256(secret, body)).decode("ascii")


def delivery_headers(
    secret: str,
    body: bytes,
    *,
    source: str,
    topic: str,
    delivery_id: str = "5e3b0c8f4f6a2d1e9c7b3a0d8e6f4c21",
    webhook_id: str = "1",
    resource: str | None = None,
    event: str | None = None,
) -> dict[str, str]:
    """The headers WooCommerce sends with `body` (for tests, benchmarks and local tools).

    Resource and event default to the two halves of the topic, as WooCommerce sends them.
    """
    topic_resource, _, topic_event = topic.partition(".")
    return {
        SOURCE_HEADER: source,
        TOPIC_HEADER: topic,
        RESOURCE_HEADER: topic_resource if resource is None else resource,
        EVENT_HEADER: topic_event if event is None else event,
        SIGNATURE_HEADER: sign(secret, body),
        WEBHOOK_ID_HEADER: webhook_id,
        DELIVERY_ID_HEADER: delivery_id,
    }


def shop_id_of(source: str) -> str | None:
    """The shop id of a store URL: host (and port) plus path, lowercase, no scheme, no trailing
    slash; None when it is not an http(s) URL. Query and fragment are dropped (WooCommerce sends
    `home_url('/')`, which a language plugin may decorate)."""
    try:
        parts = urlsplit(source.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    if parts.username is not None or parts.password is not None:
        return None
    # The whole id is lowercased, as `pipeline channels` lowercases the --shop it is given.
    host = parts.hostname.lower() + (f":{port}" if port is not None else "")
    shop = (host + parts.path.rstrip("/")).lower()
    return shop if len(shop) <= 255 and _SHOP_RE.match(shop) else None


def canonical_status(status: str) -> OrderStatus:
    """A WooCommerce order status on the canonical set; unknown (plugin) statuses are pending."""
    return STATUS_MAP.get(status, "pending")


class WooCommerceAdapter:
    """Adapter for WooCommerce (REST API v3) webhooks."""

    name: str = NAME
    credential_scope: Literal["shop", "app"] = "shop"
    empty_ack: bool = False
    shop_hint: str = "the store address, a host with optional path such as shop.example.com"

    def canonical_shop(self, text: str) -> str | None:
        address = text.strip()
        return shop_id_of(address if "://" in address else f"https://{address}")

    def handshake(self, headers: Mapping[str, str], body: bytes) -> bool:
        if SIGNATURE_HEADER in headers or TOPIC_HEADER in headers:
            return False
        return _PING_RE.match(body) is not None

    def shop_of(self, headers: Mapping[str, str], body: bytes) -> str:
        source = header(headers, SOURCE_HEADER)
        if not source:
            raise Rejection(400, f"missing {SOURCE_HEADER} header")
        shop = shop_id_of(source)
        if shop is None:
            raise Rejection(400, f"{SOURCE_HEADER} is not a store URL")
        return shop

    def verify(self, credentials: Credentials, headers: Mapping[str, str], body: bytes) -> bool:
        # WooCommerce signs the body exactly as sent, with the webhook's secret.
        return signed_by_any(credentials.secrets, body, header(headers, SIGNATURE_HEADER), "base64")

    def describe(self, shop_id: str, headers: Mapping[str, str], body: bytes) -> DeliveryInfo:
        topic = header(headers, TOPIC_HEADER)
        if not topic:
            raise Rejection(400, f"missing {TOPIC_HEADER} header")
        if not _TOPIC_RE.match(topic):
            raise Rejection(400, f"{TOPIC_HEADER} header has unexpected characters")
        sent_id = header(headers, DELIVERY_ID_HEADER)
        event_id = sent_id if _TOKEN_RE.match(sent_id) else None
        malformed = False
        payload: object = None
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            malformed = True
        resource_id, modified = _identity(payload)
        if resource_id is not None and modified is not None:
            # The body's digest joins the modification time: WooCommerce changes stock without
            # touching date_modified (woocommerce#40060), and such a change is no re-send.
            delivery_id = content_id(
                shop_id, topic, resource_id, modified, hashlib.sha256(body).hexdigest()
            )
        else:
            # Without a modification time (a `{"id": n}` delete, action.*) content cannot tell a
            # re-send from the same change made again (trash, restore, trash within the dedupe
            # window would lose the second trash), so the send's own id joins the content.
            # WooCommerce never retries, and these events are idempotent, so little is lost.
            digest = hashlib.sha256(body).hexdigest()
            parts = (
                (shop_id, topic, digest) if event_id is None else (shop_id, topic, digest, event_id)
            )
            delivery_id = content_id(*parts)
        resource = topic.partition(".")[0]
        entity: tuple[str, str] | None = None
        if resource_id is not None and resource in ("order", "product"):
            entity = (resource, resource_id)
        return DeliveryInfo(
            topic=topic,
            delivery_id=delivery_id,
            entity_key=delivery_key(NAME, shop_id, delivery_id, entity),
            event_id=event_id,
            malformed=malformed,
        )

    def normalize(self, envelope: Envelope) -> Normalized:
        topic = envelope.topic
        if topic in ORDER_TOPICS:
            return Normalized(events=(_order_event(envelope, ORDER_TOPICS[topic]),))
        if topic == ORDER_DELETED:
            return Normalized(events=(_order_deleted(envelope),))
        if topic in PRODUCT_TOPICS:
            return Normalized(events=_product_events(envelope, PRODUCT_TOPICS[topic]))
        if topic == PRODUCT_DELETED:
            return Normalized(events=(_product_deleted(envelope),))
        return Normalized(events=(), ignored=f"topic {topic} is not handled yet")


# -- orders ----------------------------------------------------------------------------------


def parse_order(shop_id: str, payload: dict[str, Any]) -> Order:
    """Read a WooCommerce REST v3 order; anything unusable raises InvalidPayload."""
    external_id = required_ident(payload.get("id"), "id")
    platform_status = text(payload.get("status"))
    if platform_status is None:
        raise InvalidPayload("status is missing")
    status = canonical_status(platform_status)
    # WooCommerce has no payment status apart from the order status; date_paid is set once the
    # order is paid (and kept after a refund, hence the refunded check first).
    paid_at = iso_time(payload.get("date_paid_gmt"), "date_paid_gmt") or iso_time(
        payload.get("date_paid"), "date_paid"
    )
    financial: str | None = None
    if platform_status == "refunded":
        financial = "refunded"
    elif paid_at is not None:
        financial = "paid"
    billing = obj(payload.get("billing"), "billing")
    lines = tuple(
        _line(i, item) for i, item in enumerate(items(payload.get("line_items"), "line_items"))
    )
    return Order(
        platform=NAME,
        shop_id=shop_id,
        external_id=external_id,
        status=status,
        order_number=text(payload.get("number")),
        financial_status=financial,
        currency=text(payload.get("currency")),
        total_amount=money(payload.get("total"), "total"),
        subtotal_amount=_subtotal(payload.get("line_items"), lines),
        total_tax=money(payload.get("total_tax"), "total_tax"),
        customer_email=text(billing.get("email")),
        # Only the *_gmt times: the others are the store's local time without an offset.
        placed_at=iso_time(payload.get("date_created_gmt"), "date_created_gmt"),
        source_updated_at=iso_time(payload.get("date_modified_gmt"), "date_modified_gmt"),
        lines=lines,
        platform_status=platform_status,
    )


def _line(index: int, item: object) -> OrderLine:
    name = f"line_items[{index}]"
    item = required_obj(item, name)
    quantity = count(item.get("quantity"), f"{name}.quantity")
    if quantity is None:
        raise InvalidPayload(f"{name}.quantity is missing")
    product_id = nonzero_ident(item.get("product_id"), f"{name}.product_id")
    variation_id = nonzero_ident(item.get("variation_id"), f"{name}.variation_id")
    return OrderLine(
        external_line_id=ident(item.get("id"), f"{name}.id") or str(index),
        quantity=quantity,
        variant_id=variation_id or product_id,
        product_id=product_id,
        sku=text(item.get("sku")),
        title=text(item.get("name")),
        unit_price=money(item.get("price"), f"{name}.price"),
    )


def _subtotal(raw_lines: object, lines: tuple[OrderLine, ...]) -> Decimal | None:
    """The sum of the lines' subtotals (before discounts, without tax); None unless every line
    states one."""
    if not lines or not isinstance(raw_lines, list):
        return None
    amounts = [
        money(item.get("subtotal"), f"line_items[{i}].subtotal") for i, item in enumerate(raw_lines)
    ]
    if any(amount is None for amount in amounts):
        return None
    return sum((amount for amount in amounts if amount is not None), Decimal(0))


def _order_event(envelope: Envelope, event_type: OrderEventType) -> OrderEvent:
    order = parse_order(envelope.shop_id, json_object(envelope.body))
    version = version_of(order.source_updated_at, f"delivery:{envelope.delivery_id}")
    return OrderEvent(
        event_id=order_event_id(order, event_type, version),
        type=event_type,
        occurred_at=order.source_updated_at or received_at(envelope.received_at_ms),
        order=order,
        source=source_of(NAME, envelope),
    )


def _order_deleted(envelope: Envelope) -> OrderStatusEvent:
    """`order.deleted` carries only `{"id": n}`. The order reads as cancelled; its version is
    the time we received the delete (there is no other), so it beats every earlier update."""
    payload = json_object(envelope.body)
    at = received_at(envelope.received_at_ms)
    change = OrderStatusChange(
        platform=NAME,
        shop_id=envelope.shop_id,
        external_id=required_ident(payload.get("id"), "id"),
        status="cancelled",
        platform_status="deleted",
        source_updated_at=at,
    )
    return OrderStatusEvent(
        event_id=status_event_id(change, at.isoformat()),
        type="order.status_changed",
        occurred_at=at,
        order=change,
        source=source_of(NAME, envelope),
    )


# -- products and stock ----------------------------------------------------------------------


def _product_events(envelope: Envelope, event_type: ProductEventType) -> tuple[AnyEvent, ...]:
    """A product snapshot, and its stock level when WooCommerce manages the product's stock.

    A variable product lists only its variations' ids: its variations arrive as products of
    their own (type `variation`, with `parent_id`), so its variant list is never complete.
    """
    payload = json_object(envelope.body)
    external_id = required_ident(payload.get("id"), "id")
    updated_at = iso_time(payload.get("date_modified_gmt"), "date_modified_gmt")
    sku = text(payload.get("sku"))
    variable = payload.get("type") == "variable"
    # A variation's manage_stock is "parent" when the parent product counts its stock.
    manage_stock = payload.get("manage_stock")
    stock_item = external_id
    if manage_stock == "parent":
        stock_item = nonzero_ident(payload.get("parent_id"), "parent_id") or external_id
    variants: tuple[ProductVariant, ...] = ()
    if not variable or manage_stock is True:
        price = money(payload.get("price"), "price")
        if price is None:
            price = money(payload.get("regular_price"), "regular_price")
        variants = (
            ProductVariant(
                external_variant_id=external_id,
                sku=sku,
                title=text(payload.get("name")),
                price=price,
                inventory_item_id=stock_item,
                source_updated_at=updated_at,
            ),
        )
    product = Product(
        platform=NAME,
        shop_id=envelope.shop_id,
        external_id=external_id,
        title=text(payload.get("name")),
        status=text(payload.get("status")),
        source_updated_at=updated_at,
        variants=variants,
        complete=not variable,
    )
    version = version_of(updated_at, f"delivery:{envelope.delivery_id}")
    occurred_at = updated_at or received_at(envelope.received_at_ms)
    source = source_of(NAME, envelope)
    events: list[AnyEvent] = [
        ProductEvent(
            event_id=product_event_id(product, event_type, version),
            type=event_type,
            occurred_at=occurred_at,
            product=product,
            source=source,
        )
    ]
    # Only a product that manages its own stock has a level; otherwise stock_quantity is unused.
    available = (
        count(payload.get("stock_quantity"), "stock_quantity", signed=True)
        if manage_stock is True
        else None
    )
    if available is not None:
        level = StockLevel(
            platform=NAME,
            shop_id=envelope.shop_id,
            inventory_item_id=external_id,
            location_id=DEFAULT_LOCATION,
            available=available,
            variant_id=external_id,
            sku=sku,
            source_updated_at=updated_at,
        )
        subject = f"{level.inventory_item_id}@{level.location_id}"
        events.append(
            InventoryLevelEvent(
                # The count joins the version: a stock change can keep date_modified
                # (woocommerce#40060); then the newest delivery wins at the same time.
                event_id=inventory_event_id(
                    NAME, envelope.shop_id, subject, LEVEL_UPDATED, f"{version}|{available}"
                ),
                type=LEVEL_UPDATED,
                occurred_at=occurred_at,
                level=level,
                source=source,
            )
        )
    return tuple(events)


def _product_deleted(envelope: Envelope) -> ProductEvent:
    """`product.deleted` carries only `{"id": n}`; versioned by the time we received it."""
    payload = json_object(envelope.body)
    at = received_at(envelope.received_at_ms)
    product = Product(
        platform=NAME,
        shop_id=envelope.shop_id,
        external_id=required_ident(payload.get("id"), "id"),
        deleted=True,
        complete=False,
        source_updated_at=at,
    )
    return ProductEvent(
        event_id=product_event_id(product, "product.deleted", at.isoformat()),
        type="product.deleted",
        occurred_at=at,
        product=product,
        source=source_of(NAME, envelope),
    )


# -- shared ----------------------------------------------------------------------------------


def _identity(payload: object) -> tuple[str | None, str | None]:
    """The resource id and raw date_modified_gmt of a payload, when it has usable ones."""
    if not isinstance(payload, dict):
        return None, None
    resource_id = safe_ident(payload.get("id"))
    if resource_id is None:
        return None, None
    modified = payload.get("date_modified_gmt")
    return resource_id, modified if isinstance(modified, str) and modified else None
