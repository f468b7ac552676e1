"""Notice a worker that stopped receiving messages while its partitions still have some, or
whose commits do not keep up with what it processed (pure logic; agents/supervision.py acts).

Both were seen before the corrections in agents/faust_consumer.py: one batch after a
rebalance and then nothing, and commits crawling one offset a second. The offset guard cannot
see a stall (no later message ever arrives), so progress is checked on a timer.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping

from agents.offsets import Partition


class StallWatchdog:
    """Stalled = not inside a batch, none received for `timeout_s`, yet messages are waiting.

    A batch that takes long (a Postgres outage waited out in place) is progress, not a stall.
    """

    def __init__(self, timeout_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._timeout = timeout_s
        self._clock = clock
        self._last = clock()
        self._last_check: float | None = None
        self._busy = 0
        # partition -> (when, next offset to process then), oldest first
        self._processed: dict[Partition, deque[tuple[float, int]]] = {}

    def batch_started(self) -> None:
        self._busy += 1
        self._last = self._clock()

    def batch_done(self) -> None:
        self._busy -= 1
        self._last = self._clock()

    def reset(self) -> None:
        """A rebalance or recovery is a reason to wait: start the clock again."""
        self._last = self._clock()
        self._processed.clear()

    def checking(self) -> None:
        """Called at the start of every check and after each wait inside it. A gap since the
        previous call of more than half the timeout (a check that waited for Kafka through an
        outage, a blocked loop) means the time in between was not watched, so it cannot count
        towards a stall: start again."""
        now = self._clock()
        if self._last_check is not None and now - self._last_check > self._timeout / 2:
            self.reset()
        self._last_check = now

    def stalled(self, messages_waiting: bool) -> bool:
        if self._busy or not messages_waiting:
            self._last = self._clock() if not messages_waiting else self._last
            return False
        return self._clock() - self._last > self._timeout

    def commits_stuck(self, positions: Mapping[Partition, tuple[int | None, int]]) -> bool:
        """True when a partition has not committed what it had processed `timeout_s` ago.
        `positions` maps partition -> (committed offset or None, next offset to process).

        Judged against what was processed a timeout ago, not against the commit moving: a
        commit that crawls (seen here: one offset a second, from a duplicated ack list in
        Faust) moves every time and still never catches up.
        """
        if self._busy:  # a batch in hand (say, waiting out Postgres) commits when it is done
            self._processed.clear()
            return False
        now = self._clock()
        stuck = False
        for partition, (committed, processed_to) in positions.items():
            history = self._processed.setdefault(partition, deque())
            if not history or history[-1][1] != processed_to:
                history.append((now, processed_to))
            while len(history) > 1 and now - history[1][0] > self._timeout:
                history.popleft()  # keep the newest sample older than the timeout
            since, due = history[0]
            if now - since > self._timeout and (committed is None or committed < due):
                stuck = True
        return stuck
