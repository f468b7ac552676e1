"""One batch from the raw topic, end to end: dedupe, normalize, store, publish, remember."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aiokafka.errors import KafkaError

from pipeline.outcomes import Outcome, RawMessage
from pipeline.postgres import is_retriable
from pipeline.processing import process_message, utcnow
from pipeline.publish import Publisher
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
    published: int = 0
    already_recorded: int = 0
    statuses: dict[str, int] = field(default_factory=dict)

    def count(self, result: WriteResult) -> None:
        for status, n in result.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + n
        self.already_recorded += result.already_recorded


class BatchProcessor:
    """Returns only when the batch is durable in Postgres and Kafka; waits out outages forever.

    The caller may acknowledge the batch's offsets exactly when `handle` returns.
    """

    def __init__(
        self,
        sink: PostgresSink,
        publisher: Publisher,
        seen: SeenDeliveries,
        *,
        backoff: Backoff | None = None,
        process: Callable[..., Outcome | None] = process_message,
    ) -> None:
        self._sink = sink
        self._publisher = publisher
        self._seen = seen
        self._backoff = backoff or Backoff()
        self._process = process

    async def handle(self, messages: Sequence[RawMessage]) -> BatchReport:
        report = BatchReport(received=len(messages))
        in_batch: set[str] = set()

        def is_seen(key: str) -> bool:
            return key in in_batch or self._seen.is_seen(key)

        outcomes: list[Outcome] = []
        for message in messages:
            outcome = self._process(message, is_seen=is_seen)
            if outcome is None:
                report.duplicates += 1
                continue
            if outcome.dedupe_key is not None:
                in_batch.add(outcome.dedupe_key)
            outcomes.append(outcome)

        stored = await self._store(outcomes, report)
        report.published = await until_done(
            lambda: self._publisher.publish(stored),
            retriable=lambda exc: isinstance(exc, KafkaError | OSError | TimeoutError),
            backoff=self._backoff,
            what="publish",
        )
        report.dead_letters = sum(1 for o in stored if o.dead_letter is not None)
        self._seen.mark([(o.dedupe_key, o.source) for o in stored if o.dedupe_key is not None])
        return report

    async def _store(self, outcomes: list[Outcome], report: BatchReport) -> list[Outcome]:
        """Write the batch; a row Postgres refuses is found by halving and becomes a dead letter."""
        if not outcomes:
            return outcomes
        try:
            result = await until_done(
                lambda: self._sink.write(outcomes),
                retriable=is_retriable,
                backoff=self._backoff,
                what="postgres write",
            )
        except Exception as exc:  # noqa: BLE001 - anything Postgres refuses is isolated, not fatal
            if len(outcomes) > 1:
                middle = len(outcomes) // 2
                first = await self._store(outcomes[:middle], report)
                return first + await self._store(outcomes[middle:], report)
            failed = outcomes[0].failed(type(exc).__name__, str(exc), utcnow())
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
                retriable=is_retriable,
                backoff=self._backoff,
                what="postgres write",
            )
        except Exception:
            log.exception("could not record a failed delivery; it is kept in the dead-letter topic")
            return [failed]
        report.count(result)
        return [failed]
