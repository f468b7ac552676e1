"""The replay runner without Kafka: partitions merged by timestamp, checkpoints after each
batch, stopping between batches, filters; normalizers retried in place; the envelope's run id."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Any

import pytest
from aiokafka import TopicPartition

from pipeline import envelope as envelopes
from pipeline.errors import InvalidPayload
from pipeline.outcomes import RawMessage
from pipeline.platforms.base import Normalized
from pipeline.replay import NeverSeen, ReplayRun, inline_retries
from pipeline.replay_plan import Filters, PartitionRange, Plan
from tests.unit.factories import envelope


@dataclass
class Record:
    offset: int
    timestamp: int
    value: bytes
    key: bytes | None = None


class FakeConsumer:
    """Partitions of records; `getmany` hands out at most `max_records` per partition."""

    def __init__(self, records: dict[int, list[Record]]) -> None:
        self.records = records
        self.positions: dict[int, int] = {}
        self.assigned: list[TopicPartition] = []

    def assign(self, tps: list[TopicPartition]) -> None:
        self.assigned = tps

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp.partition] = offset

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp.partition]

    async def getmany(
        self, *tps: TopicPartition, timeout_ms: int, max_records: int
    ) -> dict[TopicPartition, list[Record]]:
        out = {}
        for tp in tps:
            at = self.positions[tp.partition]
            got = [r for r in self.records[tp.partition] if r.offset >= at][:max_records]
            if got:
                out[tp] = got
                self.positions[tp.partition] = got[-1].offset + 1
        return out


def _value(order_id: int, platform: str = "shopify") -> bytes:
    return envelopes.encode(replace(envelope(order_id=order_id), platform=platform))


def _records(times: list[int], first_order: int) -> list[Record]:
    return [Record(i, t, _value(first_order + i)) for i, t in enumerate(times)]


def _run(consumer: FakeConsumer, plan: Plan, **kwargs: Any) -> tuple[ReplayRun, list[Any]]:
    handled: list[list[RawMessage]] = []
    saved: list[dict[int, int]] = []

    async def handle(messages: list[RawMessage]) -> dict[str, int]:
        handled.append(messages)
        return {"COMPLETED": len(messages)}

    async def checkpoint(offsets: dict[int, int]) -> None:
        saved.append(dict(offsets))

    run = ReplayRun(consumer, plan, handle, checkpoint, **kwargs)  # type: ignore[arg-type]
    return run, [handled, saved]


async def test_partitions_are_merged_in_timestamp_order_and_checkpointed() -> None:
    consumer = FakeConsumer({0: _records([10, 30, 50], 100), 1: _records([20, 40], 200)})
    plan = Plan("raw", (PartitionRange(0, 0, 3), PartitionRange(1, 0, 2)))
    run, (handled, saved) = _run(consumer, plan, batch_max=10)
    progress, complete = await run.run()
    assert complete
    order = [(m.partition, m.offset) for batch in handled for m in batch]
    assert order == [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2)]
    assert saved[-1] == {0: 3, 1: 2}
    assert (progress.read, progress.processed, progress.statuses) == (5, 5, {"COMPLETED": 5})


async def test_a_resumed_run_starts_at_the_checkpoint_and_stops_at_the_plan_end() -> None:
    consumer = FakeConsumer({0: _records([1, 2, 3, 4, 5, 6], 100)})
    plan = Plan("raw", (PartitionRange(0, 0, 5),))  # offset 5 arrived after planning
    run, (handled, _) = _run(consumer, plan, resume_from={0: 3})
    await run.run()
    assert [m.offset for batch in handled for m in batch] == [3, 4]


async def test_stop_ends_the_run_after_the_batch_in_flight() -> None:
    consumer = FakeConsumer({0: _records(list(range(10)), 100)})
    plan = Plan("raw", (PartitionRange(0, 0, 10),))
    run, (handled, saved) = _run(consumer, plan, batch_max=3)

    original = run.handle

    async def handle_then_stop(messages: list[RawMessage]) -> dict[str, int]:
        run.stop.set()  # Ctrl-C while this batch is being stored
        return await original(messages)

    run.handle = handle_then_stop
    progress, complete = await run.run()
    assert not complete
    assert [len(b) for b in handled] == [3]
    assert saved == [{0: 3}]
    assert progress.read == 3


async def test_filters_choose_deliveries_but_the_checkpoint_covers_everything_read() -> None:
    records = [
        Record(0, 1, _value(1)),
        Record(1, 2, _value(2, platform="lazada")),
        Record(2, 3, b"not an envelope"),
        Record(3, 4, _value(3)),
    ]
    consumer = FakeConsumer({0: records})
    plan = Plan("raw", (PartitionRange(0, 0, 4),), Filters(platforms=("shopify",)))
    run, (handled, saved) = _run(consumer, plan)
    progress, _ = await run.run()
    assert [m.offset for batch in handled for m in batch] == [0, 3]
    assert (progress.read, progress.matched) == (4, 2)
    assert saved[-1] == {0: 4}


async def test_without_filters_unreadable_messages_are_replayed_too() -> None:
    consumer = FakeConsumer({0: [Record(0, 1, b"junk"), Record(1, 2, _value(1))]})
    run, (handled, _) = _run(consumer, Plan("raw", (PartitionRange(0, 0, 2),)))
    await run.run()
    assert [m.offset for batch in handled for m in batch] == [0, 1]


async def test_a_rate_cap_paces_the_run() -> None:
    consumer = FakeConsumer({0: _records(list(range(6)), 100)})
    run, _ = _run(consumer, Plan("raw", (PartitionRange(0, 0, 6),)), batch_max=2, rate_per_s=40)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await run.run()
    assert loop.time() - started >= 0.1  # 6 deliveries at 40/s: 0.15 s, minus the first batch


class FlakyAdapter:
    name = "shopify"

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    def normalize(self, item: envelopes.Envelope) -> Normalized:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return Normalized([])


def test_a_normalizer_that_may_pass_is_retried_in_place() -> None:
    flaky = FlakyAdapter(2, RuntimeError("glitch"))
    adapter = inline_retries(lambda platform: flaky, attempts=3)("shopify")
    assert adapter is not None
    assert adapter.normalize(envelope()) == Normalized([])
    assert flaky.calls == 3
    assert adapter.name == "shopify"


def test_a_normalizer_failing_for_good_is_not_retried() -> None:
    flaky = FlakyAdapter(5, InvalidPayload("bad body"))
    adapter = inline_retries(lambda platform: flaky, attempts=3)("shopify")
    assert adapter is not None
    with pytest.raises(InvalidPayload):
        adapter.normalize(envelope())
    assert flaky.calls == 1


def test_inline_retries_give_up_after_their_attempts() -> None:
    flaky = FlakyAdapter(5, RuntimeError("still down"))
    adapter = inline_retries(lambda platform: flaky, attempts=3)("shopify")
    assert adapter is not None
    with pytest.raises(RuntimeError):
        adapter.normalize(envelope())
    assert flaky.calls == 3
    assert inline_retries(lambda platform: None)("nope") is None


def test_never_seen_sees_nothing_and_remembers_nothing() -> None:
    seen = NeverSeen()
    seen.mark([("k", RawMessage(b"", None, "raw", 0, 0))])
    assert not seen.is_seen("k")


def test_the_replay_run_survives_encoding_and_is_absent_otherwise() -> None:
    item = replace(envelope(), replay=True, replay_run="20261202T070000-abcd")
    assert envelopes.decode(envelopes.encode(item)) == item
    assert b"replay_run" not in envelopes.encode(envelope())
    assert envelopes.decode(envelopes.encode(envelope())).replay_run is None
