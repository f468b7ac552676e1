"""A Shopify order webhook end to end on real services: ingress, Kafka, worker, Postgres."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from pipeline.kafka import topic_names
from pipeline.resources import Resources
from pipeline.settings import Settings
from tests.integration.conftest import SHOP, Sender, WorkerProcess, eventually, order_payload


async def _count(res: Resources, query: str, *args: Any) -> int:
    return int(await res.pool.fetchval(query, *args))


async def _order(res: Resources, order_id: int) -> Any:
    return await res.pool.fetchrow(
        "SELECT * FROM orders WHERE platform = 'shopify' AND shop_id = $1 AND external_id = $2",
        SHOP,
        str(order_id),
    )


async def _raw_end_offsets(settings: Settings) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await consumer.start()
    try:
        raw = topic_names(settings).raw
        parts = [TopicPartition(raw, p) for p in range(settings.partitions)]
        return sum((await consumer.end_offsets(parts)).values())
    finally:
        await consumer.stop()


async def _read_topic(settings: Settings, topic: str, expected: int) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    try:
        records: list[Any] = []
        for _ in range(50):
            batch = await consumer.getmany(timeout_ms=200)
            records.extend(r for rs in batch.values() for r in rs)
            if len(records) >= expected:
                break
        return records
    finally:
        await consumer.stop()


async def test_signed_webhook_becomes_rows_and_a_canonical_event(
    send: Sender, worker: WorkerProcess, resources: Resources, settings: Settings
) -> None:
    order_id = 5_000_001
    status = await send(
        "orders/create", order_payload(order_id, updated_at="2026-11-20T10:05:00-05:00")
    )
    assert status == 200

    async def stored() -> bool:
        return await _order(resources, order_id) is not None

    await eventually(stored, what="order row")
    row = await _order(resources, order_id)
    assert row["status"] == "paid"
    assert row["total_amount"] == Decimal("25.50")
    assert row["customer_email"] == "buyer@example.com"
    lines = await resources.pool.fetch(
        "SELECT sku, quantity, unit_price FROM order_lines WHERE order_id = $1 ORDER BY sku",
        row["id"],
    )
    assert [(r["sku"], r["quantity"], r["unit_price"]) for r in lines] == [
        ("SKU-1", 2, Decimal("10.00")),
        ("SKU-2", 1, Decimal("3.00")),
    ]
    audit = await resources.pool.fetchrow(
        "SELECT * FROM webhook_events WHERE entity_key LIKE $1", f"%{order_id}"
    )
    assert (audit["status"], audit["topic"], audit["attempts"]) == ("COMPLETED", "orders/create", 1)
    events = await _read_topic(settings, topic_names(settings).orders, 1)
    assert [orjson.loads(r.value)["type"] for r in events] == ["order.created"]
    assert events[0].key == f"shopify:{SHOP}:order:{order_id}".encode()


async def test_same_delivery_three_times_yields_one_order_and_one_audit_row(
    send: Sender, worker: WorkerProcess, resources: Resources
) -> None:
    order_id = 5_000_002
    delivery = str(uuid.uuid4())
    payload = order_payload(order_id, updated_at="2026-11-20T10:05:00-05:00")
    assert [await send("orders/paid", payload, webhook_id=delivery) for _ in range(3)] == [200] * 3
    marker = 5_000_099  # a later delivery: once it is stored, the three before it were processed
    await send("orders/create", order_payload(marker, updated_at="2026-11-20T10:05:00-05:00"))

    async def marker_stored() -> bool:
        return await _order(resources, marker) is not None

    await eventually(marker_stored, what="marker order")
    assert (
        await _count(resources, "SELECT count(*) FROM orders WHERE external_id = $1", str(order_id))
        == 1
    )
    assert (
        await _count(
            resources, "SELECT count(*) FROM webhook_events WHERE external_event_id = $1", delivery
        )
        == 1
    )
    assert (
        await _count(
            resources, "SELECT count(*) FROM commerce_events WHERE entity_id = $1", str(order_id)
        )
        == 1
    )


async def test_older_update_after_newer_leaves_newer_state_and_is_recorded_stale(
    send: Sender, worker: WorkerProcess, resources: Resources
) -> None:
    order_id = 5_000_003
    newer = order_payload(order_id, updated_at="2026-11-20T12:00:00Z", total_price="30.00")
    older = order_payload(order_id, updated_at="2026-11-20T11:00:00Z", total_price="10.00")
    assert await send("orders/updated", newer) == 200

    async def newer_stored() -> bool:
        row = await _order(resources, order_id)
        return row is not None and row["total_amount"] == Decimal("30.00")

    await eventually(newer_stored, what="newer state")
    stale_delivery = str(uuid.uuid4())
    assert await send("orders/updated", older, webhook_id=stale_delivery) == 200

    async def stale_recorded() -> bool:
        status = await resources.pool.fetchval(
            "SELECT status FROM webhook_events WHERE external_event_id = $1", stale_delivery
        )
        return status is not None

    await eventually(stale_recorded, what="stale delivery audit row")
    row = await _order(resources, order_id)
    assert row["total_amount"] == Decimal("30.00")
    status = await resources.pool.fetchval(
        "SELECT status FROM webhook_events WHERE external_event_id = $1", stale_delivery
    )
    assert status == "STALE"
    assert (
        await _count(
            resources, "SELECT count(*) FROM commerce_events WHERE entity_id = $1", str(order_id)
        )
        == 2
    )


async def test_cancelled_order_is_cancelled(
    send: Sender, worker: WorkerProcess, resources: Resources
) -> None:
    order_id = 5_000_004
    assert (
        await send("orders/create", order_payload(order_id, updated_at="2026-11-20T10:00:00Z"))
        == 200
    )
    cancelled = order_payload(
        order_id,
        updated_at="2026-11-20T10:30:00Z",
        cancelled_at="2026-11-20T10:30:00Z",
        cancel_reason="customer",
        financial_status="refunded",
    )
    assert await send("orders/cancelled", cancelled) == 200

    async def is_cancelled() -> bool:
        row = await _order(resources, order_id)
        return row is not None and row["status"] == "cancelled"

    await eventually(is_cancelled, what="cancelled status")


async def test_forged_signature_gets_401_and_writes_nothing(
    send: Sender, resources: Resources, settings: Settings
) -> None:
    before = await _raw_end_offsets(settings)
    status = await send(
        "orders/create",
        order_payload(5_000_005, updated_at="2026-11-20T10:00:00Z"),
        secret="not-the-secret",
    )
    assert status == 401
    assert await _raw_end_offsets(settings) == before
    assert await _count(resources, "SELECT count(*) FROM orders WHERE external_id = '5000005'") == 0


async def test_valid_signature_on_non_json_is_kept_and_dead_lettered(
    send: Sender, worker: WorkerProcess, resources: Resources, settings: Settings
) -> None:
    delivery = str(uuid.uuid4())
    assert await send("orders/create", b"{not json", webhook_id=delivery) == 200

    async def failed() -> bool:
        status = await resources.pool.fetchval(
            "SELECT status FROM webhook_events WHERE external_event_id = $1", delivery
        )
        return status == "DEAD_LETTERED"

    await eventually(failed, what="DEAD_LETTERED audit row")
    indexed = await resources.pool.fetchrow(
        "SELECT error_class, attempts, payload FROM dead_letters WHERE delivery_id = $1", delivery
    )
    assert (indexed["error_class"], indexed["attempts"]) == ("InvalidPayload", 1)
    letters = await _read_topic(settings, topic_names(settings).dead_letters, 1)
    assert len(letters) == 1
    headers = dict(letters[0].headers)
    assert headers["x-error-class"] == b"InvalidPayload"
    assert orjson.loads(letters[0].value)["body"] == "{not json"
