"""Our corrections to Faust's consumer, on their pure logic."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from types import SimpleNamespace

import pytest
from aiokafka.consumer.fetcher import Fetcher, FetchResult
from faust.types import TP
from intervaltree import IntervalTree

from agents.app import create_faust_app
from agents.faust_consumer import (
    Consumer,
    Fetches,
    FetchView,
    next_commit,
    seek_with_streams_held,
)
from pipeline.settings import load_settings

RAW0, RAW1, CHANGELOG0 = TP("raw", 0), TP("raw", 1), TP("changelog", 0)


class FetchSet:
    """The fetch set of a Faust consumer: which partitions the fetcher may deliver."""

    def __init__(self, active: Iterable[TP]) -> None:
        self.active = set(active)

    def _get_active_partitions(self) -> set[TP]:
        return self.active

    def _is_changelog_tp(self, tp: TP) -> bool:
        return tp.topic == "changelog"

    def pause_partitions(self, tps: Iterable[TP]) -> None:
        self.active.difference_update(tps)

    def resume_partitions(self, tps: Iterable[TP]) -> None:
        self.active.update(tps)


async def test_streams_deliver_nothing_while_the_seek_runs() -> None:
    consumer = FetchSet([RAW0, RAW1, CHANGELOG0])
    during: list[tuple[set[TP], set[TP]]] = []

    async def seek(held: set[TP]) -> None:
        during.append((set(consumer.active), held))

    await seek_with_streams_held(consumer, seek)
    assert during == [({CHANGELOG0}, {RAW0, RAW1})]
    assert consumer.active == {RAW0, RAW1, CHANGELOG0}


async def test_a_failed_seek_still_resumes_the_streams() -> None:
    consumer = FetchSet([RAW0])

    async def seek(held: set[TP]) -> None:
        raise TimeoutError

    with pytest.raises(TimeoutError):
        await seek_with_streams_held(consumer, seek)
    assert consumer.active == {RAW0}


async def test_a_paused_stream_partition_stays_paused() -> None:
    consumer = FetchSet([RAW0])  # RAW1 assigned but paused by Faust (e.g. recovering)

    async def seek(held: set[TP]) -> None:
        assert held == {RAW0}

    await seek_with_streams_held(consumer, seek)
    assert consumer.active == {RAW0}


def aiokafka_drains(partitions: object, buffered: Iterable[TP]) -> list[TP]:
    """The partitions aiokafka's Fetcher.fetched_records drains for a fetch set, by its rule."""
    unassigned = SimpleNamespace(active=False)  # drained, yet nothing to return
    fetcher = SimpleNamespace(
        _subscriptions=SimpleNamespace(reassignment_in_progress=False, is_assigned=lambda tp: True),
        _records={
            tp: FetchResult(tp, assignment=unassigned, partition_records=None, backoff=0)
            for tp in buffered
        },
        _notify=lambda future: None,
        _wait_consume_future=None,
    )
    drained: list[TP] = []
    records = fetcher._records

    class Spy(dict[TP, object]):
        def __getitem__(self, tp: TP) -> object:
            drained.append(tp)
            return records[tp]

    fetcher._records = Spy(records)
    asyncio.run(Fetcher.fetched_records(fetcher, partitions, timeout=0))
    return drained


def test_aiokafka_reads_an_empty_set_as_every_partition() -> None:
    # The trap: Faust paused the last active partition while its fetch waited.
    assert aiokafka_drains(set(), [RAW0, RAW1]) == [RAW0, RAW1]


def test_an_empty_fetch_view_drains_nothing() -> None:
    live = {RAW0}
    view = FetchView(live)
    assert aiokafka_drains(view, [RAW0, RAW1]) == [RAW0]
    live.clear()  # paused after the fetch began: the view follows the live set
    assert aiokafka_drains(view, [RAW0, RAW1]) == []


async def test_a_seek_waits_for_fetches_begun_by_other_tasks() -> None:
    fetches = Fetches()
    order: list[str] = []

    async def fetch() -> None:
        token = fetches.begin()
        await asyncio.sleep(0.05)
        order.append("fetch ended")
        fetches.end(token)

    task = asyncio.create_task(fetch())
    await asyncio.sleep(0)
    own = fetches.begin()  # Faust also seeks from inside the fetcher's own getmany
    assert await fetches.others_ended(timeout_s=5)
    order.append("seek")
    fetches.end(own)
    await task
    assert order == ["fetch ended", "seek"]


async def test_a_fetch_that_never_ends_does_not_hold_the_seek_forever() -> None:
    fetches = Fetches()

    async def stuck() -> None:
        fetches.begin()
        await asyncio.sleep(10)

    task = asyncio.create_task(stuck())
    await asyncio.sleep(0)
    assert not await fetches.others_ended(timeout_s=0.01)
    task.cancel()


def test_the_app_builds_the_corrected_consumer() -> None:
    app = create_faust_app(load_settings(), resources=None, restart=print)  # type: ignore[arg-type]
    assert isinstance(app.consumer, Consumer)


def faust_rounds(acked: list[int], committed: int | None) -> int:
    """Commits Faust's own rule needs to cover `acked` (one run of consecutive numbers each)."""
    from faust.utils.functional import consecutive_numbers

    acked, rounds = sorted(acked), 0
    while acked:
        run = next(consecutive_numbers(acked))
        acked[: len(run)] = []
        rounds += 1
    return rounds


def test_offsets_acked_and_recorded_as_a_gap_commit_at_once() -> None:
    # The seek race: 340..502 delivered and acked, and 341..502 recorded as a gap too.
    acked = list(range(340, 503))
    gaps = IntervalTree.from_tuples([(341, 503)])
    assert faust_rounds(acked + list(range(341, 503)), 340) == 163  # what Faust did
    assert next_commit(acked, gaps, 340) == list(range(340, 503))
    assert acked == []
    assert not gaps


def test_a_gap_below_the_highest_ack_counts_as_acked() -> None:
    acked = [10, 11, 15]
    gaps = IntervalTree.from_tuples([(12, 15), (30, 40)])
    assert next_commit(acked, gaps, 10) == [10, 11, 12, 13, 14, 15]
    assert sorted((g.begin, g.end) for g in gaps) == [(30, 40)]


def test_the_first_run_is_committed_and_the_rest_kept() -> None:
    acked = [7, 5, 6, 9, 10]
    assert next_commit(acked, IntervalTree(), 5) == [5, 6, 7]
    assert acked == [9, 10]
    assert next_commit(acked, IntervalTree(), 8) == [9, 10]  # Faust's one-offset tolerance


def test_nothing_is_committed_past_a_hole_at_the_head() -> None:
    acked = [20, 21]
    assert next_commit(acked, IntervalTree(), 12) == []
    assert acked == [20, 21]
    assert next_commit([], IntervalTree(), 12) == []
