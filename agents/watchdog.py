"""Notice a worker that stopped receiving messages while its partitions still have some.

A stall seen here after a SIGKILL restart: Faust delivered one batch after the rebalance and
then nothing more, with lag outstanding and no error logged. The offset guard cannot see it
(no later message ever arrives), so the worker checks its own progress and restarts itself.
"""

from __future__ import annotations

import time
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
        self._busy = 0
        # partition -> (committed offset last seen, when it was first seen at that value)
        self._commits: dict[Partition, tuple[int | None, float]] = {}

    def batch_started(self) -> None:
        self._busy += 1
        self._last = self._clock()

    def batch_done(self) -> None:
        self._busy -= 1
        self._last = self._clock()

    def reset(self) -> None:
        """A rebalance or recovery is a reason to wait: start the clock again."""
        self._last = self._clock()
        self._commits.clear()

    def stalled(self, messages_waiting: bool) -> bool:
        if self._busy or not messages_waiting:
            self._last = self._clock() if not messages_waiting else self._last
            return False
        return self._clock() - self._last > self._timeout

    def commits_stuck(self, positions: Mapping[Partition, tuple[int | None, int]]) -> bool:
        """True when a partition's commit trails what was processed and has not moved for the
        timeout. `positions` maps partition -> (committed offset or None, next offset to process).

        Seen in the ledger: every delivery stored, yet the group's offsets in Kafka stayed behind,
        because Faust counts a commit rejected across a rebalance as done and never resends it
        (nothing lost, but lag stays up until a restart re-reads).
        """
        if self._busy:  # a batch in hand (say, waiting out Postgres) commits when it is done
            self._commits.clear()
            return False
        now = self._clock()
        stuck = False
        for partition, (committed, processed_to) in positions.items():
            seen, since = self._commits.get(partition, (committed, now))
            if seen != committed:
                since = now
            self._commits[partition] = (committed, since)
            behind = committed is None or committed < processed_to
            if behind and now - since > self._timeout:
                stuck = True
        return stuck
