"""Dead letters for operators: find them, inspect them, and replay them through the normal path."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import datetime

import asyncpg
from aiokafka import AIOKafkaProducer

from pipeline import envelope as envelopes
from pipeline.errors import EnvelopeError

# Every filter is optional: NULL means "any". Keyset paging on id makes a replay resumable.
DEAD_LETTER_FILTER = """
WHERE ($1::text IS NULL OR platform = $1)
  AND ($2::text IS NULL OR shop_id = $2)
  AND ($3::text IS NULL OR error_class ILIKE '%' || $3 || '%' OR error ILIKE '%' || $3 || '%')
  AND ($4::timestamptz IS NULL OR created_at >= $4)
  AND ($5::timestamptz IS NULL OR created_at < $5)
  AND ($6::boolean OR replayed_at IS NULL)
  AND ($7::bigint[] IS NULL OR id = ANY($7))
  AND id > $8
"""
# Built from constants only; no input ever reaches the text.
SELECT_DEAD_LETTERS = (
    "SELECT id, platform, shop_id, topic, delivery_id, error_class, error, attempts,"  # noqa: S608
    " first_failed_at, last_failed_at, source_topic, source_partition, source_offset,"
    " created_at, replayed_at, replay_count, message_key, payload"
    " FROM dead_letters" + DEAD_LETTER_FILTER + "ORDER BY id LIMIT $9"
)
COUNT_DEAD_LETTERS = "SELECT count(*) FROM dead_letters" + DEAD_LETTER_FILTER  # noqa: S608
MARK_REPLAYED = (
    "UPDATE dead_letters SET replayed_at = now(), replay_count = replay_count + 1 WHERE id = $1"
)


@dataclass(frozen=True, slots=True)
class DlqFilter:
    """Which dead letters an operator means; by default only those not replayed yet."""

    platform: str | None = None
    shop_id: str | None = None
    error: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    include_replayed: bool = False
    ids: tuple[int, ...] | None = None

    def args(self, after_id: int, limit: int) -> tuple[object, ...]:
        ids = list(self.ids) if self.ids is not None else None
        return (
            self.platform,
            self.shop_id,
            self.error,
            self.since,
            self.until,
            self.include_replayed,
            ids,
            after_id,
            limit,
        )


class DeadLetterStore:
    """The `dead_letters` table."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def page(
        self, where: DlqFilter, *, after_id: int = 0, limit: int = 100
    ) -> list[asyncpg.Record]:
        return list(await self._pool.fetch(SELECT_DEAD_LETTERS, *where.args(after_id, limit)))

    async def count(self, where: DlqFilter) -> int:
        args = where.args(after_id=0, limit=0)[:-1]  # the count takes every filter but LIMIT
        return int(await self._pool.fetchval(COUNT_DEAD_LETTERS, *args))

    async def get(self, letter_id: int) -> asyncpg.Record | None:
        rows = await self.page(DlqFilter(include_replayed=True, ids=(letter_id,)), limit=1)
        return rows[0] if rows else None

    async def all(self, where: DlqFilter) -> AsyncIterator[asyncpg.Record]:
        after = 0
        while rows := await self.page(where, after_id=after):
            for row in rows:
                yield row
            after = rows[-1]["id"]

    async def mark_replayed(self, letter_id: int) -> None:
        await self._pool.execute(MARK_REPLAYED, letter_id)


def replay_payload(row: asyncpg.Record) -> bytes:
    """The envelope to send again: flagged as a replay (skips the dedupe table), next attempt."""
    try:
        item = envelopes.decode(bytes(row["payload"]))
    except EnvelopeError as exc:
        raise ValueError(
            f"dead letter {row['id']} is not an envelope ({exc}); cannot replay"
        ) from None
    return envelopes.encode(replace(item, replay=True, attempt=min(row["attempts"] + 1, 1000)))


@dataclass(slots=True)
class ReplayReport:
    replayed: int = 0
    skipped: list[str] | None = None


async def replay(
    store: DeadLetterStore,
    producer: AIOKafkaProducer,
    raw_topic: str,
    where: DlqFilter,
    *,
    rate_per_s: float,
    on_progress: Callable[[int], None] = lambda done: None,
    clock: Callable[[], float] = time.monotonic,
) -> ReplayReport:
    """Send matching dead letters back to the raw topic, each marked replayed once Kafka has it.

    Interrupting is safe at any point: what was marked is done, and running the same command
    again continues with the rest (a letter sent but not yet marked is sent again, harmlessly).
    """
    report = ReplayReport(skipped=[])
    started = clock()
    async for row in store.all(where):
        try:
            payload = replay_payload(row)
        except ValueError as exc:
            assert report.skipped is not None
            report.skipped.append(str(exc))
            continue
        await producer.send_and_wait(raw_topic, payload, key=row["message_key"])
        await store.mark_replayed(row["id"])
        report.replayed += 1
        on_progress(report.replayed)
        ahead = report.replayed / rate_per_s - (clock() - started)
        if ahead > 0:
            await asyncio.sleep(ahead)
    return report
