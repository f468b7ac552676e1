"""Running a replay plan: read the planned raw-topic ranges with a group-less consumer, filter,
process each batch with today's code into the target database, checkpoint after each batch.

The consumer is assigned partitions by hand and has no group id, so the live worker's committed
offsets are never touched and live traffic keeps flowing while a replay runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline import envelope as envelopes
from pipeline import sql
from pipeline.batch import BatchProcessor
from pipeline.errors import EnvelopeError, PipelineError, is_transient
from pipeline.outcomes import Outcome, RawMessage
from pipeline.platforms.base import Normalized, PlatformAdapter
from pipeline.platforms.registry import adapter_for
from pipeline.processing import AdapterLookup
from pipeline.replay_plan import Filters, PartitionRange, Plan
from pipeline.settings import Settings

FETCH_TIMEOUT_MS = 500
INLINE_ATTEMPTS = 3


def new_run_id(now: datetime | None = None) -> str:
    """A run id an operator can type: the start time and a few random characters."""
    moment = now or datetime.now(UTC)
    return f"{moment:%Y%m%dT%H%M%S}-{secrets.token_hex(2)}"


def create_reader(settings: Settings) -> AIOKafkaConsumer:
    """A consumer with no group: it reads assigned partitions and never commits anything."""
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        client_id=f"{settings.app_id}-replay",
        max_partition_fetch_bytes=16 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )


class KafkaOffsets:
    """The raw topic's partitions and offsets as the planner needs them."""

    def __init__(self, consumer: AIOKafkaConsumer, topic: str) -> None:
        self._consumer = consumer
        self._topic = topic

    def _tps(self, partitions: list[int]) -> list[TopicPartition]:
        return [TopicPartition(self._topic, p) for p in partitions]

    async def partitions(self) -> list[int]:
        # aiokafka has no public call for a fresh topic's partitions without subscribing.
        cluster = await self._consumer._client.fetch_all_metadata()
        return sorted(cluster.partitions_for_topic(self._topic) or ())

    async def beginning(self, partitions: list[int]) -> dict[int, int]:
        found = await self._consumer.beginning_offsets(self._tps(partitions))
        return {tp.partition: int(o) for tp, o in found.items()}

    async def end(self, partitions: list[int]) -> dict[int, int]:
        found = await self._consumer.end_offsets(self._tps(partitions))
        return {tp.partition: int(o) for tp, o in found.items()}

    async def for_time(self, partitions: list[int], ms: int) -> dict[int, int | None]:
        found = await self._consumer.offsets_for_times({tp: ms for tp in self._tps(partitions)})
        return {tp.partition: None if o is None else int(o.offset) for tp, o in found.items()}


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
        merge = _Merge(
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


class _Merge:
    """The planned ranges of every partition as one stream in Kafka timestamp order, the order
    the ingress accepted the deliveries in: stock and products then come before the orders that
    reserve them, as they did live, even when they sit in another partition."""

    def __init__(
        self, consumer: AIOKafkaConsumer, topic: str, ranges: dict[int, tuple[int, int]]
    ) -> None:
        self._consumer = consumer
        self.topic = topic
        self._tps = {p: TopicPartition(topic, p) for p in ranges}
        self._stops = {p: stop for p, (_, stop) in ranges.items()}
        self._fetched = {p: start for p, (start, _) in ranges.items()}  # next offset to fetch
        self._buffers: dict[int, deque[Any]] = {p: deque() for p in ranges}
        consumer.assign(list(self._tps.values()))
        for p, (start, _) in ranges.items():
            consumer.seek(self._tps[p], start)

    @property
    def done(self) -> bool:
        return all(self._exhausted(p) and not self._buffers[p] for p in self._tps)

    def _exhausted(self, p: int) -> bool:
        return self._fetched[p] >= self._stops[p]

    async def fill(self, want: int) -> None:
        """Fetch until every unfinished partition has `want` records buffered (a fetch may
        bring one partition only), within a few fetches, so batches come out full."""
        for _ in range(len(self._tps) + 1):
            hungry = [
                p for p in self._tps if not self._exhausted(p) and len(self._buffers[p]) < want
            ]
            if not hungry:
                return
            fetched = await self._consumer.getmany(
                *(self._tps[p] for p in hungry), timeout_ms=FETCH_TIMEOUT_MS, max_records=want
            )
            for tp, records in fetched.items():
                self._keep(tp.partition, records)
            if not fetched:
                await self._skip_gaps(hungry)
                return

    def _keep(self, p: int, records: list[Any]) -> None:
        for record in records:
            if record.offset >= self._stops[p]:
                break
            self._buffers[p].append(record)
        if records:
            self._fetched[p] = min(records[-1].offset + 1, self._stops[p])

    async def _skip_gaps(self, partitions: list[int]) -> None:
        """A gap in offsets (a transaction marker) may hide a partition's stop itself."""
        for p in partitions:
            if not self._exhausted(p) and not self._buffers[p]:
                self._fetched[p] = min(await self._consumer.position(self._tps[p]), self._stops[p])

    def take(self, limit: int) -> tuple[list[RawMessage], dict[int, int]]:
        """Up to `limit` records, oldest first, while every unfinished partition has one to
        compare; and the next offset of each partition taken from."""
        batch: list[RawMessage] = []
        next_offsets: dict[int, int] = {}
        while len(batch) < limit:
            if any(not self._buffers[p] and not self._exhausted(p) for p in self._tps):
                break
            heads = [(b[0].timestamp, p) for p, b in self._buffers.items() if b]
            if not heads:
                break
            _, p = min(heads)
            record = self._buffers[p].popleft()
            batch.append(RawMessage(record.value, record.key, self.topic, p, record.offset))
            next_offsets[p] = record.offset + 1
        for p in self._tps:  # partitions read to their stop record that too
            if self._exhausted(p) and not self._buffers[p]:
                next_offsets.setdefault(p, self._stops[p])
        return batch, next_offsets


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
