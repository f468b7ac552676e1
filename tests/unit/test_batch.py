from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from aiokafka.errors import KafkaConnectionError, KafkaError
from asyncpg.exceptions import CannotConnectNowError, DataError

from pipeline.batch import BatchProcessor, BatchReport
from pipeline.outcomes import Outcome, RawMessage
from pipeline.retry import Backoff
from pipeline.sink import WriteResult
from tests.unit.factories import SHOP, delivery, raw

NO_WAIT = Backoff(first_s=0.0, cap_s=0.0)


class FakeSink:
    """Fails `failures` times with `error`, refuses any batch holding events of `poison`."""

    def __init__(
        self,
        log: list[str],
        *,
        failures: int = 0,
        error: Exception | None = None,
        poison: str | None = None,
        refuse_poison_audit: bool = False,
    ) -> None:
        self.log = log
        self.failures = failures
        self.error = error or OSError("connection refused")
        self.poison = poison
        self.refuse_poison_audit = refuse_poison_audit
        self.attempts = 0
        self.written: list[Outcome] = []
        self.attempted = asyncio.Event()

    def _poisoned(self, outcome: Outcome) -> bool:
        if outcome.audit is None or outcome.audit.delivery_id != self.poison:
            return False
        return bool(outcome.events) or self.refuse_poison_audit

    async def write(self, outcomes: Sequence[Outcome]) -> WriteResult:
        self.attempts += 1
        self.attempted.set()
        self.log.append("write")
        if self.failures:
            self.failures -= 1
            raise self.error
        if any(self._poisoned(o) for o in outcomes):
            raise DataError("invalid input syntax for type numeric")
        self.written.extend(outcomes)
        statuses: dict[str, int] = {}
        for o in outcomes:
            if o.audit is not None:
                statuses[o.audit.status] = statuses.get(o.audit.status, 0) + 1
        return WriteResult(statuses=statuses, new_events=sum(len(o.events) for o in outcomes))


class FakePublisher:
    def __init__(self, log: list[str], *, failures: int = 0) -> None:
        self.log = log
        self.failures = failures
        self.attempts = 0
        self.published: list[Outcome] = []

    async def publish(self, outcomes: Sequence[Outcome]) -> int:
        self.attempts += 1
        self.log.append("publish")
        if self.failures:
            self.failures -= 1
            raise KafkaConnectionError("broker down")
        self.published = list(outcomes)
        return sum(len(o.events) + (o.dead_letter is not None) for o in outcomes)


class FakeSeen:
    def __init__(self, log: list[str], seen: Sequence[str] = ()) -> None:
        self.log = log
        self.seen = set(seen)
        self.marked: list[str] = []

    def is_seen(self, key: str) -> bool:
        return key in self.seen

    def mark(self, items: Sequence[tuple[str, RawMessage]]) -> None:
        self.log.append("mark")
        self.marked.extend(key for key, _ in items)


def key(delivery_id: str) -> str:
    return f"shopify|{SHOP}|{delivery_id}"


def build(
    sink: FakeSink | None = None, publisher: FakePublisher | None = None, seen: Sequence[str] = ()
) -> tuple[BatchProcessor, FakeSink, FakePublisher, FakeSeen]:
    log: list[str] = []
    sink = sink or FakeSink(log)
    publisher = publisher or FakePublisher(sink.log)
    fake_seen = FakeSeen(sink.log, seen)
    processor = BatchProcessor(sink, publisher, fake_seen, backoff=NO_WAIT)  # type: ignore[arg-type]
    return processor, sink, publisher, fake_seen


def batch(*ids: str) -> list[RawMessage]:
    return [delivery(d, order_id=1000 + i, offset=i) for i, d in enumerate(ids)]


async def test_a_clean_batch_is_written_published_and_marked() -> None:
    processor, sink, publisher, seen = build()
    report = await processor.handle(batch("d1", "d2"))
    assert report == BatchReport(received=2, published=2, statuses={"COMPLETED": 2})
    assert len(sink.written) == 2
    assert len(publisher.published) == 2
    assert seen.marked == [key("d1"), key("d2")]


@pytest.mark.parametrize(
    "error", [OSError("refused"), CannotConnectNowError("starting up"), TimeoutError()]
)
async def test_retriable_sink_errors_are_retried_until_success(error: Exception) -> None:
    processor, sink, _, seen = build(FakeSink([], failures=3, error=error))
    report = await processor.handle(batch("d1", "d2"))
    assert sink.attempts == 4
    assert report.statuses == {"COMPLETED": 2}
    assert seen.marked == [key("d1"), key("d2")]


async def test_seen_is_marked_only_after_publish() -> None:
    processor, sink, _, _ = build(FakeSink([], failures=1))
    await processor.handle(batch("d1"))
    assert sink.log == ["write", "write", "publish", "mark"]


async def test_the_same_delivery_twice_in_a_batch_is_processed_once() -> None:
    processor, sink, _, seen = build()
    report = await processor.handle([delivery("d1", offset=0), delivery("d1", offset=1)])
    assert report.duplicates == 1
    assert [o.source.offset for o in sink.written] == [0]
    assert seen.marked == [key("d1")]


async def test_a_delivery_already_seen_is_skipped() -> None:
    processor, sink, publisher, seen = build(seen=[key("d1")])
    report = await processor.handle(batch("d1"))
    assert (report.duplicates, report.published) == (1, 0)
    assert sink.attempts == 0
    assert publisher.published == []
    assert seen.marked == []


async def test_a_poison_delivery_is_isolated_by_halving() -> None:
    processor, sink, publisher, seen = build(FakeSink([], poison="d3"))
    report = await processor.handle(batch("d1", "d2", "d3", "d4"))
    written = {o.audit.delivery_id: o.audit.status for o in sink.written if o.audit}
    assert written == {
        "d1": "COMPLETED",
        "d2": "COMPLETED",
        "d3": "DEAD_LETTERED",
        "d4": "COMPLETED",
    }
    (poison,) = [o for o in publisher.published if o.dead_letter is not None]
    assert poison.dead_letter is not None
    assert poison.dead_letter.error_class == "DataError"
    assert report.dead_letters == 1
    assert report.statuses == {"COMPLETED": 3, "DEAD_LETTERED": 1}
    assert seen.marked == [key("d1"), key("d2"), key("d3"), key("d4")]


async def test_poison_keeps_its_dead_letter_when_even_the_failed_audit_is_refused() -> None:
    processor, sink, publisher, _ = build(FakeSink([], poison="d2", refuse_poison_audit=True))
    report = await processor.handle(batch("d1", "d2"))
    assert [o.audit.delivery_id for o in sink.written if o.audit] == ["d1"]
    assert [o.dead_letter is not None for o in publisher.published] == [False, True]
    assert report.dead_letters == 1


async def test_undecodable_message_is_published_as_a_dead_letter_and_not_marked() -> None:
    processor, _, publisher, seen = build()
    report = await processor.handle([raw(b"not an envelope"), *batch("d1")])
    assert report.dead_letters == 1
    assert [o.dead_letter is not None for o in publisher.published] == [True, False]
    assert seen.marked == [key("d1")]


async def test_publish_failing_with_kafka_errors_is_retried() -> None:
    log: list[str] = []
    processor, _, publisher, _ = build(FakeSink(log), FakePublisher(log, failures=2))
    report = await processor.handle(batch("d1"))
    assert publisher.attempts == 3
    assert report.published == 1
    assert log == ["write", "publish", "publish", "publish", "mark"]
    assert issubclass(KafkaConnectionError, KafkaError)


async def test_cancelled_during_an_outage_never_marks() -> None:
    processor, sink, publisher, seen = build(FakeSink([], failures=10**9))
    task = asyncio.create_task(processor.handle(batch("d1", "d2")))
    while sink.attempts < 3:
        sink.attempted.clear()
        await sink.attempted.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen.marked == []
    assert publisher.attempts == 0


async def test_a_second_version_of_an_entity_is_stored_in_its_own_transaction() -> None:
    processor, sink, _, _ = build()
    messages = [
        delivery("d1", order_id=1, offset=0),
        delivery("d2", order_id=2, offset=1),
        delivery("d3", order_id=1, offset=2),  # order 1 again: in a second transaction
        delivery("d4", order_id=3, offset=3),
    ]
    report = await processor.handle(messages)
    assert sink.attempts == 2
    assert [o.source.offset for o in sink.written] == [0, 1, 3, 2]  # order 1's second after
    assert report.statuses == {"COMPLETED": 4}


async def test_a_replay_run_marks_every_envelope_as_its_replay_and_skips_no_seen_delivery() -> None:
    log: list[str] = []
    sink = FakeSink(log)
    seen = FakeSeen(log, [key("d1")])
    processor = BatchProcessor(
        sink,  # type: ignore[arg-type]
        FakePublisher(log),  # type: ignore[arg-type]
        seen,
        backoff=NO_WAIT,
        replay_run="20261202T070000-abcd",
    )
    report = await processor.handle(batch("d1"))
    assert report.duplicates == 0
    audit = sink.written[0].audit
    assert audit is not None
    assert audit.replay
    assert sink.written[0].source.value == batch("d1")[0].value  # the bytes stay as they were
