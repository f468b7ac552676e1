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
   stream while its position is being decided.

2. **Commit offsets from a de-duplicated ack list** (the commit "stall" after a Kafka restart).
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
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from intervaltree import IntervalTree


class FetchSet(Protocol):
    """The part of a Faust consumer that decides which partitions the fetcher delivers."""

    def _get_active_partitions(self) -> set[TP]: ...

    def _is_changelog_tp(self, tp: TP) -> bool: ...

    def pause_partitions(self, tps: Iterable[TP]) -> None: ...

    def resume_partitions(self, tps: Iterable[TP]) -> None: ...


async def seek_with_streams_held(consumer: FetchSet, seek: Callable[[], Awaitable[None]]) -> None:
    """Run `seek` while the active stream partitions deliver nothing; restore them after."""
    held = {tp for tp in consumer._get_active_partitions() if not consumer._is_changelog_tp(tp)}
    consumer.pause_partitions(held)
    try:
        await seek()
    finally:
        consumer.resume_partitions(held)


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

    async def perform_seek(self) -> None:
        await seek_with_streams_held(self, super().perform_seek)

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
