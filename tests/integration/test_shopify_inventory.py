"""Shopify's inventory side through the real ingress, Kafka and worker: a product, its stock at
two locations (one mapped to a warehouse, one not), then orders that reserve, release and
consume that stock, and a fulfilment that drives the order's fulfillment_status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from pipeline.resources import Resources
from tests.integration.conftest import SHOP, Sender, WorkerProcess, eventually, order_payload

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shopify"
PRODUCT_ID = 880_000_001
VARIANT = 880_000_011
ITEM = 880_000_021


def _product() -> dict[str, Any]:
    product: dict[str, Any] = orjson.loads((FIXTURES / "product_create.json").read_bytes())
    product["id"] = PRODUCT_ID
    product["variants"] = product["variants"][:1]
    product["variants"][0].update(id=VARIANT, inventory_item_id=ITEM, sku="INV-MUG")
    return product


def _level(location: int, available: int, minute: int) -> dict[str, Any]:
    return {
        "inventory_item_id": ITEM,
        "location_id": location,
        "available": available,
        "updated_at": f"2026-11-20T10:{minute:02d}:00Z",
    }


def _order(order_id: int, minute: int, *, quantity: int, **fields: Any) -> dict[str, Any]:
    line = {
        "id": order_id * 10,
        "variant_id": VARIANT,
        "product_id": PRODUCT_ID,
        "sku": "INV-MUG",
        "title": "Mug",
        "quantity": quantity,
        "price": "10.00",
    }
    return order_payload(
        order_id, updated_at=f"2026-11-20T11:{minute:02d}:00Z", line_items=[line], **fields
    )


async def test_stock_reservations_and_fulfilments_follow_shopify_webhooks(
    send: Sender, worker: WorkerProcess, resources: Resources
) -> None:
    pool = resources.pool
    warehouse = await pool.fetchval(
        "INSERT INTO warehouses (code) VALUES ('IT-EAST') ON CONFLICT (code) DO UPDATE "
        "SET code = EXCLUDED.code RETURNING id"
    )
    await pool.execute(
        "INSERT INTO channel_locations (platform, shop_id, location_id, warehouse_id, mapped) "
        "VALUES ('shopify', $1, '101', $2, true) ON CONFLICT DO NOTHING",
        SHOP,
        warehouse,
    )
    assert await send("products/create", _product()) == 200
    assert await send("inventory_levels/update", _level(101, 2, 1)) == 200
    assert await send("inventory_levels/update", _level(202, 10, 1)) == 200
    assert await send("inventory_levels/update", _level(202, 99, 0)) == 200  # older: stale

    async def levels() -> dict[str, Any]:
        rows = await pool.fetch(
            "SELECT l.*, w.code FROM inventory_levels l JOIN warehouses w ON w.id = l.warehouse_id "
            "WHERE l.shop_id = $1 AND l.inventory_item_id = $2",
            SHOP,
            str(ITEM),
        )
        return {r["location_id"]: r for r in rows}

    async def stocked() -> bool:
        found = await levels()
        return len(found) == 2 and all(r["variant_id"] is not None for r in found.values())

    await eventually(stocked, what="two stock levels with their variant", worker=worker)
    found = await levels()
    assert (found["101"]["code"], found["101"]["available"]) == ("IT-EAST", 2)
    assert (found["202"]["code"], found["202"]["available"]) == (f"shopify:{SHOP}:202", 10)
    assert found["202"]["sku"] == "INV-MUG"

    async def reserved() -> dict[str, int]:
        return {loc: r["reserved"] for loc, r in (await levels()).items()}

    # Paid, then cancelled: reserved at the location with the most free stock, then released.
    assert await send("orders/paid", _order(881, 1, quantity=3)) == 200
    await eventually(lambda: _equals(reserved, {"101": 0, "202": 3}), what="reservation")
    cancelled = _order(881, 2, quantity=3, cancelled_at="2026-11-20T11:02:00Z")
    assert await send("orders/cancelled", cancelled) == 200
    await eventually(lambda: _equals(reserved, {"101": 0, "202": 0}), what="release")

    # Paid, then fulfilled: the fulfilment ships both units and the reservation is consumed.
    assert await send("orders/paid", _order(882, 1, quantity=2)) == 200
    await eventually(lambda: _equals(reserved, {"101": 0, "202": 2}), what="second reservation")
    fulfillment = {
        "id": 8820,
        "order_id": 882,
        "status": "success",
        "tracking_company": "DHL",
        "tracking_number": "JD0001",
        "updated_at": "2026-11-20T11:03:00Z",
        "line_items": [{"id": 8820, "quantity": 2}],
    }
    assert await send("fulfillments/create", fulfillment) == 200
    fulfilled = _order(882, 4, quantity=2, fulfillment_status="fulfilled")
    assert await send("orders/fulfilled", fulfilled) == 200
    await eventually(lambda: _equals(reserved, {"101": 0, "202": 0}), what="consumption")
    states = await pool.fetch(
        "SELECT o.external_id, r.released_at IS NOT NULL AS released, "
        "r.consumed_at IS NOT NULL AS consumed FROM reservations r JOIN orders o ON o.id = "
        "r.order_id WHERE o.shop_id = $1 AND o.external_id IN ('881', '882') ORDER BY 1",
        SHOP,
    )
    assert [tuple(r) for r in states] == [("881", True, False), ("882", False, True)]
    shipped = await pool.fetchrow(
        "SELECT f.carrier, f.tracking_number, o.fulfillment_status FROM fulfillments f "
        "JOIN orders o ON o.id = f.order_id WHERE f.shop_id = $1 AND f.external_id = '8820'",
        SHOP,
    )
    assert tuple(shipped) == ("DHL", "JD0001", "fulfilled")
    stale = await pool.fetchval(
        "SELECT count(*) FROM webhook_events WHERE shop_id = $1 AND status = 'STALE' "
        "AND topic = 'inventory_levels/update'",
        SHOP,
    )
    assert stale == 1


async def _equals(read: Any, expected: dict[str, int]) -> bool:
    return bool(await read() == expected)
