"""The dedupe table as Kafka holds it: its changelog read, emptied with tombstones, and refilled
from Postgres. Every change goes through the changelog, never around it, so a worker with the
memory store (which restores from it) and one with RocksDB (which restores only what follows its
own persisted offsets) both end up with what the changelog says."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer, TopicPartition

from pipeline.kafka import reader, topic_names
from pipeline.settings import Settings


@dataclass(slots=True)
class PartitionKeys:
    """One changelog partition, read to its end: live keys (last record not a tombstone) with
    their first-seen time."""

    partition: int
    earliest: int
    latest: int
    records: int = 0
    live: dict[bytes, float] = field(default_factory=dict)

    def expired(self, cutoff: float) -> int:
        """Live keys older than the window: kept until a worker's expiry deletes them."""
        return sum(1 for seen_at in self.live.values() if seen_at < cutoff)


def changelog(settings: Settings) -> str:
    return topic_names(settings).dedupe_changelog(settings.app_id)


def seen_at(value: bytes | None) -> float | None:
    """The first-seen time a changelog value carries (`[seen_at, partition]`), None for a
    tombstone or a value the table would not have written."""
    if value is None:
        return None
    try:
        decoded = orjson.loads(value)
        return float(decoded[0])
    except (orjson.JSONDecodeError, TypeError, ValueError, IndexError, KeyError):
        return None


async def offset_spans(settings: Settings) -> list[PartitionKeys]:
    """Each changelog partition's earliest and latest offset, without reading it."""
    topic = changelog(settings)
    async with reader(settings) as consumer:
        tps = [TopicPartition(topic, p) for p in range(settings.partitions)]
        firsts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        return [PartitionKeys(tp.partition, firsts[tp], ends[tp]) for tp in tps]


async def read_changelog(settings: Settings) -> list[PartitionKeys]:
    """Every changelog partition read from its start to the end it had when asked."""
    spans = await offset_spans(settings)
    topic = changelog(settings)
    async with reader(settings) as consumer:
        todo = {TopicPartition(topic, s.partition): s for s in spans if s.latest > s.earliest}
        if not todo:
            return spans
        consumer.assign(list(todo))
        await consumer.seek_to_beginning(*todo)
        while todo:
            batches = await consumer.getmany(*todo, timeout_ms=1000, max_records=10_000)
            for tp, records in batches.items():
                span = todo[tp]
                for record in records:
                    if record.offset >= span.latest:
                        break
                    _apply(span, record.key, record.value)
            for tp in [tp for tp, s in todo.items() if await consumer.position(tp) >= s.latest]:
                del todo[tp]
        return spans


def _apply(span: PartitionKeys, key: bytes | None, value: bytes | None) -> None:
    span.records += 1
    if key is None:
        return
    when = seen_at(value)
    if when is None:
        span.live.pop(key, None)
    else:
        span.live[key] = when


async def write(settings: Settings, records: Iterable[tuple[int, bytes, bytes | None]]) -> int:
    """(partition, key, value or None for a tombstone) onto the changelog, acks=all."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
    )
    await producer.start()
    topic = changelog(settings)
    written = 0
    try:
        pending = []
        for partition, key, value in records:
            pending.append(await producer.send(topic, value, key=key, partition=partition))
            written += 1
            if len(pending) >= 10_000:
                for sent in pending:
                    await sent
                pending = []
        for sent in pending:
            await sent
    finally:
        await producer.stop()
    return written


def tombstones(spans: list[PartitionKeys]) -> list[tuple[int, bytes, bytes | None]]:
    """A tombstone for every live key, on the partition that holds it."""
    return [(s.partition, key, None) for s in spans for key in s.live]


@dataclass(frozen=True, slots=True)
class Remembered:
    """A delivery Postgres recorded as processed: what the table would hold for it."""

    partition: int
    key: bytes
    seen_at: float

    def record(self) -> tuple[int, bytes, bytes]:
        value = orjson.dumps([self.seen_at, self.partition])
        return (self.partition, self.key, value)


# Deliveries the worker marks seen: every status but FAILED (a retry is still to come).
_REMEMBERED_SQL = """
SELECT platform, shop_id, external_event_id, kafka_partition,
       extract(epoch FROM processed_at)::float8 AS seen_at
FROM webhook_events
WHERE processed_at >= now() - make_interval(secs => $1) AND status <> 'FAILED'
"""


async def remembered(pool: asyncpg.Pool, settings: Settings) -> list[Remembered]:
    """Deliveries processed within the dedupe window, keyed as the worker keys them."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(_REMEMBERED_SQL, settings.dedupe_window_s)
    return [
        Remembered(
            int(r["kafka_partition"]),
            orjson.dumps(f"{r['platform']}|{r['shop_id']}|{r['external_event_id']}"),
            float(r["seen_at"]),
        )
        for r in rows
        if 0 <= int(r["kafka_partition"]) < settings.partitions
    ]


def missing(found: list[Remembered], spans: list[PartitionKeys]) -> list[Remembered]:
    """What the changelog does not hold live yet (so a rebuild never rewrites a live key)."""
    live = {key for s in spans for key in s.live}
    return [r for r in found if r.key not in live]


def window_cutoff(settings: Settings, now: float | None = None) -> float:
    return (time.time() if now is None else now) - settings.dedupe_window_s
