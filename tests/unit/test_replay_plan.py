"""Planning a replay against a fake raw topic: ranges per partition, time bounds, explicit
offsets, retention losses, filters, and the plan's round trip through its stored form."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.replay_plan import (
    Filters,
    PartitionRange,
    Plan,
    PlanError,
    Selection,
    make_plan,
    parse_offsets,
    parse_when,
)
from tests.unit.factories import envelope

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
T0 = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp() * 1000)


class FakeTopic:
    """Partitions as lists of message timestamps; `deleted` offsets at the head are gone."""

    def __init__(self, times: dict[int, list[int]], deleted: dict[int, int] | None = None) -> None:
        self.times = times
        self.deleted = deleted or {}

    async def partitions(self) -> list[int]:
        return sorted(self.times)

    async def beginning(self, partitions: list[int]) -> dict[int, int]:
        return {p: self.deleted.get(p, 0) for p in partitions}

    async def end(self, partitions: list[int]) -> dict[int, int]:
        return {p: len(self.times[p]) for p in partitions}

    async def for_time(self, partitions: list[int], ms: int) -> dict[int, int | None]:
        found: dict[int, int | None] = {}
        for p in partitions:
            offsets = [
                o for o, t in enumerate(self.times[p]) if t >= ms and o >= self.deleted.get(p, 0)
            ]
            found[p] = offsets[0] if offsets else None
        return found


TOPIC = FakeTopic({0: [T0 + i * 1000 for i in range(10)], 1: [T0 + i * 2000 for i in range(5)]})


async def test_no_selection_is_the_whole_topic() -> None:
    plan = await make_plan(TOPIC, "raw", Selection())
    assert plan.ranges == (PartitionRange(0, 0, 10), PartitionRange(1, 0, 5))
    assert plan.messages == 15
    assert plan.lost == []


async def test_a_time_range_maps_to_offsets_in_each_partition() -> None:
    start = datetime.fromtimestamp((T0 + 3000) / 1000, UTC)
    end = datetime.fromtimestamp((T0 + 6000) / 1000, UTC)
    plan = await make_plan(TOPIC, "raw", Selection(start=start, end=end))
    # partition 0: 3000..5000 -> offsets 3-5; partition 1: 4000 -> offset 2 only
    assert plan.ranges == (PartitionRange(0, 3, 6), PartitionRange(1, 2, 3))


async def test_a_start_after_every_message_is_an_empty_range_at_the_end() -> None:
    late = datetime.fromtimestamp((T0 + 60_000) / 1000, UTC)
    plan = await make_plan(TOPIC, "raw", Selection(start=late))
    assert plan.ranges == (PartitionRange(0, 10, 10), PartitionRange(1, 5, 5))
    assert plan.messages == 0


async def test_explicit_offsets_name_only_their_partitions_and_stop_at_the_end() -> None:
    plan = await make_plan(TOPIC, "raw", Selection(offsets={1: (2, 99)}))
    assert plan.ranges == (PartitionRange(1, 2, 5),)


async def test_offsets_already_deleted_are_reported_as_lost() -> None:
    topic = FakeTopic(TOPIC.times, deleted={0: 4})
    plan = await make_plan(topic, "raw", Selection(offsets={0: (1, 6)}))
    assert plan.ranges == (PartitionRange(0, 4, 6, lost=(1, 4)),)


async def test_a_whole_topic_rebuild_reports_a_cut_history() -> None:
    topic = FakeTopic(TOPIC.times, deleted={1: 2})
    plan = await make_plan(topic, "raw", Selection())
    assert [r.partition for r in plan.lost] == [1]
    assert plan.ranges[1] == PartitionRange(1, 2, 5, lost=(0, 2))


async def test_an_intact_partition_loses_nothing() -> None:
    topic = FakeTopic(TOPIC.times, deleted={1: 2})
    plan = await make_plan(topic, "raw", Selection(offsets={0: (0, None)}))
    assert plan.lost == []


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        (Selection(offsets={7: (0, 1)}), "no partition 7"),
        (Selection(offsets={0: (0, 1)}, start=NOW), "either --offsets or --from/--to"),
        (Selection(start=NOW, end=NOW - timedelta(hours=1)), "--to must be later"),
    ],
)
async def test_impossible_selections_are_plan_errors(selection: Selection, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        await make_plan(TOPIC, "raw", selection)


def test_offsets_parse_ranges_with_open_ends() -> None:
    assert parse_offsets(["0:10-20,1:5-", "2:-7"]) == {0: (10, 20), 1: (5, None), 2: (None, 7)}


@pytest.mark.parametrize("text", ["0", "a:1-2", "0:5-3", "0:1-2,0:3-4"])
def test_bad_offsets_are_refused(text: str) -> None:
    with pytest.raises(PlanError):
        parse_offsets([text])


def test_times_are_iso_or_ages() -> None:
    assert parse_when("6h", NOW) == NOW - timedelta(hours=6)
    assert parse_when("90s", NOW) == NOW - timedelta(seconds=90)
    assert parse_when("2026-11-25T10:00", NOW) == datetime(2026, 11, 25, 10, tzinfo=UTC)
    with pytest.raises(PlanError, match="is not a time"):
        parse_when("yesterday", NOW)


def test_filters_match_platform_shop_topic_and_entity_id() -> None:
    item = envelope(order_id=820982911946)
    assert Filters().matches(item)
    assert Filters(platforms=("shopify",), topics=("orders/updated",)).matches(item)
    assert Filters(entities=("820982911946",)).matches(item)
    assert Filters(entities=(item.entity_key,)).matches(item)
    assert not Filters(platforms=("lazada",)).matches(item)
    assert not Filters(shops=("other.myshopify.com",)).matches(item)
    assert not Filters(entities=("82098291194",)).matches(item)


def test_a_status_filter_narrows_but_is_not_an_envelope_matter() -> None:
    only_status = Filters(statuses=("IGNORED",))
    assert only_status.narrows
    assert only_status.matches(envelope())
    assert not Filters().narrows


def test_a_plan_survives_its_stored_form() -> None:
    plan = Plan(
        "raw",
        (PartitionRange(0, 3, 9), PartitionRange(2, 4, 8, lost=(0, 4))),
        Filters(platforms=("shopify",), statuses=("DEAD_LETTERED", "IGNORED")),
    )
    assert Plan.from_json(plan.to_json()) == plan
    assert Plan.from_json(replace(plan, filters=Filters()).to_json()).filters == Filters()
