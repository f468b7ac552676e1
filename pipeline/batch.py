"""One batch from the raw topic, end to end: dedupe, normalize, store, publish, remember."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Protocol

from pipeline.envelope import Envelope
from pipeline.errors import is_transient
from pipeline.outcomes import Outcome, RawMessage
from pipeline.platforms.registry import adapter_for
from pipeline.processing import AdapterLookup, process_envelope, read_envelope, utcnow
from pipeline.retry import Backoff, until_done
from pipeline.sink import PostgresSink, WriteResult

log = logging.getLogger("pipeline.batch")


class SeenDeliveries(Protocol):
    """The dedupe memory: which deliveries were already fully handled."""

    def is_seen(self, key: str) -> bool: ...

    def mark(self, items: Sequence[tuple[str, RawMessage]]) -> None: ...


@dataclass(slots=True)
class BatchReport:
    """Counts for one batch, for logs and the benchmark."""

    received: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    retries: int = 0
    published: int = 0
    already_recorded: int = 0
    statuses: dict[str, int] = field(default_factory=dict)

    def count(self, result: WriteResult) -> None:
        for status, n in result.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + n
        self.already_recorded += result.already_recorded


class EventPublisher(Protocol):
    """Where a stored batch's events, dead letters and retries go (pipeline/publish.py)."""

    async def publish(self, outcomes: Sequence[Outcome]) -> int: ...


class ChannelLookup(Protocol):
    """Where the worker checks that a delivery's shop still has a channel."""

    async def get(self, platform: str, shop_id: str) -> object | None: ...


def generations(outcomes: list[Outcome]) -> list[list[Outcome]]:
    """The batch split so that each part holds at most one delivery per entity: the n-th
    delivery of an entity in the batch goes to part n. Each part is one transaction, so every
    version of an entity is stored on its own, in offset order, and what is stored (audit
    statuses, reservation history) never depends on where batch boundaries fell; a replay or
    rebuild, batched differently, ends the same. Usually there is one part."""
    parts: list[list[Outcome]] = []
    count: dict[str, int] = {}
    for outcome in outcomes:
        entity = outcome.audit.entity_key if outcome.audit is not None else None
        index = count.get(entity, 0) if entity is not None else 0
        if entity is not None:
            count[entity] = index + 1
        while len(parts) <= index:
            parts.append([])
        parts[index].append(outcome)
    return parts


class BatchProcessor:
    """Returns only when the batch is durable in Postgres and Kafka; waits out outages forever.

    The caller may acknowledge the batch's offsets exactly when `handle` returns.
    """

    def __init__(
        self,
        sink: PostgresSink,
        publisher: EventPublisher,
        seen: SeenDeliveries,
        *,
        channels: ChannelLookup | None = None,
        replay_run: str | None = None,
        max_attempts: int = 5,
        backoff: Backoff | None = None,
        adapters: AdapterLookup = adapter_for,
    ) -> None:
        self._sink = sink
        self._publisher = publisher
        self._seen = seen
        self._channels = channels
        self._max_attempts = max_attempts
        self._backoff = backoff or Backoff()
        self._adapters = adapters
        self._replay_run = replay_run

    async def handle(self, messages: Sequence[RawMessage]) -> BatchReport:
        report = BatchReport(received=len(messages))
        moment = utcnow()
        items = [self._mark(read_envelope(m, moment)) for m in messages]
        known = await self._known_channels(
            {(i.platform, i.shop_id) for i in items if isinstance(i, Envelope)}
        )
        in_batch: set[str] = set()  # one row per delivery per statement, replays included
        outcomes: list[Outcome] = []
        for message, item in zip(messages, items, strict=True):
            if isinstance(item, Envelope) and item.dedupe_key in in_batch:
                report.duplicates += 1
                continue
            outcome = (
                item
                if isinstance(item, Outcome)
                else process_envelope(
                    message,
                    item,
                    is_seen=self._seen.is_seen,
                    has_channel=lambda platform, shop: (platform, shop) in known,
                    max_attempts=self._max_attempts,
                    adapters=self._adapters,
                    moment=moment,
                )
            )
            if outcome is None:
                report.duplicates += 1
                continue
            if outcome.dedupe_key is not None:
                in_batch.add(outcome.dedupe_key)
            outcomes.append(outcome)

        stored: list[Outcome] = []
        for generation in generations(outcomes):
            stored += await self._store(generation, report)
        report.published = await until_done(
            lambda: self._publisher.publish(stored),
            retriable=is_transient,
            backoff=self._backoff,
            what="publish",
        )
        report.dead_letters = sum(1 for o in stored if o.dead_letter is not None)
        report.retries = sum(1 for o in stored if o.retry is not None)
        # A delivery on its way to a retry is not done: its next attempt must not be skipped.
        self._seen.mark(
            [
                (o.dedupe_key, o.source)
                for o in stored
                if o.dedupe_key is not None and o.retry is None
            ]
        )
        return report

    def _mark(self, item: Envelope | Outcome) -> Envelope | Outcome:
        """In a replay run every envelope is a replay of that run (the message bytes, which dead
        letters keep, stay as they were on the raw topic)."""
        if self._replay_run is None or not isinstance(item, Envelope):
            return item
        return replace(item, replay=True, replay_run=self._replay_run)

    async def _known_channels(self, pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
        if self._channels is None:
            return pairs
        lookup = self._channels
        known = set()
        for platform, shop in pairs:
            channel = await until_done(
                partial(lookup.get, platform, shop),
                retriable=is_transient,
                backoff=self._backoff,
                what="channel lookup",
            )
            if channel is not None:
                known.add((platform, shop))
        return known

    async def _store(self, outcomes: list[Outcome], report: BatchReport) -> list[Outcome]:
        """Write the batch; a row Postgres refuses is found by halving and becomes a dead letter."""
        if not outcomes:
            return outcomes
        try:
            result = await until_done(
                lambda: self._sink.write(outcomes),
                retriable=is_transient,
                backoff=self._backoff,
                what="postgres write",
            )
        except Exception as exc:  # noqa: BLE001 - anything Postgres refuses is isolated, not fatal
            if len(outcomes) > 1:
                middle = len(outcomes) // 2
                first = await self._store(outcomes[:middle], report)
                return first + await self._store(outcomes[middle:], report)
            audit = outcomes[0].audit
            failed = outcomes[0].dead_lettered(
                type(exc).__name__, str(exc), utcnow(), attempts=audit.attempts if audit else 1
            )
            log.warning(
                "postgres refused a delivery; dead-lettering it",
                extra={
                    "delivery_id": failed.audit.delivery_id if failed.audit else None,
                    "error": repr(exc),
                },
            )
            if outcomes[0].audit is None:
                return [failed]
            return await self._store_failed(failed, report)
        report.count(result)
        return outcomes

    async def _store_failed(self, failed: Outcome, report: BatchReport) -> list[Outcome]:
        """Record the FAILED audit row alone; if even that is refused, the dead letter remains."""
        try:
            result = await until_done(
                lambda: self._sink.write([failed]),
                retriable=is_transient,
                backoff=self._backoff,
                what="postgres write",
            )
        except Exception:
            log.exception("could not record a failed delivery; it is kept in the dead-letter topic")
            return [failed]
        report.count(result)
        return [failed]
