"""Running a replay plan: read the planned raw-topic ranges (pipeline/replay_reader.py), filter,
process each batch with today's code into the target database, checkpoint after each batch."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer

from pipeline import envelope as envelopes
from pipeline import sql
from pipeline.batch import BatchProcessor
from pipeline.errors import EnvelopeError, PipelineError, is_transient
from pipeline.outcomes import Outcome, RawMessage
from pipeline.platforms.base import Normalized, PlatformAdapter
from pipeline.platforms.registry import adapter_for
from pipeline.processing import AdapterLookup
from pipeline.replay_plan import Filters, PartitionRange, Plan
from pipeline.replay_reader import Merge

INLINE_ATTEMPTS = 3


def new_run_id(now: datetime | None = None) -> str:
    """A run id an operator can type: the start time and a few random characters."""
    moment = now or datetime.now(UTC)
    return f"{moment:%Y%m%dT%H%M%S}-{secrets.token_hex(2)}"


class NeverSeen:
    """Dedupe memory for replays: nothing counts as seen, and nothing is remembered (the live
    worker's table belongs to the live worker)."""

    def is_seen(self, key: str) -> bool:
        return False

    def mark(self, items: Sequence[tuple[str, RawMessage]]) -> None:
        return None


class NoPublisher:
    """For a rebuild into another database: nothing goes to Kafka (consumers have it already)."""

    async def publish(self, outcomes: Sequence[Outcome]) -> int:
        return 0


class _InlineRetries:
    """An adapter whose normalizer is retried in place a few times when it fails in a way that
    may pass, instead of through the retry topics (which the live worker reads into the live
    database); what still fails is dead-lettered by the processor (max_attempts=1)."""

    def __init__(self, adapter: PlatformAdapter, attempts: int) -> None:
        self._adapter = adapter
        self._attempts = attempts

    def __getattr__(self, name: str) -> Any:
        return getattr(self._adapter, name)

    def normalize(self, item: envelopes.Envelope) -> Normalized:
        for attempt in range(1, self._attempts + 1):
            try:
                return self._adapter.normalize(item)
            except Exception as exc:
                final = isinstance(exc, PipelineError) and not is_transient(exc)
                if final or attempt == self._attempts:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover


def inline_retries(
    adapters: AdapterLookup = adapter_for, attempts: int = INLINE_ATTEMPTS
) -> AdapterLookup:
    """`adapters`, each normalizer retried in place `attempts` times."""

    def lookup(platform: str) -> PlatformAdapter | None:
        adapter = adapters(platform)
        return None if adapter is None else _InlineRetries(adapter, attempts)

    return lookup


class Checkpoints:
    """Runs and their per-partition next offsets, in the target database (migration 0004)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, run_id: str, kind: str, plan: Plan) -> None:
        await self._pool.execute(
            sql.INSERT_REPLAY_RUN, run_id, kind, orjson.dumps(plan.to_json()).decode()
        )

    async def load(self, run_id: str) -> tuple[str, Plan, dict[int, int], bool] | None:
        """(kind, plan, next offsets, finished), or None for an unknown run."""
        row = await self._pool.fetchrow(sql.SELECT_REPLAY_RUN, run_id)
        if row is None:
            return None
        offsets = {int(p): int(o) for p, o in orjson.loads(row["next_offsets"]).items()}
        plan = Plan.from_json(orjson.loads(row["plan"]))
        return str(row["kind"]), plan, offsets, row["finished_at"] is not None

    async def save(self, run_id: str, next_offsets: dict[int, int]) -> None:
        if next_offsets:
            parts = sorted(next_offsets)
            await self._pool.execute(
                sql.SAVE_REPLAY_CHECKPOINT, run_id, parts, [next_offsets[p] for p in parts]
            )

    async def finish(self, run_id: str) -> None:
        await self._pool.execute(sql.FINISH_REPLAY_RUN, run_id)


class StatusFilter:
    """Keeps deliveries whose audit row (in the database the selection names) has one of the
    wanted final statuses; deliveries with no audit row never match."""

    def __init__(self, pool: asyncpg.Pool, statuses: tuple[str, ...]) -> None:
        self._pool = pool
        self._statuses = set(statuses)

    async def keep(self, items: list[tuple[RawMessage, envelopes.Envelope]]) -> set[int]:
        """Indexes into `items` that pass."""
        rows = await self._pool.fetch(
            sql.SELECT_DELIVERY_STATUSES,
            [e.platform for _, e in items],
            [e.delivery_id for _, e in items],
        )
        wanted = {
            (r["platform"], r["external_event_id"]) for r in rows if r["status"] in self._statuses
        }
        return {i for i, (_, e) in enumerate(items) if (e.platform, e.delivery_id) in wanted}


@dataclass(slots=True)
class Progress:
    """Counts so far, for the progress line and the final summary."""

    total: int
    read: int = 0
    matched: int = 0
    processed: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    first_ms: int | None = None
    last_ms: int | None = None
    started: float = field(default_factory=time.monotonic)

    def rate(self, now: float) -> float:
        return self.read / max(now - self.started, 1e-6)

    def eta_s(self, now: float) -> float | None:
        rate = self.rate(now)
        return (self.total - self.read) / rate if rate > 0 else None

    def seen_time(self, ms: int) -> None:
        self.first_ms = ms if self.first_ms is None else min(self.first_ms, ms)
        self.last_ms = ms if self.last_ms is None else max(self.last_ms, ms)


Handler = Callable[[list[RawMessage]], Awaitable[dict[str, int]]]


@dataclass(slots=True)
class ReplayRun:
    """One pass over a plan: `handle` gets each filtered batch and returns audit statuses;
    `checkpoint` gets the next offsets once a batch is handled; `stop` ends it after a batch."""

    consumer: AIOKafkaConsumer
    plan: Plan
    handle: Handler
    checkpoint: Callable[[dict[int, int]], Awaitable[None]]
    resume_from: dict[int, int] = field(default_factory=dict)
    status_filter: StatusFilter | None = None
    batch_max: int = 500
    rate_per_s: float | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    on_progress: Callable[[Progress], None] = lambda progress: None
    progress_every_s: float = 5.0

    async def run(self) -> tuple[Progress, bool]:
        """Returns the counts and whether the plan was read to its end (False if stopped)."""
        todo = self._todo()
        progress = Progress(total=sum(r.stop - self._next(r) for r in todo))
        if not todo:
            return progress, True
        merge = Merge(
            self.consumer, self.plan.topic, {r.partition: (self._next(r), r.stop) for r in todo}
        )
        last_report = time.monotonic()
        while not merge.done and not self.stop.is_set():
            await merge.fill(self.batch_max)
            batch, next_offsets = merge.take(self.batch_max)
            await self._process(batch, progress)
            await self.checkpoint(next_offsets)
            await self._pace(progress)
            if time.monotonic() - last_report >= self.progress_every_s:
                self.on_progress(progress)
                last_report = time.monotonic()
        return progress, merge.done

    def _todo(self) -> list[PartitionRange]:
        return [r for r in self.plan.ranges if self._next(r) < r.stop]

    def _next(self, r: PartitionRange) -> int:
        return max(r.start, self.resume_from.get(r.partition, r.start))

    async def _process(self, batch: list[RawMessage], progress: Progress) -> None:
        progress.read += len(batch)
        chosen = await self._select(batch, progress)
        progress.matched += len(chosen)
        if not chosen:
            return
        statuses = await self.handle(chosen)
        progress.processed += len(chosen)
        for status, n in statuses.items():
            progress.statuses[status] = progress.statuses.get(status, 0) + n

    async def _select(self, batch: list[RawMessage], progress: Progress) -> list[RawMessage]:
        """The messages passing the plan's filters; unreadable envelopes pass only when the
        plan does not filter (a rebuild must see them to record their dead letters)."""
        filters: Filters = self.plan.filters
        if not filters.narrows:
            for message in batch:
                _time_of(message, progress)
            return batch
        readable = []
        for message in batch:
            try:
                item = envelopes.decode(message.value)
            except EnvelopeError:
                continue
            if filters.matches(item):
                readable.append((message, item))
        if self.status_filter is not None and readable:
            keep = await self.status_filter.keep(readable)
            readable = [pair for i, pair in enumerate(readable) if i in keep]
        for _, item in readable:
            progress.seen_time(item.received_at_ms)
        return [message for message, _ in readable]

    async def _pace(self, progress: Progress) -> None:
        if self.rate_per_s is None:
            return
        ahead = progress.matched / self.rate_per_s - (time.monotonic() - progress.started)
        if ahead > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), ahead)


def _time_of(message: RawMessage, progress: Progress) -> None:
    """The delivery's receive time, for the plan's first and last timestamps."""
    try:
        progress.seen_time(envelopes.decode(message.value).received_at_ms)
    except EnvelopeError:
        return


def processor_handler(processor: BatchProcessor) -> Handler:
    """A run's handler that stores each batch with the processor and returns its statuses."""

    async def handle(messages: list[RawMessage]) -> dict[str, int]:
        report = await processor.handle(messages)
        statuses = dict(report.statuses)
        if report.already_recorded:
            statuses["unchanged"] = report.already_recorded
        return statuses

    return handle


async def count_only(messages: list[RawMessage]) -> dict[str, int]:
    """A dry run's handler: nothing is processed."""
    return {}
