"""Our corrections to Faust's consumer, on their pure logic."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from faust.types import TP

from agents.app import create_faust_app
from agents.faust_consumer import Consumer, seek_with_streams_held
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
    during: list[set[TP]] = []

    async def seek() -> None:
        during.append(set(consumer.active))

    await seek_with_streams_held(consumer, seek)
    assert during == [{CHANGELOG0}]
    assert consumer.active == {RAW0, RAW1, CHANGELOG0}


async def test_a_failed_seek_still_resumes_the_streams() -> None:
    consumer = FetchSet([RAW0])

    async def seek() -> None:
        raise TimeoutError

    with pytest.raises(TimeoutError):
        await seek_with_streams_held(consumer, seek)
    assert consumer.active == {RAW0}


async def test_a_paused_stream_partition_stays_paused() -> None:
    consumer = FetchSet([RAW0])  # RAW1 assigned but paused by Faust (e.g. recovering)

    async def seek() -> None:
        pass

    await seek_with_streams_held(consumer, seek)
    assert consumer.active == {RAW0}


def test_the_app_builds_the_corrected_consumer() -> None:
    app = create_faust_app(load_settings(), resources=None, restart=print)  # type: ignore[arg-type]
    assert isinstance(app.consumer, Consumer)
