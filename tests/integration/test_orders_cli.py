"""`pipeline orders show` on orders made by the real ingress, Kafka and worker, run as a
subprocess the way an operator runs it."""

from __future__ import annotations

import json
import uuid
from typing import Any

from pipeline.resources import Resources
from pipeline.settings import Settings
from tests.integration.conftest import (
    SHOP,
    Sender,
    WorkerProcess,
    eventually,
    order_payload,
    run_cli,
)


def _show(settings: Settings, order_id: int | str, *extra: str) -> Any:
    return run_cli(
        settings,
        *("orders", "show", "--platform", "shopify", "--shop", SHOP, "--id", str(order_id)),
        *extra,
    )


async def _deliveries(resources: Resources, order_id: int) -> list[str]:
    rows = await resources.pool.fetch(
        "SELECT status FROM webhook_events WHERE shop_id = $1 AND entity_key = $2",
        SHOP,
        f"shopify:{SHOP}:order:{order_id}",
    )
    return sorted(r["status"] for r in rows)


async def test_show_tells_the_whole_story_of_an_order(
    send: Sender, worker: WorkerProcess, resources: Resources, settings: Settings
) -> None:
    order_id = 7_000_000 + uuid.uuid4().int % 1_000_000
    created = order_payload(order_id, updated_at="2026-11-20T10:00:00Z", financial_status="pending")
    paid = order_payload(order_id, updated_at="2026-11-20T10:05:00Z")
    older = order_payload(order_id, updated_at="2026-11-20T09:00:00Z", total_price="1.00")
    broken = order_payload(order_id, updated_at="2026-11-20T10:20:00Z", line_items="not a list")
    fulfillment = {
        "id": order_id * 100,
        "order_id": order_id,
        "status": "success",
        "tracking_company": "DHL",
        "tracking_number": "JD0001",
        "tracking_url": "https://track.example.com/JD0001?zip=10115",
        "updated_at": "2026-11-20T10:10:00Z",
        "line_items": [{"id": order_id * 10 + 1, "quantity": 2}],
    }
    deliveries = [
        ("orders/create", created, "w-create"),
        ("orders/paid", paid, None),
        ("fulfillments/create", fulfillment, None),
        ("orders/updated", older, None),
        ("orders/updated", broken, None),
    ]
    for count, (topic, payload, webhook_id) in enumerate(deliveries, start=1):
        # One at a time: in one batch the newest snapshot would make the older ones STALE.
        assert await send(topic, payload, webhook_id=webhook_id) == 200

        async def recorded(count: int = count) -> bool:
            return len(await _deliveries(resources, order_id)) == count

        await eventually(recorded, what=f"{count} deliveries recorded", worker=worker)
    assert await _deliveries(resources, order_id) == [
        "COMPLETED",
        "COMPLETED",
        "COMPLETED",
        "DEAD_LETTERED",
        "STALE",
    ]

    shown = _show(settings, order_id)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert text.startswith(f"shopify order {order_id} in shop {SHOP}\n")
    assert "  status:          paid\n" in text
    assert "  total:           25.50 USD (subtotal 23.00, tax 2.50)\n" in text
    assert "  customer email:  stored, not shown\n" in text
    assert "buyer@example.com" not in text
    assert "zip=10115" not in text
    lines = text.splitlines()
    line_rows = lines[lines.index("lines:") + 2 : lines.index("lines:") + 4]
    assert [r.split() for r in line_rows] == [
        [str(order_id * 10 + 1), "SKU-1", "2", "10.00", "Mug"],
        [str(order_id * 10 + 2), "SKU-2", "1", "3.00", "Tea"],
    ]
    reservations = lines[lines.index("reservations:") + 2 : lines.index("reservations:") + 4]
    # Paid with variants nobody stocks: each line held against nothing, wholly backordered.
    assert [r.split()[:6] for r in reservations] == [
        [str(order_id * 10 + 1), "SKU-1", "2", "2", "-", "active"],
        [str(order_id * 10 + 2), "SKU-2", "1", "1", "-", "active"],
    ]
    fulfilments = lines[lines.index("fulfilments:") + 2]
    assert fulfilments.split()[:6] == [
        str(order_id * 100),
        "in_transit",
        "success",
        "DHL",
        "JD0001",
        str(order_id * 10 + 1),
    ]

    trail = lines[next(i for i, ln in enumerate(lines) if ln.startswith("audit trail (")) + 2 :]
    assert [(r.split()[1], r.split()[2], r.split()[3]) for r in trail] == [
        ("delivery", "orders/create", "COMPLETED"),
        ("event", "order.created", "pending"),
        ("delivery", "orders/paid", "COMPLETED"),
        ("event", "order.paid", "paid"),
        ("delivery", "fulfillments/create", "COMPLETED"),
        ("event", "fulfillment.created", "in_transit"),
        ("delivery", "orders/updated", "STALE"),
        ("event", "order.updated", "paid"),
        ("delivery", "orders/updated", "DEAD_LETTERED"),
    ]
    assert "attempts 1; delivery w-create;" in trail[0]
    assert "line_items is not a list" in trail[-1]
    assert "dead letter " in trail[-1]

    machine = _show(settings, order_id, "--json")
    assert machine.returncode == 0, machine.stderr
    document = json.loads(machine.stdout)
    assert document["order"]["external_id"] == str(order_id)
    assert document["order"]["total_amount"] == "25.50"
    assert "customer_email" not in document["order"]
    assert [(e["kind"], e.get("topic") or e.get("type")) for e in document["timeline"]] == [
        (t[0], t[1]) for t in [(r.split()[1], r.split()[2]) for r in trail]
    ]
    assert [r["state"] for r in document["reservations"]] == ["active", "active"]
    assert document["fulfillments"][0]["line_quantities"] == [2]
    assert "buyer@example.com" not in machine.stdout


async def test_an_order_only_dead_letters_know_is_shown_as_not_stored(
    send: Sender, worker: WorkerProcess, resources: Resources, settings: Settings
) -> None:
    order_id = 8_000_000 + uuid.uuid4().int % 1_000_000
    broken = order_payload(order_id, updated_at="2026-11-20T10:00:00Z", line_items={"id": 1})
    assert await send("orders/create", broken) == 200

    async def dead() -> bool:
        return await _deliveries(resources, order_id) == ["DEAD_LETTERED"]

    await eventually(dead, what="the dead-lettered delivery", worker=worker)
    shown = _show(settings, order_id)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(
        f"shopify order {order_id} in shop {SHOP}\n"
        "  not stored: no delivery for it has produced an order (see below)\n"
    )
    assert "lines: none" in shown.stdout
    assert "audit trail (1 deliveries, 0 events, in the order received):" in shown.stdout
    assert "DEAD_LETTERED" in shown.stdout
    assert json.loads(_show(settings, order_id, "--json").stdout)["order"] is None


async def test_an_order_nothing_names_is_one_error_line_exit_1(base_settings: Settings) -> None:
    shown = run_cli(
        base_settings,
        *("orders", "show", "--platform", "shopify", "--shop", SHOP, "--id", "404404404"),
    )
    assert shown.returncode == 1
    assert shown.stdout == ""
    assert shown.stderr == (
        f"pipeline: error: no shopify order 404404404 in shop {SHOP}: no order, delivery or "
        "event names it (--id is the platform's order id, not the number buyers see)\n"
    )


async def test_bad_arguments_are_refused_with_exit_2(base_settings: Settings) -> None:
    for args, problem in [
        (("--platform", "amazon", "--shop", SHOP, "--id", "1"), "invalid choice: 'amazon'"),
        (("--platform", "shopify", "--shop", "it-shop", "--id", "1"), "is not a shopify shop id"),
        (("--platform", "shopify", "--shop", SHOP, "--id", " "), "--id ' ' is not an order id"),
    ]:
        shown = run_cli(base_settings, "orders", "show", *args)
        assert shown.returncode == 2, args
        assert problem in shown.stderr
        assert shown.stderr.count("\n") == 1 or "usage:" in shown.stderr
        assert "Traceback" not in shown.stderr
