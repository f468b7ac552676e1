"""StreamSupervisor with a fake consumer and stream: held batches, alarms and their safety nets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field

import pytest
from aiokafka.errors import KafkaConnectionError
from faust.types import TP

from agents.offsets import Partition
from agents.supervision import (
    AGENT_ALARM,
    COMMIT_ALARM,
    GUARD_ALARM,
    STALL_ALARM,
    StreamSupervisor,
)


@dataclass
class FakeMessage:
    topic: str
    partition: int
    offset: int
    value: bytes = b"{}"
    key: bytes | None = None
    timestamp: float = 0.0
    refcount: int = 1

    def incref(self) -> None:
        self.refcount += 1


@dataclass
class FakeEvent:
    message: FakeMessage

    def ack(self) -> None:
        self.message.refcount -= 1


class FakeStream:
    def __init__(self, batches: Iterable[list[tuple[int, int]]], topic: str = "raw") -> None:
        self.batches = [[FakeEvent(FakeMessage(topic, p, o)) for p, o in b] for b in batches]

    async def take_events(self, max_: int, within: float) -> AsyncIterator[list[FakeEvent]]:
        for batch in self.batches:
            try:
                yield batch
            finally:  # like Faust: the batch is acked whatever happened
                for event in batch:
                    event.ack()


@dataclass
class FakeConsumer:
    tps: set[TP] = field(default_factory=set)
    highwaters: dict[TP, int] = field(default_factory=dict)
    earliest: dict[TP, int] = field(default_factory=dict)

    def assignment(self) -> set[TP]:
        return self.tps

    def highwater(self, tp: TP) -> int | None:
        return self.highwaters.get(tp)

    async def earliest_offsets(self, *partitions: TP) -> Mapping[TP, int]:
        return {tp: self.earliest.get(tp, 0) for tp in partitions}

    def commit_state(self, tp: TP) -> dict[str, object]:
        return {"committed": 5}


class Replaced(Exception):
    """What the fake `replace` raises: the real one never returns."""


def supervisor(
    consumer: FakeConsumer, committed: dict[Partition, int], timeout_s: float = 10.0
) -> tuple[StreamSupervisor, list[str]]:
    reasons: list[str] = []

    async def group_offsets() -> dict[Partition, int]:
        return dict(committed)

    def replace(reason: str) -> None:
        reasons.append(reason)
        raise Replaced(reason)

    return (
        StreamSupervisor(
            consumer,
            group_offsets,
            stall_timeout_s=timeout_s,
            replace=replace,
            skip_topics=["changelog"],
        ),
        reasons,
    )


async def drain(sup: StreamSupervisor, stream: FakeStream) -> list[list[int]]:
    seen = []

    async def body(events: list[FakeEvent]) -> None:
        seen.append([e.message.offset for e in events])
        assert all(e.message.refcount == 2 for e in events)  # held while the body runs

    await sup.process(stream, 10, 0.1, body)
    return seen


async def test_contiguous_batches_are_processed_then_released() -> None:
    sup, reasons = supervisor(FakeConsumer(), {("raw", 0): 5})
    stream = FakeStream([[(0, 5), (0, 6)], [(0, 7)]])
    assert await drain(sup, stream) == [[5, 6], [7]]
    assert all(e.message.refcount == 0 for b in stream.batches for e in b)
    assert reasons == []
    assert sup.alarms.counts[GUARD_ALARM] == 0


async def test_a_hole_raises_the_guard_alarm_and_releases_nothing_after_it() -> None:
    sup, reasons = supervisor(FakeConsumer(), {("raw", 0): 5})
    stream = FakeStream([[(0, 5)], [(0, 9)]])
    with pytest.raises(Replaced):
        await drain(sup, stream)
    assert reasons == ["raw[0] skipped offsets 6..8"]
    assert sup.alarms.counts[GUARD_ALARM] == 1
    assert stream.batches[1][0].message.refcount > 0  # never acknowledged to the consumer


async def test_the_start_is_the_later_of_committed_and_the_log_start() -> None:
    tp = TP("raw", 0)
    sup, _ = supervisor(FakeConsumer(earliest={tp: 40}), {("raw", 0): 12})
    assert await sup.start_of(("raw", 0)) == 40
    sup2, _ = supervisor(FakeConsumer(earliest={tp: 3}), {("raw", 0): 12})
    assert await sup2.start_of(("raw", 0)) == 12


async def test_one_request_learns_the_start_of_every_partition_of_the_topic() -> None:
    """Each request crosses to Faust's consumer thread: one per partition delayed a restart."""
    tps = {TP("raw", p) for p in range(6)} | {TP("other", 0)}
    consumer = FakeConsumer(tps=tps, earliest={TP("raw", 3): 30})
    asked: list[tuple[TP, ...]] = []
    real = consumer.earliest_offsets

    async def counting(*partitions: TP) -> Mapping[TP, int]:
        asked.append(partitions)
        return await real(*partitions)

    consumer.earliest_offsets = counting  # type: ignore[method-assign]
    sup, _ = supervisor(consumer, {("raw", p): 10 for p in range(6)})
    starts = [await sup.start_of(("raw", p)) for p in range(6)]
    assert starts == [10, 10, 10, 30, 10, 10]
    assert asked == [tuple(TP("raw", p) for p in range(6))]


async def test_an_assignment_forgets_what_was_learned() -> None:
    committed = {("raw", 0): 5}
    sup, _ = supervisor(FakeConsumer(), committed)
    assert await sup.start_of(("raw", 0)) == 5
    committed[("raw", 0)] = 50
    assert await sup.start_of(("raw", 0)) == 5
    sup.on_assigned()
    assert await sup.start_of(("raw", 0)) == 50


async def test_idle_with_lag_past_the_timeout_raises_the_stall_alarm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tp = TP("raw", 0)
    consumer = FakeConsumer(tps={tp, TP("changelog", 0)}, highwaters={tp: 100})
    sup, reasons = supervisor(consumer, {("raw", 0): 10}, timeout_s=5.0)
    now = [0.0]
    monkeypatch.setattr(sup.watchdog, "_clock", lambda: now[0])
    sup.watchdog.reset()
    for now[0] in (0.0, 2.0, 4.0):  # checked every 2 s: every moment is watched
        await sup.check_progress(ready=True)
    now[0] = 6.0
    with pytest.raises(Replaced):
        await sup.check_progress(ready=True)
    assert sup.alarms.counts[STALL_ALARM] == 1
    assert "with lag outstanding" in reasons[0]


async def test_a_check_that_waited_through_an_outage_is_not_a_stall(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tp = TP("raw", 0)
    consumer = FakeConsumer(tps={tp}, highwaters={tp: 100})
    sup, reasons = supervisor(consumer, {("raw", 0): 10}, timeout_s=5.0)
    now = [0.0]
    monkeypatch.setattr(sup.watchdog, "_clock", lambda: now[0])
    sup.watchdog.reset()
    await sup.check_progress(ready=True)
    now[0] = 47.0  # the last check waited for Kafka until it came back
    await sup.check_progress(ready=True)
    assert reasons == []


async def test_commits_are_judged_from_when_kafka_answers_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tp = TP("raw", 0)
    sup, reasons = supervisor(FakeConsumer(tps={tp}, highwaters={tp: 7}), {("raw", 0): 5}, 5.0)
    answers = sup._group_offsets
    away = [False]

    async def group_offsets() -> dict[Partition, int]:
        if away[0]:
            raise KafkaConnectionError("broker restarting")
        return await answers()

    monkeypatch.setattr(sup, "_group_offsets", group_offsets)
    now = [0.0]
    monkeypatch.setattr(sup.watchdog, "_clock", lambda: now[0])
    assert await drain(sup, FakeStream([[(0, 5), (0, 6)]])) == [[5, 6]]
    await sup.check_progress(ready=True)  # processed to 7, Kafka holds 5
    away[0] = True
    for now[0] in (2.0, 4.0, 6.0, 8.0):  # Kafka away: the commit cannot land
        await sup.check_progress(ready=True)
    away[0] = False
    now[0] = 10.0
    await sup.check_progress(ready=True)  # back: Faust gets its chance to commit first
    assert reasons == []


async def test_a_start_learnt_only_when_kafka_came_back_is_not_a_stall(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # After a rebalance the check asks Kafka where each partition starts; through an outage
    # that wait lasted 33 s, and the same check then saw 33 s without messages.
    tp = TP("raw", 0)
    sup, reasons = supervisor(FakeConsumer(tps={tp}, highwaters={tp: 100}), {("raw", 0): 10}, 5.0)
    answers = sup._group_offsets
    now = [0.0]

    async def after_the_outage() -> dict[Partition, int]:
        now[0] += 33.0
        return await answers()

    monkeypatch.setattr(sup, "_group_offsets", after_the_outage)
    monkeypatch.setattr(sup.watchdog, "_clock", lambda: now[0])
    sup.watchdog.reset()
    await sup.check_progress(ready=True)
    assert reasons == []


async def test_not_ready_is_never_a_stall(monkeypatch: pytest.MonkeyPatch) -> None:
    tp = TP("raw", 0)
    sup, reasons = supervisor(FakeConsumer(tps={tp}, highwaters={tp: 100}), {("raw", 0): 10})
    now = [0.0]
    monkeypatch.setattr(sup.watchdog, "_clock", lambda: now[0])
    for now[0] in (0.0, 50.0, 100.0):
        await sup.check_progress(ready=False)
    assert reasons == []


async def test_commits_that_trail_processing_raise_the_commit_alarm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tp = TP("raw", 0)
    consumer = FakeConsumer(tps={tp}, highwaters={tp: 7})
    sup, reasons = supervisor(consumer, {("raw", 0): 5}, timeout_s=5.0)
    now = [0.0]
    monkeypatch.setattr(sup.watchdog, "_clock", lambda: now[0])
    assert await drain(sup, FakeStream([[(0, 5), (0, 6)]])) == [[5, 6]]
    for now[0] in (0.0, 2.0, 4.0):  # processed to 7, Kafka holds 5
        await sup.check_progress(ready=True)
    now[0] = 6.0
    with pytest.raises(Replaced):
        await sup.check_progress(ready=True)
    assert sup.alarms.counts[COMMIT_ALARM] == 1
    assert reasons == ["offsets not committed for 5 s"]


async def test_a_failed_batch_is_never_released_and_the_worker_is_replaced() -> None:
    sup, reasons = supervisor(FakeConsumer(), {("raw", 0): 5})
    stream = FakeStream([[(0, 5), (0, 6)], [(0, 7)]])

    async def body(events: list[FakeEvent]) -> None:
        raise RuntimeError("producer closed")

    with pytest.raises(Replaced):
        await sup.process(stream, 10, 0.1, body)
    assert sup.alarms.counts[AGENT_ALARM] == 1
    assert reasons == ["a batch failed: RuntimeError('producer closed')"]
    assert all(e.message.refcount > 0 for e in stream.batches[0])


async def test_a_rebalance_while_the_start_is_asked_for_is_harmless() -> None:
    consumer = FakeConsumer()
    sup, _ = supervisor(consumer, {("raw", 0): 5})
    real = consumer.earliest_offsets

    async def earliest_during_a_rebalance(*tps: TP) -> Mapping[TP, int]:
        sup.on_assigned()  # the assignment is forgotten while Kafka answers
        return await real(*tps)

    consumer.earliest_offsets = earliest_during_a_rebalance  # type: ignore[method-assign]
    assert await sup.start_of(("raw", 0)) == 5


async def test_a_failing_check_never_ends_the_worker() -> None:
    tp = TP("raw", 0)
    consumer = FakeConsumer(tps={tp})

    def broken(tp: TP) -> int | None:
        raise ValueError("boom")

    consumer.highwater = broken  # type: ignore[method-assign]
    sup, reasons = supervisor(consumer, {("raw", 0): 5})
    await sup.check_progress(ready=True)
    assert reasons == []
