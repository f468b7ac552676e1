"""The other four platforms' traffic: WooCommerce orders and Shopee, Lazada and TikTok Shop
status pushes. Their shops and apps, each order's versions (with the id the pipeline records for
each delivery and the state it must leave), and the requests signed as each platform signs."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import orjson

from bench.ledger.config import SECRET, SHOP, LedgerConfig
from bench.ledger.traffic import EPOCH, WOO_STOCKED, Delivery
from pipeline.platforms import lazada, shopee, shopify, tiktok, woocommerce
from pipeline.platforms.registry import adapter_for

PLATFORMS = ("woocommerce", "shopee", "lazada", "tiktok")
CALLBACK_URL = "https://hooks.ledger.example/webhooks/shopee"  # as registered; Shopee signs it


@dataclass(frozen=True, slots=True)
class Shop:
    """The ledger's shop on one platform, and its secret (or its app's key and secret)."""

    shop_id: str
    secret: str
    currency: str
    app_key: str = ""  # set for the app-signed platforms (Shopee, Lazada, TikTok Shop)


SHOPS = {
    "woocommerce": Shop("ledger-woo.example.com", "ledger-woo-secret-0123456789", "EUR"),
    "shopee": Shop("770001", "ledger-shopee-partner-key-0123", "SGD", "2001887"),
    "lazada": Shop("880001", "ledger-lazada-app-secret-0123", "VND", "112233"),
    "tiktok": Shop("7494049642640001", "ledger-tiktok-app-secret-0123", "USD", "6ledgerkey"),
}


def _mapping(text: str) -> dict[str, str]:
    """`"a b: x; c: y"` as {a: x, b: x, c: y}."""
    groups = (group.split(":") for group in text.split(";"))
    return {word: canonical.strip() for words, canonical in groups for word in words.split()}


# README's "Status mapping" for the statuses the traffic uses, written out rather than read from
# the adapters, so that a wrong mapping is caught. WooCommerce's `awaiting-payment` stands for a
# plugin's status: unknown ones read as pending.
CANONICAL = {
    "woocommerce": _mapping(
        "pending on-hold checkout-draft awaiting-payment: pending; processing: paid;"
        " completed: completed; cancelled failed trash: cancelled; refunded: refunded"
    ),
    "shopee": _mapping(
        "UNPAID: pending; READY_TO_SHIP PROCESSED INVOICE_PENDING IN_CANCEL: paid;"
        " SHIPPED TO_CONFIRM_RECEIVE: fulfilled; COMPLETED: completed; CANCELLED: cancelled;"
        " TO_RETURN: returned"
    ),
    "lazada": _mapping(
        "unpaid: pending; pending packed repacked ready_to_ship ready_to_ship_pending: paid;"
        " shipped failed_delivery: fulfilled; delivered confirmed: completed;"
        " canceled lost_by_3pl: cancelled; returned shipped_back: returned"
    ),
    "tiktok": _mapping(
        "UNPAID ON_HOLD: pending; AWAITING_SHIPMENT AWAITING_COLLECTION: paid;"
        " PARTIALLY_SHIPPING: partially_fulfilled; IN_TRANSIT: fulfilled;"
        " DELIVERED COMPLETED: completed; CANCEL: cancelled"
    ),
}

# Each platform's order lives (a Lazada line's, for Lazada), split by "|". Pending statuses
# come only before paid ones: a paid order that goes back to pending keeps its reservations
# (README does not say what it should do), which the reservation check would count as wrong.
LIVES = {
    platform: tuple(life.split() for life in text.split("|"))
    for platform, text in {
        "woocommerce": "pending processing processing completed | on-hold processing completed"
        " | checkout-draft pending processing refunded | pending on-hold failed cancelled trash"
        " | awaiting-payment processing processing cancelled",
        "shopee": "UNPAID READY_TO_SHIP PROCESSED SHIPPED TO_CONFIRM_RECEIVE COMPLETED"
        " | UNPAID INVOICE_PENDING READY_TO_SHIP IN_CANCEL CANCELLED | UNPAID CANCELLED"
        " | READY_TO_SHIP PROCESSED SHIPPED TO_RETURN",
        "lazada": "unpaid pending packed ready_to_ship shipped delivered confirmed"
        " | pending packed repacked ready_to_ship_pending shipped failed_delivery shipped_back"
        " | unpaid canceled | pending ready_to_ship shipped lost_by_3pl"
        " | pending packed shipped returned",
        "tiktok": "UNPAID ON_HOLD AWAITING_SHIPMENT AWAITING_COLLECTION IN_TRANSIT DELIVERED"
        " COMPLETED | UNPAID CANCEL | AWAITING_SHIPMENT PARTIALLY_SHIPPING IN_TRANSIT DELIVERED"
        " | UNPAID AWAITING_SHIPMENT CANCEL",
    }.items()
}


def signed_headers(platform: str, topic: str, body: bytes, webhook_id: str) -> dict[str, str]:
    """The headers `platform` sends with `body` for the ledger's shop, signed as it signs."""
    if platform == "shopify":
        return shopify.delivery_headers(SECRET, body, shop=SHOP, topic=topic, webhook_id=webhook_id)
    shop = SHOPS[platform]
    if platform == "woocommerce":
        # WooCommerce puts a new delivery id on every send; the pipeline dedupes by content.
        source = f"https://{shop.shop_id}/"
        return woocommerce.delivery_headers(
            shop.secret, body, source=source, topic=topic, delivery_id=uuid.uuid4().hex
        )
    if platform == "shopee":
        return shopee.delivery_headers(shop.secret, body, callback_url=CALLBACK_URL)
    if platform == "lazada":
        return lazada.delivery_headers(shop.secret, shop.app_key, body)
    return tiktok.delivery_headers(shop.secret, body, app_key=shop.app_key)


@dataclass(slots=True)
class _Order:
    """One order being planned: its platform and id, and what WooCommerce carries along."""

    platform: str
    order_id: str
    rng: random.Random
    created: datetime
    versions: int = 0
    items: list[dict[str, Any]] = field(default_factory=list)
    paid_at: datetime | None = None

    def delivery(self, topic: str, payload: dict[str, Any], status: str, at: datetime) -> Delivery:
        """The delivery of `payload`, identified as its platform's adapter identifies it."""
        self.versions += 1
        lines = frozenset((str(item["id"]), item["quantity"]) for item in self.items)
        canonical = CANONICAL[self.platform][status]
        body = orjson.dumps(payload)
        d = Delivery("", self.order_id, topic, at, canonical, lines, body, self.platform, status)
        return _identified(d)


def _identified(d: Delivery) -> Delivery:
    """`d` with the delivery id its adapter records (`external_event_id`) and its topic."""
    adapter = adapter_for(d.platform)
    assert adapter is not None
    headers = signed_headers(d.platform, d.topic, d.body, d.delivery_id)
    info = adapter.describe(SHOPS[d.platform].shop_id, headers, d.body)
    return replace(d, delivery_id=info.delivery_id, topic=info.topic)


def _stamp(at: datetime) -> str:
    """WooCommerce's `*_gmt` times: UTC without an offset."""
    return at.strftime("%Y-%m-%dT%H:%M:%S")


def _woo_item(order_id: str, k: int, quantity: int) -> dict[str, Any]:
    """A WooCommerce order line of the stocked product 9300 + k, at 9.00 a unit."""
    return {
        "id": int(order_id) * 10 + k,
        "name": f"Woo item {k}",
        "product_id": 9300 + k,
        "variation_id": 0,
        "quantity": quantity,
        "subtotal": f"{quantity * 9:.2f}",
        "sku": f"LEDGER-WOO-{k}",
        "price": 9,
    }


def _woo(order: _Order, line: int, status: str, at: datetime) -> Delivery:
    """A WooCommerce order snapshot (REST v3): its lines change now and then, and it keeps
    the time it was first paid."""
    rng = order.rng
    if not order.items or rng.random() < 0.3:
        count = rng.randint(1, len(WOO_STOCKED))
        order.items = [_woo_item(order.order_id, k, rng.randint(1, 4)) for k in range(1, count + 1)]
    if CANONICAL["woocommerce"][status] == "paid" and order.paid_at is None:
        order.paid_at = at
    payload = {
        "id": int(order.order_id),
        "parent_id": 0,
        "number": order.order_id,
        "status": status,
        "currency": SHOPS["woocommerce"].currency,
        "date_created_gmt": _stamp(order.created),
        "date_modified_gmt": _stamp(at),
        "date_paid_gmt": _stamp(order.paid_at) if order.paid_at else None,
        "total": f"{sum(9 * item['quantity'] for item in order.items):.2f}",
        "total_tax": "0.00",
        "billing": {"email": f"buyer{int(order.order_id) % 997}@example.com"},
        "line_items": order.items,
    }
    topic = "order.updated" if order.versions else "order.created"
    return order.delivery(topic, payload, status, at)


def _shopee(order: _Order, line: int, status: str, at: datetime) -> Delivery:
    """A Shopee order status push (code 3), mostly with a msg_id."""
    stamp = int(at.timestamp())
    payload: dict[str, Any] = {
        "data": {
            "ordersn": order.order_id,
            "status": status,
            "completed_scenario": "",
            "update_time": stamp,
        },
        "shop_id": int(SHOPS["shopee"].shop_id),
        "code": shopee.ORDER_STATUS,
        "timestamp": stamp + order.rng.randint(1, 30),
    }
    if order.rng.random() < 0.8:  # without a msg_id the pipeline keys the push by content
        payload["msg_id"] = uuid.UUID(int=order.rng.getrandbits(128)).hex
    return order.delivery("", payload, status, at)


def _lazada(order: _Order, line: int, status: str, at: datetime) -> Delivery:
    """A Lazada trade order push (type 0) about one line of the order."""
    stamp = int(at.timestamp())
    data = {
        "order_status": status,
        "trade_order_id": order.order_id,
        "trade_order_line_id": f"{order.order_id}{line + 1:02d}",
        "status_update_time": stamp,
    }
    payload = {
        "seller_id": SHOPS["lazada"].shop_id,
        "message_type": lazada.TRADE_ORDER,
        "data": data,
        "timestamp": (stamp + order.rng.randint(1, 60)) * 1000,
        "site": "lazada_vn",
    }
    return order.delivery("", payload, status, at)


def _tiktok(order: _Order, line: int, status: str, at: datetime) -> Delivery:
    """A TikTok Shop order status change (type 1) with its own notification id."""
    stamp = int(at.timestamp())
    payload = {
        "type": tiktok.ORDER_STATUS_CHANGE,
        "tts_notification_id": str(order.rng.randrange(10**18, 10**19)),
        "shop_id": SHOPS["tiktok"].shop_id,
        "timestamp": stamp + order.rng.randint(1, 30),
        "data": {
            "order_id": order.order_id,
            "order_status": status,
            "is_on_hold_order": status == "ON_HOLD",
            "update_time": stamp,
        },
    }
    return order.delivery("", payload, status, at)


Build = Callable[[_Order, int, str, datetime], Delivery]
BUILDERS: dict[str, tuple[Callable[[int], str], Build]] = {
    "woocommerce": (lambda n: str(81_000 + n), _woo),
    "shopee": (lambda n: f"261120{n:04d}LDGQ", _shopee),
    "lazada": (lambda n: str(560_000_000_000 + n), _lazada),
    "tiktok": (lambda n: str(576_486_316_948_000_000 + n), _tiktok),
}
TWINNED = {"shopee": "msg_id", "tiktok": "tts_notification_id"}  # their own delivery ids


def plan_marketplaces(cfg: LedgerConfig) -> list[Delivery]:
    """`marketplace_share` of N as the four platforms' deliveries, split evenly (none when
    `marketplaces` is off)."""
    if not cfg.marketplaces:
        return []
    rng = random.Random(cfg.seed + 3)
    total = round(cfg.deliveries * cfg.marketplace_share)
    planned: list[Delivery] = []
    for i, platform in enumerate(PLATFORMS):
        count = total // len(PLATFORMS) + (i < total % len(PLATFORMS))
        planned += _platform_traffic(platform, count, rng, cfg.dup_content_share)
    return planned


def _platform_traffic(
    platform: str, count: int, rng: random.Random, dup_share: float
) -> list[Delivery]:
    """`count` deliveries of one platform: orders' versions, and for Shopee and TikTok Shop
    a few of them again under a new message id (a platform's duplicate, not a re-send)."""
    name = TWINNED.get(platform)
    twins = max(1, round(count * dup_share)) if name and count >= 10 else 0
    planned: list[Delivery] = []
    serial = 0
    while len(planned) < count - twins:
        planned += _order_versions(platform, serial, rng)[: count - twins - len(planned)]
        serial += 1
    originals = [d for d in planned if name and name in orjson.loads(d.body)]
    for twin in rng.sample(originals, min(twins, len(originals))):
        payload = orjson.loads(twin.body)
        payload[name] = uuid.UUID(int=rng.getrandbits(128)).hex
        planned.append(_identified(replace(twin, body=orjson.dumps(payload))))
    return planned


def _order_versions(platform: str, serial: int, rng: random.Random) -> list[Delivery]:
    """One order's deliveries in the order its platform made them, each newer than the last
    (whole seconds apart, across lines too: at one time the order's newest would be a toss)."""
    order_id, build = BUILDERS[platform]
    created = EPOCH + timedelta(seconds=serial * 61)
    order = _Order(platform, order_id(serial), rng, created)
    lines = rng.randint(1, 3) if platform == "lazada" else 1  # Lazada pushes per order line
    lives = [list(rng.choice(LIVES[platform])) for _ in range(lines)]
    at = created
    versions: list[Delivery] = []
    while any(lives) and len(versions) < 7:
        line = rng.choice([i for i, life in enumerate(lives) if life])
        at += timedelta(minutes=rng.randint(1, 90), seconds=rng.randint(1, 59))
        versions.append(build(order, line, lives[line].pop(0), at))
    return versions
