"""Guard against messages the stream framework skipped.

faust-streaming 0.15 skipped messages after a restart or rebalance (its seek race, corrected in
agents/faust_consumer.py), and its commit logic commits over a recorded gap and a one-offset
hole (#606). Together that can lose a delivery for good. The guard sees every batch before any
of it is released: if a partition's offsets are not contiguous from where it was committed,
nothing after the hole may be acknowledged (agents/supervision.py raises the alarm and has the
worker re-read from the committed offset).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from pipeline.outcomes import RawMessage

Partition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class OffsetGap:
    """Offsets [first_missing, next_seen) of a partition never reached the agent."""

    topic: str
    partition: int
    first_missing: int
    next_seen: int

    def __str__(self) -> str:
        return (
            f"{self.topic}[{self.partition}] skipped offsets "
            f"{self.first_missing}..{self.next_seen - 1}"
        )


class OffsetGuard:
    """Tracks the next expected offset per partition since the last assignment."""

    def __init__(self, start_of: Callable[[Partition], Awaitable[int | None]]) -> None:
        self._start_of = start_of
        self._next: dict[Partition, int] = {}

    def next_expected(self, partition: Partition) -> int | None:
        """The offset the next message of `partition` must have, once one was seen."""
        return self._next.get(partition)

    def forget_assignment(self) -> None:
        """Partitions moved: every partition's start is learned again from Kafka."""
        self._next.clear()

    async def check(self, messages: Iterable[RawMessage]) -> OffsetGap | None:
        """The first hole in this batch, or None; advances only when there is none."""
        advanced = dict(self._next)
        for message in messages:
            key = (message.topic, message.partition)
            expected = advanced.get(key)
            if expected is None:
                expected = await self._start_of(key)
            if expected is not None and message.offset > expected:
                return OffsetGap(message.topic, message.partition, expected, message.offset)
            if expected is None or message.offset >= expected:
                advanced[key] = message.offset + 1
            else:
                advanced[key] = expected  # a re-delivered offset: already accounted for
        self._next = advanced
        return None
