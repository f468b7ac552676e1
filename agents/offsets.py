"""Guard against messages the stream framework skipped.

faust-streaming 0.15 can drop fetched messages when recovery clears its in-memory queues
(faust-streaming #596), and its commit logic commits over a one-offset hole (#606, PR #707).
Together that loses a delivery for good (seen here: a worker restarted after SIGKILL never got
one message, and the group committed past it). The guard sees every batch before any of it is
released: if a partition's offsets are not contiguous from where it was committed, the worker
must not ack anything after the hole; it restarts and re-reads from the committed offset.
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
