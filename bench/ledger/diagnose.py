"""What went wrong, from Kafka's side: lag, where missing deliveries sit, probes of partitions."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter

import asyncpg
import orjson
from aiohttp import ClientSession, ClientTimeout
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import murmur2

from bench.ledger.config import SHOP
from bench.ledger.reconcile import stored_ids
from bench.ledger.sender import post
from bench.ledger.state import Run
from bench.ledger.traffic import order_versions
from bench.sandbox import end_offsets, group_lag
from pipeline.kafka import committed_offsets, topic_names
from pipeline.settings import Settings


async def diagnose_lag(run: Run, lag: dict[int, int]) -> str:
    """What sits past the committed offset of a lagging partition, and is it still served?"""
    raw = topic_names(run.settings).raw
    committed = await _committed(run.settings)
    lines = [f"lag: group committed {committed}, uncommitted {lag}"]
    conn = await asyncpg.connect(run.settings.database_dsn)
    try:
        rows = await conn.fetch(
            "SELECT external_event_id, kafka_partition, kafka_offset FROM webhook_events"
            " WHERE kafka_topic = $1",
            raw,
        )
        stored_at = {
            r["external_event_id"]: (r["kafka_partition"], r["kafka_offset"]) for r in rows
        }
        for partition, behind in lag.items():
            if not behind:
                continue
            start = committed.get(partition, 0)
            records = await _read_partition(run.settings, raw, partition, start)
            kinds: Counter[str] = Counter()
            first: list[str] = []
            for offset, delivery in records:
                where = stored_at.get(delivery)
                if where is None:
                    kind = "not stored"
                elif where == (partition, offset):
                    kind = "stored from this offset"
                else:
                    kind = "stored from another copy"
                kinds[kind] += 1
                if len(first) < 5:
                    at = f" p{where[0]}@{where[1]}" if where else ""
                    first.append(f"@{offset} {delivery} ({kind}{at})")
            lines.append(
                f"p{partition} from committed offset {start}: {len(records)} records, "
                f"{dict(kinds)}; first: {'; '.join(first)}"
            )
            lines.append(await probe(run, partition, conn))
    finally:
        await conn.close()
    lines.append(f"lag after the probes: {await settled_lag(run.settings, 10.0)}")
    return "\n".join(lines) + "\n"


async def probe(run: Run, partition: int, conn: asyncpg.Connection) -> str:
    """Send one new delivery that lands on `partition`; is it stored within 15 s?"""
    order_id = 9_000_000_000
    while (
        murmur2(f"shopify:{SHOP}:order:{order_id}".encode()) & 0x7FFFFFFF
    ) % run.settings.partitions != partition:
        order_id += 1
    d = order_versions(order_id, 1, random.Random(order_id))[0]
    url = run.ingress_url("/webhooks/shopify/orders")
    async with ClientSession(timeout=ClientTimeout(total=15)) as http:
        answer = await post(http, url, d)
    deadline = time.monotonic() + 15
    query = "SELECT count(*) FROM webhook_events WHERE external_event_id = $1"
    while time.monotonic() < deadline:
        if await conn.fetchval(query, d.delivery_id):
            return f"probe on p{partition}: answered {answer}, stored"
        await asyncio.sleep(0.5)
    return f"probe on p{partition}: answered {answer}, NOT stored within 15 s"


async def diagnose(run: Run) -> str:
    """Where missing deliveries sit in the raw topic, and what the group committed."""
    raw = topic_names(run.settings).raw
    acked = run.acked_ids()
    conn = await asyncpg.connect(run.settings.database_dsn)
    try:
        stored = await stored_ids(run, conn)
    finally:
        await conn.close()
    missing = acked - stored
    where = await _raw_index(run.settings, raw, missing)
    committed = await _committed(run.settings)
    ends = await end_offsets(run.settings)
    lines = [f"group committed on {raw}: {dict(sorted(committed.items()))}"]
    lines.append(f"end offsets: {dict(sorted(ends.items()))}")
    for delivery_id in sorted(missing)[:30]:
        coords = where.get(delivery_id, [])
        if not coords:
            lines.append(f"missing {delivery_id}: NOT in the raw topic (acknowledged, lost)")
            continue
        verdict = [
            f"p{p}@{o} ({'committed past' if o < committed.get(p, -1) else 'not committed'})"
            for p, o in coords
        ]
        lines.append(f"missing {delivery_id}: {', '.join(verdict)}")
    if len(missing) > 30:
        lines.append(f"... and {len(missing) - 30} more missing")
    return "\n".join(lines)


async def _raw_index(
    settings: Settings, topic: str, wanted: set[str]
) -> dict[str, list[tuple[int, int]]]:
    """(partition, offset) of each copy of each wanted delivery id in the raw topic."""
    found: dict[str, list[tuple[int, int]]] = {}
    for partition in range(settings.partitions):
        for offset, delivery in await _read_partition(settings, topic, partition, 0):
            if delivery in wanted:
                found.setdefault(delivery, []).append((partition, offset))
    return found


async def settled_lag(settings: Settings, timeout_s: float) -> dict[int, int]:
    """The group's lag once it reaches zero, or as it stands after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        lag = await group_lag(settings)
        if not any(lag.values()) or time.monotonic() > deadline:
            return lag
        await asyncio.sleep(1.0)


async def _committed(settings: Settings) -> dict[int, int]:
    return await committed_offsets(settings, topic_names(settings).raw)


async def _read_partition(
    settings: Settings, topic: str, partition: int, start: int
) -> list[tuple[int, str]]:
    """(offset, delivery id) of every record of one partition from `start` to its end."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    out: list[tuple[int, str]] = []
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        consumer.seek(tp, max(0, start))
        deadline = time.monotonic() + 60
        while await consumer.position(tp) < end and time.monotonic() < deadline:
            for records in (await consumer.getmany(tp, timeout_ms=1000)).values():
                out += [(r.offset, orjson.loads(r.value)["delivery_id"]) for r in records]
    finally:
        await consumer.stop()
    return out
