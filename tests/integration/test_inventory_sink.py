"""The sink's inventory side on the real Postgres: products and variants, stock by location,
fulfilments, thin status pushes and reservations, each written as the worker writes a batch."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from pipeline.outcomes import AuditRecord, Outcome, RawMessage
from pipeline.postgres import create_pool
from pipeline.settings import Settings
from pipeline.sink import PostgresSink
from schemas.catalogue import AnyEvent
from schemas.events import Source
from schemas.fulfillments import Fulfillment, FulfillmentEvent, FulfillmentLine
from schemas.inventory import InventoryLevelEvent, LevelEventType, StockLevel
from schemas.orders import (
    Order,
    OrderEvent,
    OrderLine,
    OrderStatus,
    OrderStatusChange,
    OrderStatusEvent,
    order_row_id,
)
from schemas.products import Product, ProductEvent, ProductVariant

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
_offsets = itertools.count()


@pytest.fixture
async def pool(base_settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(base_settings)
    yield p
    await p.close()


@pytest.fixture
def shop() -> str:
    """A shop of its own per test: the session database is shared."""
    return f"inv-{uuid.uuid4().hex[:8]}.myshopify.com"


def _source(shop: str, topic: str) -> Source:
    return Source("shopify", shop, topic, str(uuid.uuid4()), T0)


def _outcome(*events: AnyEvent) -> Outcome:
    first = events[0]
    message = RawMessage(b"{}", b"k", "webhooks.raw", 0, next(_offsets))
    audit = AuditRecord(
        platform=first.source.platform,
        shop_id=first.source.shop_id,
        topic=first.source.topic,
        delivery_id=first.source.delivery_id,
        source_event_id=None,
        entity_key=first.entity_key,
        received_at=T0,
        status="COMPLETED",
        error=None,
        source=message,
    )
    return Outcome(source=message, dedupe_key=first.source.delivery_id, audit=audit, events=events)


def product_event(shop: str, *, minutes: int = 0, deleted: bool = False) -> ProductEvent:
    variants = (
        ()
        if deleted
        else (
            ProductVariant("7001", sku="MUG-RED", price=None, inventory_item_id="901"),
            ProductVariant("7002", sku="MUG-BLUE", inventory_item_id="902"),
        )
    )
    product = Product(
        "shopify",
        shop,
        "500",
        title="Mug",
        deleted=deleted,
        source_updated_at=T0 + timedelta(minutes=minutes),
        variants=variants,
        complete=not deleted,
    )
    kind = "product.deleted" if deleted else "product.updated"
    return ProductEvent(uuid.uuid4(), kind, T0, product, _source(shop, "products/update"))


def level_event(
    shop: str,
    item: str,
    location: str,
    available: int | None,
    *,
    minutes: int = 0,
    kind: LevelEventType = "inventory.level_updated",
) -> InventoryLevelEvent:
    level = StockLevel(
        "shopify",
        shop,
        item,
        location,
        available,
        source_updated_at=T0 + timedelta(minutes=minutes),
    )
    return InventoryLevelEvent(
        uuid.uuid4(), kind, T0, level, _source(shop, "inventory_levels/update")
    )


def order_event(
    shop: str,
    order_id: str,
    status: OrderStatus,
    *,
    minutes: int,
    quantity: int = 3,
    variant: str = "7001",
) -> OrderEvent:
    order = Order(
        "shopify",
        shop,
        order_id,
        status,
        source_updated_at=T0 + timedelta(minutes=minutes),
        lines=(OrderLine("L1", quantity, variant_id=variant, sku=None),),
    )
    return OrderEvent(uuid.uuid4(), "order.updated", T0, order, _source(shop, "orders/updated"))


async def write(pool: asyncpg.Pool, *events: AnyEvent) -> dict[str, int]:
    result = await PostgresSink(pool).write([_outcome(e) for e in events])
    return result.statuses


async def levels(pool: asyncpg.Pool, shop: str) -> dict[tuple[str, str], Any]:
    rows = await pool.fetch(
        "SELECT l.*, w.code FROM inventory_levels l JOIN warehouses w ON w.id = l.warehouse_id "
        "WHERE l.shop_id = $1",
        shop,
    )
    return {(r["inventory_item_id"], r["location_id"]): r for r in rows}


async def reservations(pool: asyncpg.Pool, shop: str, order_id: str) -> list[Any]:
    return list(
        await pool.fetch(
            "SELECT * FROM reservations WHERE order_id = $1 ORDER BY external_line_id",
            order_row_id("shopify", shop, order_id),
        )
    )


async def test_stock_by_location_with_mapped_and_unmapped_locations(
    pool: asyncpg.Pool, shop: str
) -> None:
    warehouse = f"WH-{uuid.uuid4().hex[:6]}"
    wid = await pool.fetchval("INSERT INTO warehouses (code) VALUES ($1) RETURNING id", warehouse)
    await pool.execute(
        "INSERT INTO channel_locations (platform, shop_id, location_id, warehouse_id, mapped) "
        "VALUES ('shopify', $1, 'A', $2, true)",
        shop,
        wid,
    )
    # Stock arrives before its product: kept, and its variant is filled in later.
    await write(pool, level_event(shop, "901", "A", 5), level_event(shop, "901", "B", 10))
    before = await levels(pool, shop)
    assert before[("901", "A")]["code"] == warehouse
    assert before[("901", "B")]["code"] == f"shopify:{shop}:B"
    assert before[("901", "A")]["variant_id"] is None
    unmapped = await pool.fetch(
        "SELECT location_id FROM channel_locations WHERE shop_id = $1 AND NOT mapped", shop
    )
    assert [r["location_id"] for r in unmapped] == ["B"]

    await write(pool, product_event(shop))
    after = await levels(pool, shop)
    assert {after[k]["sku"] for k in after} == {"MUG-RED"}
    assert after[("901", "A")]["variant_id"] == after[("901", "B")]["variant_id"] is not None
    assert (after[("901", "A")]["available"], after[("901", "B")]["available"]) == (5, 10)


async def test_stale_levels_change_nothing_and_a_disconnect_keeps_the_count(
    pool: asyncpg.Pool, shop: str
) -> None:
    await write(pool, level_event(shop, "901", "A", 5, minutes=10))
    assert await write(pool, level_event(shop, "901", "A", 99, minutes=5)) == {"STALE": 1}
    assert (await levels(pool, shop))[("901", "A")]["available"] == 5
    gone = level_event(shop, "901", "A", None, minutes=11, kind="inventory.level_disconnected")
    await write(pool, gone)
    row = (await levels(pool, shop))[("901", "A")]
    assert (row["available"], row["connected"]) == (5, False)


async def test_product_delete_marks_it_and_retires_its_variants(
    pool: asyncpg.Pool, shop: str
) -> None:
    await write(pool, product_event(shop))
    await write(pool, product_event(shop, minutes=5, deleted=True))
    product = await pool.fetchrow("SELECT * FROM products WHERE shop_id = $1", shop)
    assert product["deleted_at"] is not None
    assert product["title"] == "Mug"  # a delete carries no title: the stored one is kept
    live = await pool.fetchval(
        "SELECT count(*) FROM product_variants WHERE shop_id = $1 AND deleted_at IS NULL", shop
    )
    assert live == 0


async def _stock(pool: asyncpg.Pool, shop: str) -> None:
    await write(
        pool,
        product_event(shop),
        level_event(shop, "901", "A", 5),
        level_event(shop, "901", "B", 10),
    )


async def _reserved(pool: asyncpg.Pool, shop: str) -> dict[str, int]:
    return {loc: row["reserved"] for (_, loc), row in (await levels(pool, shop)).items()}


async def test_paid_then_cancelled_reserves_then_releases(pool: asyncpg.Pool, shop: str) -> None:
    await _stock(pool, shop)
    paid = order_event(shop, "1", "paid", minutes=1)
    await write(pool, paid)
    (res,) = await reservations(pool, shop, "1")
    assert (res["quantity"], res["backordered"], res["released_at"]) == (3, 0, None)
    assert await _reserved(pool, shop) == {"A": 0, "B": 3}  # the level with most free stock

    await write(pool, paid)  # a replay changes nothing
    assert await _reserved(pool, shop) == {"A": 0, "B": 3}
    assert len(await reservations(pool, shop, "1")) == 1

    await write(pool, order_event(shop, "1", "cancelled", minutes=2))
    (res,) = await reservations(pool, shop, "1")
    assert res["released_at"] is not None
    assert res["consumed_at"] is None
    assert await _reserved(pool, shop) == {"A": 0, "B": 0}

    await write(pool, paid)  # the stale paid event cannot reserve again
    assert await _reserved(pool, shop) == {"A": 0, "B": 0}


async def test_paid_then_fulfilled_consumes(pool: asyncpg.Pool, shop: str) -> None:
    await _stock(pool, shop)
    await write(pool, order_event(shop, "2", "paid", minutes=1, quantity=4))
    assert await _reserved(pool, shop) == {"A": 0, "B": 4}
    await write(pool, order_event(shop, "2", "fulfilled", minutes=2, quantity=4))
    (res,) = await reservations(pool, shop, "2")
    assert res["consumed_at"] is not None
    assert res["released_at"] is None
    assert await _reserved(pool, shop) == {"A": 0, "B": 0}


async def test_reserved_equals_the_sum_of_active_reservations(
    pool: asyncpg.Pool, shop: str
) -> None:
    await _stock(pool, shop)
    await write(
        pool,
        order_event(shop, "3", "paid", minutes=1, quantity=6),
        order_event(shop, "4", "paid", minutes=1, quantity=6),  # only 4 left at B by then
        order_event(shop, "5", "paid", minutes=1, quantity=2, variant="9999"),  # unknown
    )
    three = await reservations(pool, shop, "3")
    four = await reservations(pool, shop, "4")
    assert sorted([three[0]["backordered"], four[0]["backordered"]]) == [0, 2]
    (unknown,) = await reservations(pool, shop, "5")
    assert (unknown["inventory_level_id"], unknown["backordered"]) == (None, 2)
    sums = await pool.fetch(
        "SELECT l.id, l.reserved, COALESCE(sum(r.quantity) FILTER (WHERE r.released_at IS NULL "
        "AND r.consumed_at IS NULL), 0) AS active FROM inventory_levels l "
        "LEFT JOIN reservations r ON r.inventory_level_id = l.id WHERE l.shop_id = $1 "
        "GROUP BY l.id, l.reserved",
        shop,
    )
    assert all(r["reserved"] == r["active"] for r in sums)
    assert sum(r["reserved"] for r in sums) == 12


async def test_thin_status_push_creates_a_minimal_order_and_stale_ones_change_nothing(
    pool: asyncpg.Pool, shop: str
) -> None:
    def push(status: OrderStatus, word: str, minutes: int) -> OrderStatusEvent:
        change = OrderStatusChange(
            "shopify", shop, "77", status, word, T0 + timedelta(minutes=minutes)
        )
        return OrderStatusEvent(
            uuid.uuid4(), "order.status_changed", T0, change, _source(shop, "order_status")
        )

    await write(pool, push("paid", "READY_TO_SHIP", 5))
    assert await write(pool, push("pending", "UNPAID", 1)) == {"STALE": 1}
    row = await pool.fetchrow("SELECT * FROM orders WHERE shop_id = $1", shop)
    assert (row["status"], row["platform_status"], row["total_amount"]) == (
        "paid",
        "READY_TO_SHIP",
        None,
    )


async def test_fulfilments_drive_the_order_fulfillment_status(
    pool: asyncpg.Pool, shop: str
) -> None:
    order = order_event(shop, "8", "paid", minutes=1, quantity=3)
    await write(pool, order)

    def shipped(fid: str, quantity: int, minutes: int) -> FulfillmentEvent:
        f = Fulfillment(
            "shopify",
            shop,
            fid,
            "8",
            status="in_transit",
            carrier="UPS",
            tracking_number=f"1Z{fid}",
            lines=(FulfillmentLine("L1", quantity),),
            source_updated_at=T0 + timedelta(minutes=minutes),
        )
        return FulfillmentEvent(
            uuid.uuid4(), "fulfillment.created", T0, f, _source(shop, "fulfillments/create")
        )

    async def status() -> str | None:
        value = await pool.fetchval(
            "SELECT fulfillment_status FROM orders WHERE shop_id = $1", shop
        )
        return None if value is None else str(value)

    await write(pool, shipped("f1", 1, 2))
    assert await status() == "partial"
    await write(pool, shipped("f2", 2, 3))
    assert await status() == "fulfilled"
    row = await pool.fetchrow(
        "SELECT * FROM fulfillments WHERE external_id = 'f2' AND shop_id = $1", shop
    )
    assert (row["carrier"], row["tracking_number"]) == ("UPS", "1Zf2")


async def _active(pool: asyncpg.Pool, shop: str, order_id: str) -> list[tuple[str, int]]:
    return [
        (r["external_line_id"], r["quantity"])
        for r in await reservations(pool, shop, order_id)
        if r["released_at"] is None and r["consumed_at"] is None
    ]


async def test_a_paid_order_whose_line_changes_is_reserved_anew(
    pool: asyncpg.Pool, shop: str
) -> None:
    await _stock(pool, shop)
    await write(pool, order_event(shop, "6", "paid", minutes=1, quantity=3))
    await write(pool, order_event(shop, "6", "paid", minutes=2, quantity=5))
    assert await _active(pool, shop, "6") == [("L1", 5)]
    assert len(await reservations(pool, shop, "6")) == 2  # the first one, released, is kept
    assert await _reserved(pool, shop) == {"A": 0, "B": 5}


async def test_an_order_paid_again_after_a_cancellation_reserves_again(
    pool: asyncpg.Pool, shop: str
) -> None:
    await _stock(pool, shop)
    await write(pool, order_event(shop, "7", "paid", minutes=1, quantity=2))
    await write(pool, order_event(shop, "7", "cancelled", minutes=2, quantity=2))
    assert await _active(pool, shop, "7") == []
    await write(pool, order_event(shop, "7", "paid", minutes=3, quantity=2))
    assert await _active(pool, shop, "7") == [("L1", 2)]
    assert await _reserved(pool, shop) == {"A": 0, "B": 2}
