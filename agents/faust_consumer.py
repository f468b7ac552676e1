"""Our corrections to faust-streaming 0.15's Kafka consumer, applied by the app factory, and
the view of the consumer that stream supervision reads.

Each correction names the fault it removes; the logic lives in plain functions tested without
Faust (tests/unit/test_faust_consumer.py).

1. **Seek with the streams held** (the restart loop of a worker with lag and a big table).
   At the end of table recovery Faust resumes the stream partitions and only then awaits
   `perform_seek()` (faust/tables/recovery.py, `on_recovery_completed` and `_resume_streams`).
   The seek asks Kafka for every assigned partition's committed offset one by one, and
   meanwhile the fetcher hands the stream what aiokafka prefetched during recovery, moving
   Faust's read offset ahead. The seek then winds the read offset back to the committed
   offset while aiokafka's position stays ahead (seeking to where it already was is a no-op),
   so the next record looks like a jump: Faust records a "gap" it treats as acknowledged
   (faust-streaming #606, #216) and the batch after it misses those offsets. We take the
   stream partitions out of the fetch set for the duration of the seek, so nothing reaches a
   stream while its position is being decided, and seek only once every fetch begun before
   they were held has ended.

2. **An empty fetch set fetches nothing** (the stall and the skipped offset after a SIGKILL
   restart). Faust hands aiokafka its live set of active partitions for a fetch that waits up
   to a second; aiokafka reads an empty set as "every partition" (`if partitions and tp not
   in partitions`). When the last active partition is paused during that wait (end of
   recovery, or the seek above), aiokafka drains the paused stream partitions, advancing its
   position past their records, and Faust's `getmany` drops them because they are paused.
   If the seek to the committed offset had already run, nothing brings them back: the
   stream waits for records it will never get (the stall) or sees the next one as a jump
   (`raw[2] skipped offsets 32..32`). We hand aiokafka a view of the live set that is never
   read as "every partition", and a partition with no committed offset (Faust skips those in
   its seek) is sent back to where the reset policy starts it.

3. **Commit offsets from a de-duplicated ack list** (the commit "stall" after a Kafka restart).
   Faust merges a recorded gap into the partition's acked offsets; when those offsets were
   also acked for real (the seek race above: delivered, then recorded as a gap) the list holds
   every offset twice. `_new_offset` commits only the first run of consecutive numbers, and a
   run stops at the first repeat, so each commit advanced by one offset: 163 commits (163 s
   at one a second) for a range of 162, which is the lag the ledger saw stay up for minutes
   after the drain (robinhood/faust#625 shows the same duplicated list). `next_commit` is
   Faust's rule on a de-duplicated list.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

import faust
from faust.transport.consumer import RecordMap
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message
from intervaltree import IntervalTree

log = logging.getLogger("agents.faust_consumer")
FETCH_WAIT_S = 5.0  # a fetch waits at most one second for records


class FetchSet(Protocol):
    """The part of a Faust consumer that decides which partitions the fetcher delivers."""

    def _get_active_partitions(self) -> set[TP]: ...

    def _is_changelog_tp(self, tp: TP) -> bool: ...

    def pause_partitions(self, tps: Iterable[TP]) -> None: ...

    def resume_partitions(self, tps: Iterable[TP]) -> None: ...


async def seek_with_streams_held(
    consumer: FetchSet, seek: Callable[[set[TP]], Awaitable[None]]
) -> None:
    """Run `seek(held)` while the active stream partitions deliver nothing; restore them after."""
    held = {tp for tp in consumer._get_active_partitions() if not consumer._is_changelog_tp(tp)}
    consumer.pause_partitions(held)
    try:
        await seek(held)
    finally:
        consumer.resume_partitions(held)


class FetchView:
    """The live set of active partitions as aiokafka reads it, where empty means none.

    Live, as Faust passes it, so a partition paused during a fetch is not drained by it.
    """

    __slots__ = ("_tps",)

    def __init__(self, tps: set[TP]) -> None:
        self._tps = tps

    def __contains__(self, tp: object) -> bool:
        return tp in self._tps

    def __bool__(self) -> bool:
        return True

    def __iter__(self) -> Iterator[TP]:
        return iter(set(self._tps))


class Fetches:
    """The fetches under way, so a seek can wait for those begun before it held its partitions."""

    def __init__(self) -> None:
        self._open: dict[object, tuple[asyncio.Task[Any] | None, asyncio.Event]] = {}

    def begin(self) -> object:
        token = object()
        self._open[token] = (asyncio.current_task(), asyncio.Event())
        return token

    def end(self, token: object) -> None:
        _, done = self._open.pop(token)
        done.set()

    async def others_ended(self, timeout_s: float) -> bool:
        """Wait until the fetches of other tasks open now have ended; False on timeout.

        The current task's own fetch is left out: Faust seeks from inside `getmany` too.
        """
        me = asyncio.current_task()
        waits = [done.wait() for task, done in self._open.values() if task is not me]
        if not waits:
            return True
        try:
            await asyncio.wait_for(asyncio.gather(*waits), timeout_s)
        except TimeoutError:
            return False
        return True


def next_commit(acked: list[int], gaps: IntervalTree, committed: int | None) -> list[int]:
    """The offsets a commit may cover now (empty: none), taken out of `acked` and `gaps`.

    Faust's `_new_offset` rule: gaps below the highest acked offset count as acked, nothing is
    committed while the lowest acked offset is more than one past the committed one, and the
    commit covers the first run of consecutive offsets. Unlike Faust, repeats are dropped
    first, so a run is never cut short by an offset counted twice.
    """
    if not acked:
        return []
    highest = max(acked)
    filled = [n for gap in gaps.overlap(0, highest) for n in range(gap.begin, gap.end)]
    if filled:
        gaps.chop(0, max(max(filled), highest + 1))
    unique = sorted(set(acked).union(filled))
    if committed and unique[0] - committed > 1:
        acked[:] = unique
        return []
    run = 1
    while run < len(unique) and unique[run] == unique[run - 1] + 1:
        run += 1
    acked[:] = unique[run:]
    return unique[:run]


class Consumer(faust_aiokafka.Consumer):
    """faust-streaming's aiokafka consumer with the corrections above."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fetches = Fetches()

    async def perform_seek(self) -> None:
        await seek_with_streams_held(self, self._seek_held)

    async def _seek_held(self, held: set[TP]) -> None:
        """Seek every partition once the fetches that could still drain `held` have ended."""
        if not await self._fetches.others_ended(timeout_s=FETCH_WAIT_S):
            log.warning("a fetch was still under way when the seek began")
        await super().perform_seek()
        uncommitted = [tp for tp in held if self._committed_offset.get(tp) is None]
        if uncommitted:
            await self._seek_to_reset(uncommitted)

    async def _seek_to_reset(self, tps: list[TP]) -> None:
        """Where the reset policy starts a partition with no committed offset."""
        if self.app.conf.consumer_auto_offset_reset == "earliest":
            await self._thread.seek_to_beginning(*map(faust_aiokafka.ensure_aiokafka_TP, tps))

    async def getmany(
        self,
        timeout: float,  # noqa: ASYNC109 - Faust's signature
    ) -> AsyncIterator[tuple[TP, Message]]:
        token = self._fetches.begin()
        try:
            async for item in super().getmany(timeout):
                yield item
        finally:
            self._fetches.end(token)

    async def _getmany(
        self,
        active_partitions: set[TP] | None,
        timeout: float,  # noqa: ASYNC109 - Faust's signature
    ) -> RecordMap:
        view = None if active_partitions is None else FetchView(active_partitions)
        return await super()._getmany(view, timeout)  # type: ignore[arg-type]

    def _new_offset(self, tp: TP) -> int | None:
        batch = next_commit(self._acked[tp], self._gap[tp], self._committed_offset[tp])
        if not batch:
            return None
        self._acked_index[tp].difference_update(batch)
        return batch[-1] + 1


class Transport(faust_aiokafka.Transport):
    """The aiokafka transport, building our consumer."""

    Consumer = Consumer


class LiveConsumer:
    """What supervision reads of an app's consumer (agents.supervision.ConsumerView), looked up
    on each call: Faust builds the consumer once the worker runs."""

    def __init__(self, app: faust.App) -> None:
        self._app = app

    def assignment(self) -> set[TP]:
        return set(self._app.consumer.assignment())

    def highwater(self, tp: TP) -> int | None:
        return self._app.consumer.highwater(tp)

    async def earliest_offsets(self, *partitions: TP) -> Mapping[TP, int]:
        return await self._app.consumer.earliest_offsets(*partitions)

    def commit_state(self, tp: TP) -> dict[str, object]:
        consumer: Any = self._app.consumer  # Faust internals: diagnosis only
        acked = sorted(consumer._acked.get(tp, ()))
        return {
            "committed": consumer._committed_offset.get(tp),
            "acked": len(acked),
            "acked_first": acked[:5],
            "gaps": [(i.begin, i.end) for i in sorted(consumer._gap.get(tp, ()))][:5],
            "read_offset": consumer._read_offset.get(tp),
            "commit_in_flight": consumer._commit_fut is not None,
            "unacked": len(consumer._unacked_messages),
            "commit_tasks": _commit_task_stacks(),
        }


def _commit_task_stacks() -> list[str]:
    """Where each task of Faust's commit path waits: a stuck commit names its await."""
    stacks = []
    for task in asyncio.all_tasks():
        frames = task.get_stack(limit=30)
        if any("commit" in f.f_code.co_name for f in frames):
            stacks.append(" < ".join(f"{f.f_code.co_name}:{f.f_lineno}" for f in reversed(frames)))
    return stacks


def install(app: Any) -> None:
    """Make `app` use the corrected consumer; call before anything touches `app.consumer`."""
    app.transport = Transport(app.conf.broker_consumer, app)
