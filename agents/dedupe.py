"""The dedupe memory on a Faust table: delivery key -> [first seen (epoch s), partition].

Faust's own windowed expiry is lost on restart (faust-streaming #385), so expiry here is
explicit: a lookup ignores entries older than the window, and `mark` deletes them from the
table (and so from its changelog) a bounded number at a time.

What the restored table holds is learnt in the background of the batches after a start or
rebalance (at most `LOAD_BUDGET_S` of each batch, one pass for every partition): a pass over a
million RocksDB entries takes over a minute here, which no batch must wait for. Until it
completes nothing expires, which only delays deletes; lookups never depend on it.
"""

from __future__ import annotations

import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from faust.streams import _current_event

from pipeline.outcomes import RawMessage

MAX_DELETES_PER_BATCH = 5_000
LOAD_BUDGET_S = 0.05
_LOAD_STEP = 500  # entries between two looks at the clock


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
        self._expiry: dict[int, deque[tuple[float, str]]] | None = None
        self._loading: Iterator[tuple[Any, Any]] | None = None
        self._held: dict[int, list[tuple[float, str]]] = {}

    def is_seen(self, key: str) -> bool:
        entry = self._table.get(key)
        return entry is not None and entry[0] >= self._clock() - self._window

    def mark(self, items: Sequence[tuple[str, RawMessage]]) -> None:
        self._load(LOAD_BUDGET_S)
        now = self._clock()
        by_partition: dict[int, Any] = {}
        for key, raw in items:
            with acting_for(raw.handle):
                self._table[key] = [now, raw.partition]
            self._remember(raw.partition, now, key)
            by_partition[raw.partition] = raw.handle
        if self._expiry is None:
            return  # still learning what the restored table holds: expire later
        for partition, event in by_partition.items():
            self._expire(partition, event, now - self._window)

    def forget_assignment(self) -> None:
        """Partitions moved: learn the restored table again, from the next batch on."""
        self._expiry = None
        self._loading = None
        self._held = {}

    def _remember(self, partition: int, seen_at: float, key: str) -> None:
        if self._expiry is not None:
            self._expiry.setdefault(partition, deque()).append((seen_at, key))
        else:
            self._held.setdefault(partition, []).append((seen_at, key))

    def _load(self, budget_s: float) -> None:
        """Read more entries of the table into the expiry queues, for about `budget_s`."""
        if self._expiry is not None:
            return
        if self._loading is None:
            self._loading = iter(self._table.items())
        try:
            self._take(self._loading, time.monotonic() + budget_s)
        except RuntimeError:  # a dict-backed table changed under the iterator: read it whole
            self._held = {}
            self._take(list(self._table.items()), None)
        if self._loading is not None:
            return
        self._expiry = {p: deque(sorted(entries)) for p, entries in self._held.items()}
        self._held = {}

    def _take(self, entries: Iterable[tuple[Any, Any]], deadline: float | None) -> None:
        """Hold entries until `deadline` (all when None); clears `_loading` once exhausted."""
        for taken, (key, value) in enumerate(entries, start=1):
            if value is not None:
                self._held.setdefault(int(value[1]), []).append((float(value[0]), str(key)))
            if deadline is not None and taken % _LOAD_STEP == 0 and time.monotonic() > deadline:
                return
        self._loading = None

    def _expire(self, partition: int, event: Any, cutoff: float) -> None:
        assert self._expiry is not None
        queue = self._expiry.setdefault(partition, deque())
        deleted = 0
        with acting_for(event):
            while queue and queue[0][0] < cutoff and deleted < MAX_DELETES_PER_BATCH:
                seen_at, key = queue.popleft()
                entry = self._table.get(key)
                if entry is not None and float(entry[0]) == seen_at:
                    del self._table[key]
                    deleted += 1
