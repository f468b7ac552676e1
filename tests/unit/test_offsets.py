"""OffsetGuard: holes in a partition's offsets are caught before anything is released."""

from __future__ import annotations

from agents.offsets import OffsetGap, OffsetGuard, Partition
from pipeline.outcomes import RawMessage


def msg(offset: int, partition: int = 0, topic: str = "raw") -> RawMessage:
    return RawMessage(value=b"", key=None, topic=topic, partition=partition, offset=offset)


def guard_from(
    starts: dict[Partition, int | None], asked: list[Partition] | None = None
) -> OffsetGuard:
    async def start_of(partition: Partition) -> int | None:
        if asked is not None:
            asked.append(partition)
        return starts.get(partition)

    return OffsetGuard(start_of)


async def test_contiguous_batches_from_the_committed_offset_pass() -> None:
    guard = guard_from({("raw", 0): 10})
    assert await guard.check([msg(10), msg(11)]) is None
    assert await guard.check([msg(12)]) is None


async def test_a_hole_inside_a_batch_is_reported() -> None:
    guard = guard_from({("raw", 0): 0})
    gap = await guard.check([msg(0), msg(1), msg(3)])
    assert gap == OffsetGap("raw", 0, first_missing=2, next_seen=3)
    assert str(gap) == "raw[0] skipped offsets 2..2"


async def test_a_hole_between_batches_is_reported() -> None:
    guard = guard_from({("raw", 0): 0})
    assert await guard.check([msg(0), msg(1)]) is None
    assert await guard.check([msg(5)]) == OffsetGap("raw", 0, 2, 5)


async def test_skipping_the_first_message_after_assignment_is_reported() -> None:
    guard = guard_from({("raw", 1): 40})
    assert await guard.check([msg(41, partition=1)]) == OffsetGap("raw", 1, 40, 41)


async def test_a_batch_with_a_hole_does_not_advance_the_guard() -> None:
    guard = guard_from({("raw", 0): 0})
    assert await guard.check([msg(0), msg(2)]) is not None
    assert await guard.check([msg(0), msg(1)]) is None


async def test_redelivered_offsets_are_tolerated() -> None:
    guard = guard_from({("raw", 0): 0})
    assert await guard.check([msg(0), msg(1), msg(2)]) is None
    assert await guard.check([msg(1), msg(2), msg(3)]) is None
    assert await guard.check([msg(5)]) == OffsetGap("raw", 0, 4, 5)


async def test_partitions_are_tracked_separately() -> None:
    guard = guard_from({("raw", 0): 0, ("raw", 1): 7})
    assert await guard.check([msg(0, 0), msg(7, 1), msg(1, 0), msg(8, 1)]) is None
    assert await guard.check([msg(2, 0), msg(10, 1)]) == OffsetGap("raw", 1, 9, 10)


async def test_unknown_start_accepts_the_first_offset() -> None:
    guard = guard_from({})
    assert await guard.check([msg(123)]) is None
    assert await guard.check([msg(125)]) == OffsetGap("raw", 0, 124, 125)


async def test_a_new_assignment_asks_kafka_for_the_start_again() -> None:
    asked: list[Partition] = []
    guard = guard_from({("raw", 0): 3}, asked)
    assert await guard.check([msg(3)]) is None
    assert await guard.check([msg(4)]) is None
    guard.forget_assignment()
    assert await guard.check([msg(3)]) is None
    assert asked == [("raw", 0), ("raw", 0)]
