"""Canonical events published again from `commerce_events`, for a consumer that lost data.

Each stored event is rebuilt and sent with the worker's own encoding (`canonical_message`):
same topic, key and value, so the same event id, and a consumer that deduplicates on it sees
nothing new. Events go out in the order the sink stored them (the table's serial id), which
keeps each entity's events in the order the worker first published them; paging on that id
makes an interrupted run resumable from the last id Kafka acknowledged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import asyncpg

from pipeline import sql
from pipeline.publish import canonical_message
from pipeline.topics import TopicNames
from schemas.decode import RECORDS_BY_SCHEMA, EventDecodeError, from_json

PAGE_SIZE = 500


class ReemitError(RuntimeError):
    """A stored event that cannot be re-emitted as it was published; nothing after it is sent."""


@dataclass(frozen=True, slots=True)
class ReemitFilter:
    """Which stored events an operator means; None (or empty) means any.

    `since`/`until` are on `recorded_at`, when the worker stored the event just before
    publishing it, so they match the Kafka timestamps of what a consumer missed; `occurred_at`
    is the marketplace's time and can be days older for a late or replayed delivery.
    """

    platform: str | None = None
    shop_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    types: tuple[str, ...] = ()
    entity_types: tuple[str, ...] = ()
    entity_id: str | None = None
    after_id: int = 0

    def args(self, *, after_id: int, upto_id: int | None) -> tuple[object, ...]:
        """The parameters of the SQL filter ($1..$9), paging from `after_id` to `upto_id`."""
        return (
            self.platform,
            self.shop_id,
            self.since,
            self.until,
            list(self.types) or None,
            list(self.entity_types) or None,
            self.entity_id,
            after_id,
            upto_id,
        )


@dataclass(frozen=True, slots=True)
class TopicPlan:
    """What a run would send to one topic."""

    topic: str
    events: int
    first_recorded: datetime
    last_recorded: datetime


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything a run would send; `last_id` bounds it, so events stored later are left out."""

    topics: tuple[TopicPlan, ...]
    first_id: int | None
    last_id: int | None
    unknown_schemas: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return sum(t.events for t in self.topics)

    @property
    def first_recorded(self) -> datetime | None:
        return min((t.first_recorded for t in self.topics), default=None)

    @property
    def last_recorded(self) -> datetime | None:
        return max((t.last_recorded for t in self.topics), default=None)


def schema_topics(names: TopicNames) -> dict[str, str]:
    """Record schema (`commerce.order/v1`, ...) -> the canonical topic its events go to."""
    return {schema: names.canonical(r.stream) for schema, r in RECORDS_BY_SCHEMA.items()}


def plan_from_counts(rows: Sequence[Any], names: TopicNames) -> Plan:
    """Fold the per-schema counts of count_reemit_events.sql into per-topic lines."""
    topics = schema_topics(names)
    merged: dict[str, TopicPlan] = {}
    unknown: list[str] = []
    first_ids: list[int] = []
    last_ids: list[int] = []
    for row in rows:
        topic = topics.get(row["schema"])
        if topic is None:
            unknown.append(str(row["schema"]))
            continue
        first_ids.append(row["first_id"])
        last_ids.append(row["last_id"])
        seen = merged.get(topic)
        merged[topic] = TopicPlan(
            topic,
            row["events"] + (seen.events if seen else 0),
            min(row["first_recorded"], seen.first_recorded) if seen else row["first_recorded"],
            max(row["last_recorded"], seen.last_recorded) if seen else row["last_recorded"],
        )
    return Plan(
        topics=tuple(merged[t] for t in sorted(merged)),
        first_id=min(first_ids, default=None),
        last_id=max(last_ids, default=None),
        unknown_schemas=tuple(unknown),
    )


class EventSource(Protocol):
    """Where stored events come from (the table; a list in unit tests)."""

    async def count(self, where: ReemitFilter) -> Sequence[Any]: ...

    async def page(
        self, where: ReemitFilter, *, after_id: int, upto_id: int | None, limit: int
    ) -> Sequence[Any]: ...


class EventStore:
    """The `commerce_events` table."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def count(self, where: ReemitFilter) -> Sequence[Any]:
        args = where.args(after_id=where.after_id, upto_id=None)
        return list(await self._pool.fetch(sql.COUNT_REEMIT_EVENTS, *args))

    async def page(
        self, where: ReemitFilter, *, after_id: int, upto_id: int | None, limit: int
    ) -> Sequence[Any]:
        args = where.args(after_id=after_id, upto_id=upto_id)
        return list(await self._pool.fetch(sql.SELECT_REEMIT_EVENTS, *args, limit))


class Sender(Protocol):
    """What re-emitting needs of the pipeline producer."""

    async def send(
        self, topic: str, value: bytes, key: bytes | None = None
    ) -> asyncio.Future[Any]: ...


@dataclass(slots=True)
class Progress:
    """How far a run got: `last_id` is the highest id whose event, and every one before it,
    Kafka acknowledged; `per_topic` counts acknowledged events only."""

    last_id: int
    emitted: int = 0
    per_topic: dict[str, int] = field(default_factory=dict)


def message(row: Any, names: TopicNames) -> tuple[str, bytes, bytes]:
    """(topic, key, value) for one stored event, exactly as the worker published it."""
    try:
        event = from_json(row["payload"])
    except EventDecodeError as exc:
        raise ReemitError(
            f"event {row['event_id']} (id {row['id']}) cannot be rebuilt: {exc}"
        ) from None
    if event.event_id != row["event_id"]:
        raise ReemitError(f"event id {row['id']} holds a payload of event {event.event_id}")
    return canonical_message(names, event)


@dataclass(frozen=True, slots=True)
class Pace:
    """At most `rate_per_s` sends a second, measured from the start of the run."""

    rate_per_s: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


async def reemit(
    source: EventSource,
    producer: Sender,
    names: TopicNames,
    where: ReemitFilter,
    *,
    upto_id: int | None,
    pace: Pace,
    progress: Progress,
    on_page: Callable[[Progress], None] = lambda p: None,
    page_size: int = PAGE_SIZE,
) -> Progress:
    """Publish every matching event with id in (`progress.last_id`, `upto_id`], in id order.

    A page counts once Kafka acknowledged all of it; an error or a cancellation (Ctrl-C)
    leaves `progress` at the last whole page, from which `--after-id` resumes. Events sent
    after it may reach Kafka twice then, which consumers deduplicating on event_id ignore.
    """
    started = pace.clock()
    sent = 0
    while rows := await source.page(
        where, after_id=progress.last_id, upto_id=upto_id, limit=page_size
    ):
        pending = []
        topics = []
        for row in rows:
            topic, key, value = message(row, names)
            pending.append(await producer.send(topic, value, key=key))
            topics.append(topic)
            sent += 1
            ahead = sent / pace.rate_per_s - (pace.clock() - started)
            if ahead > 0:
                await pace.sleep(ahead)
        await asyncio.gather(*pending)
        for topic in topics:
            progress.per_topic[topic] = progress.per_topic.get(topic, 0) + 1
        progress.emitted += len(rows)
        progress.last_id = rows[-1]["id"]
        on_page(progress)
    return progress
