"""The traffic: the deliveries of each order, the stock set up before them, the POST schedule."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson

from bench.ledger.config import LedgerConfig

FIRST_ORDER_ID = 4_100_000_000
SHOP_TZ = timezone(timedelta(hours=-5))
EPOCH = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
STOCKED = range(1, 5)  # the variants (500 + k) every Shopify order's lines come from
WOO_STOCKED = range(1, 4)  # the WooCommerce products (9300 + k) its orders' lines come from
LOCATIONS = (7001, 7002)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One webhook delivery (the id the pipeline dedupes it by) and what the order should
    become: its source time, canonical status, platform status (None for Shopify) and lines."""

    delivery_id: str
    order_id: str
    topic: str
    updated_at: datetime
    status: str
    lines: frozenset[tuple[str, int]]
    body: bytes
    platform: str = "shopify"
    platform_status: str | None = None

    @property
    def order_key(self) -> tuple[str, str]:
        """The order across platforms: (platform, external id)."""
        return self.platform, self.order_id


def stock_webhooks(rng: random.Random, woocommerce: bool) -> list[Delivery]:
    """Products for the variants the orders buy and their stock at two locations; with
    `woocommerce`, WooCommerce products managing their own stock too."""
    posts = []
    for k in STOCKED:
        product = {
            "id": 50 + k,
            "title": f"Item {k}",
            "updated_at": EPOCH.isoformat(),
            "variants": [
                {
                    "id": 500 + k,
                    "sku": f"LEDGER-{k}",
                    "price": "10.00",
                    "inventory_item_id": 900 + k,
                    "updated_at": EPOCH.isoformat(),
                }
            ],
        }
        posts.append(("shopify", "products/create", product))
        for location in LOCATIONS:
            level = {
                "inventory_item_id": 900 + k,
                "location_id": location,
                "available": rng.randint(20, 400),
                "updated_at": EPOCH.isoformat(),
            }
            posts.append(("shopify", "inventory_levels/update", level))
    for k in WOO_STOCKED if woocommerce else ():
        product = {
            "id": 9300 + k,
            "name": f"Woo item {k}",
            "type": "simple",
            "sku": f"LEDGER-WOO-{k}",
            "price": "9.00",
            "manage_stock": True,
            "stock_quantity": rng.randint(20, 200),
            "date_modified_gmt": EPOCH.replace(tzinfo=None).isoformat(),
        }
        posts.append(("woocommerce", "product.created", product))
    return [
        Delivery(str(uuid.uuid4()), "", topic, EPOCH, "", frozenset(), orjson.dumps(body), platform)
        for platform, topic, body in posts
    ]


def _line_items(order_id: int, rng: random.Random, count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": order_id * 10 + k,
            "variant_id": 500 + k,
            "product_id": 50 + k,
            "sku": f"LEDGER-{k}",
            "title": f"Item {k}",
            "quantity": rng.randint(1, 5),
            "price": f"{rng.randint(100, 9_900) / 100:.2f}",
        }
        for k in range(1, count + 1)
    ]


def order_versions(order_id: int, count: int, rng: random.Random) -> list[Delivery]:
    """One order's life: create, maybe paid, updates, an ending; `count` versions."""
    if count >= 3 and rng.random() < 0.85:
        middle = ["orders/paid"] + ["orders/updated"] * (count - 3)
        endings = ["orders/fulfilled", "orders/partially_fulfilled", "orders/cancelled"]
        topics = ["orders/create", *middle, rng.choice([*endings, "orders/updated"])]
    else:
        topics = ["orders/create"] + ["orders/updated"] * (count - 2) + ["orders/cancelled"]
    topics = topics[:count]
    financial, fulfillment, cancelled_at = "pending", None, None
    lines = _line_items(order_id, rng, rng.randint(1, 3))
    at = EPOCH + timedelta(seconds=order_id % 100_000)
    versions = []
    for topic in topics:
        at += timedelta(minutes=rng.randint(1, 90), seconds=rng.randint(0, 59))
        if topic == "orders/paid":
            financial = "paid"
        elif topic == "orders/fulfilled":
            fulfillment = "fulfilled"
        elif topic == "orders/partially_fulfilled":
            fulfillment = "partial"
        elif topic == "orders/cancelled":
            cancelled_at = at.astimezone(SHOP_TZ).isoformat()
            financial = "refunded" if financial == "paid" else "voided"
        elif topic == "orders/updated":
            lines = _line_items(order_id, rng, rng.randint(1, 4))
        if cancelled_at:
            status = "cancelled"
        elif fulfillment == "fulfilled":
            status = "fulfilled"
        elif fulfillment == "partial":
            status = "partially_fulfilled"
        else:
            status = "paid" if financial == "paid" else "pending"
        total = sum(int(float(x["price"]) * 100) * x["quantity"] for x in lines)
        payload = {
            "id": order_id,
            "name": f"#L{order_id - FIRST_ORDER_ID}",
            "order_number": order_id - FIRST_ORDER_ID,
            "email": f"buyer{order_id % 997}@example.com",
            "financial_status": financial,
            "fulfillment_status": fulfillment,
            "cancelled_at": cancelled_at,
            "currency": "USD",
            "total_price": f"{total / 100:.2f}",
            "subtotal_price": f"{total / 100:.2f}",
            "total_tax": "0.00",
            "created_at": (EPOCH + timedelta(seconds=order_id % 100_000))
            .astimezone(SHOP_TZ)
            .isoformat(),
            "updated_at": at.astimezone(SHOP_TZ).isoformat(),
            "line_items": lines,
        }
        versions.append(
            Delivery(
                delivery_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                order_id=str(order_id),
                topic=topic,
                updated_at=at,
                status=status,
                lines=frozenset((str(x["id"]), x["quantity"]) for x in lines),
                body=orjson.dumps(payload),
            )
        )
    return versions


def plan_traffic(
    cfg: LedgerConfig, others: Sequence[Delivery] = ()
) -> tuple[list[Delivery], list[tuple[int, bool]]]:
    """N deliveries: Shopify orders (~5 versions each) fill what `others` (the other platforms'
    deliveries) leave of N; and the POST schedule of all: (delivery index, is a re-send)."""
    rng = random.Random(cfg.seed)
    n = cfg.deliveries
    shopify = n - len(others)
    dup_contents = round(shopify * cfg.dup_content_share) if shopify >= 20 else 0
    deliveries: list[Delivery] = []
    order_id = FIRST_ORDER_ID
    while len(deliveries) < shopify - dup_contents:
        count = min(rng.randint(3, 7), shopify - dup_contents - len(deliveries))
        deliveries += order_versions(order_id, count, rng)
        order_id += 1
    for _ in range(dup_contents):
        twin = rng.choice(deliveries)
        new_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        deliveries.append(replace(twin, delivery_id=new_id))
    deliveries += others
    order = list(range(len(deliveries)))
    rng.shuffle(order)
    keyed = [(float(pos), idx, False) for pos, idx in enumerate(order)]
    position = {idx: pos for pos, idx in enumerate(order)}
    for _ in range(round(n * cfg.resend_share)):
        idx = rng.randrange(len(deliveries))
        keyed.append((rng.uniform(position[idx] + 1, len(order) + 1), idx, True))
    keyed.sort()
    return deliveries, [(idx, resend) for _, idx, resend in keyed]


def count_reordered(deliveries: list[Delivery], schedule: list[tuple[int, bool]]) -> int:
    """Deliveries whose first POST comes after that of a newer version of the same order."""
    newest: dict[tuple[str, str], datetime] = {}
    reordered = 0
    for idx, resend in schedule:
        if resend:
            continue
        d = deliveries[idx]
        held = newest.get(d.order_key)
        if held is not None and held > d.updated_at:
            reordered += 1
        else:
            newest[d.order_key] = d.updated_at
    return reordered
