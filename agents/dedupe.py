"""The dedupe memory on a Faust table: delivery key -> [first seen (epoch s), partition].

Faust's own windowed expiry is lost on restart (faust-streaming #385), so expiry here is
explicit: a lookup ignores entries older than the window, and `mark` deletes them from the
table (and so from its changelog) a bounded number at a time.
"""

from __future__ import annotations

import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from faust.streams import _current_event

from pipeline.outcomes import RawMessage

MAX_DELETES_PER_BATCH = 5_000


@contextmanager
def acting_for(event: Any) -> Iterator[None]:
    """Make `event` the stream's current event so a table write lands on its partition.

    Faust routes table writes by the current event, which batch iteration does not set.
    """
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


class TableSeenDeliveries:
    """SeenDeliveries backed by a Faust table whose changelog shares the raw topic's partitions."""

    def __init__(
        self, table: Any, window_s: float, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._table = table
        self._window = window_s
        self._clock = clock
        self._expiry: dict[int, deque[tuple[float, str]]] = {}

    def is_seen(self, key: str) -> bool:
        entry = self._table.get(key)
        return entry is not None and entry[0] >= self._clock() - self._window

    def mark(self, items: Sequence[tuple[str, RawMessage]]) -> None:
        now = self._clock()
        by_partition: dict[int, Any] = {}
        for key, raw in items:
            with acting_for(raw.handle):
                self._table[key] = [now, raw.partition]
            self._queue(raw.partition).append((now, key))
            by_partition[raw.partition] = raw.handle
        for partition, event in by_partition.items():
            self._expire(partition, event, now - self._window)

    def forget_assignment(self) -> None:
        """Partitions moved: rebuild expiry queues from the table when next needed."""
        self._expiry.clear()

    def _queue(self, partition: int) -> deque[tuple[float, str]]:
        queue = self._expiry.get(partition)
        if queue is None:
            # First touch since start or rebalance: learn what the restored table holds.
            held = [
                (float(v[0]), str(k))
                for k, v in self._table.items()
                if v is not None and v[1] == partition
            ]
            queue = self._expiry[partition] = deque(sorted(held))
        return queue

    def _expire(self, partition: int, event: Any, cutoff: float) -> None:
        queue = self._queue(partition)
        deleted = 0
        with acting_for(event):
            while queue and queue[0][0] < cutoff and deleted < MAX_DELETES_PER_BATCH:
                seen_at, key = queue.popleft()
                entry = self._table.get(key)
                if entry is not None and float(entry[0]) == seen_at:
                    del self._table[key]
                    deleted += 1
