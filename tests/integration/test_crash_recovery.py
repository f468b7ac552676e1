"""A worker killed mid-stream loses nothing and duplicates nothing once it is back."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest

from agents.supervision import ALARMS
from bench.sandbox import group_lag
from pipeline.kafka import committed_offsets, topic_names
from pipeline.resources import Resources
from pipeline.settings import Settings
from tests.integration.conftest import Sender, WorkerProcess, eventually, order_payload
from tests.integration.test_shopify_orders import _read_topic

N = 300


async def test_sigkill_mid_stream_loses_and_duplicates_nothing(
    send: Sender, worker: WorkerProcess, resources: Resources, settings: Settings
) -> None:
    first_id = 7_000_000
    deliveries = [str(uuid.uuid4()) for _ in range(N)]

    async def post(i: int) -> int:
        payload = order_payload(first_id + i, updated_at="2026-11-21T09:00:00Z")
        return await send("orders/create", payload, webhook_id=deliveries[i])

    raw_topic = topic_names(settings).raw
    ids = [str(first_id + i) for i in range(N)]

    async def stored() -> int:
        query = "SELECT count(*) FROM webhook_events WHERE kafka_topic = $1"
        return int(await resources.pool.fetchval(query, raw_topic))

    statuses = [await post(i) for i in range(N // 2)]

    async def some_stored() -> bool:
        return await stored() > 0

    await eventually(some_stored, what="first rows")
    worker.kill()
    # Deliveries accepted while no worker runs wait in Kafka; some are also retried by the platform.
    statuses += [await post(i) for i in range(N // 2, N)]
    statuses += [await post(i) for i in range(0, N, 10)]
    assert statuses == [200] * len(statuses)
    await worker.start()

    async def all_stored() -> bool:
        return await stored() >= N

    try:
        await eventually(all_stored, timeout_s=60, what=f"{N} deliveries", worker=worker)
    except pytest.fail.Exception:
        print(await _diagnose(settings, resources, raw_topic))
        raise
    await asyncio.sleep(1.0)  # anything extra would arrive now
    rows = await resources.pool.fetch(
        "SELECT external_event_id, status FROM webhook_events WHERE kafka_topic = $1", raw_topic
    )
    assert sorted(r["external_event_id"] for r in rows) == sorted(deliveries)
    assert {r["status"] for r in rows} == {"COMPLETED"}
    count = "SELECT count(*) FROM {} WHERE {} = ANY($1::text[])"
    assert await resources.pool.fetchval(count.format("orders", "external_id"), ids) == N
    assert await resources.pool.fetchval(count.format("commerce_events", "entity_id"), ids) == N
    lines = (
        "SELECT count(*) FROM order_lines l JOIN orders o ON o.id = l.order_id"
        " WHERE o.external_id = ANY($1::text[])"
    )
    assert await resources.pool.fetchval(lines, ids) == 2 * N
    published = await _read_topic(settings, topic_names(settings).orders, N)
    assert len({orjson.loads(r.value)["event_id"] for r in published}) == N

    async def lag_is_zero() -> bool:
        return not any((await group_lag(settings)).values())

    await eventually(lag_is_zero, timeout_s=10, what="the group's lag to reach 0", worker=worker)
    # Nothing was corrected by a safety net: no hole, stall, stuck commit or failed batch.
    log = worker.log_path.read_text()
    for alarm in ALARMS:
        assert f'"alarm":"{alarm}"' not in log, worker.tail()


async def _diagnose(settings: Settings, resources: Resources, raw_topic: str) -> str:
    """Where the deliveries that never reached Postgres sit, and what the group committed."""
    stored = {
        r["external_event_id"]
        for r in await resources.pool.fetch(
            "SELECT external_event_id FROM webhook_events WHERE kafka_topic = $1", raw_topic
        )
    }
    missing = []
    for record in await _read_topic(settings, raw_topic, 10_000):
        delivery = orjson.loads(record.value)["delivery_id"]
        if delivery not in stored:
            missing.append((record.partition, record.offset))
    positions = await committed_offsets(settings, raw_topic)
    return f"missing (partition, offset): {sorted(missing)}\ncommitted: {positions}"
