"""`pipeline reemit`'s filter, plan and send loop, against fakes of the table and Kafka."""

from __future__ import annotations

import argparse
import asyncio
import shlex
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from pipeline import cli
from pipeline.publish import canonical_message
from pipeline.reemit import (
    Pace,
    Plan,
    Progress,
    ReemitError,
    ReemitFilter,
    TopicPlan,
    plan_from_counts,
    reemit,
)
from pipeline.reemit_cli import (
    entity_types,
    event_types,
    page_size,
    reemit_filter,
    render_plan,
    resume_command,
)
from pipeline.settings import ENV_VARS
from pipeline.topics import TopicNames
from schemas.events import to_json
from tests.unit.test_decode import _events

NAMES = TopicNames("p.")
T0 = datetime(2026, 12, 1, 10, tzinfo=UTC)
EVENTS = [e for name in ("order_paid", "order_cancelled") for e in _events("shopify", name)]


def _rows(count: int) -> list[dict[str, Any]]:
    """Stored rows as the table holds them: ids 1..count, payloads with jsonb's key order."""
    rows = []
    for i in range(count):
        event = EVENTS[i % len(EVENTS)]
        payload = orjson.dumps(orjson.loads(to_json(event)), option=orjson.OPT_SORT_KEYS)
        rows.append({"id": i + 1, "event_id": event.event_id, "payload": payload.decode()})
    return rows


class FakeStore:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.pages: list[tuple[int, int | None]] = []

    async def count(self, where: ReemitFilter) -> Sequence[Any]:
        return []

    async def page(
        self, where: ReemitFilter, *, after_id: int, upto_id: int | None, limit: int
    ) -> Sequence[Any]:
        self.pages.append((after_id, upto_id))
        return [
            r for r in self.rows if r["id"] > after_id and (upto_id is None or r["id"] <= upto_id)
        ][:limit]


class FakeKafka:
    """Acknowledges every send, except that it fails or never answers from send `stall_at` on."""

    def __init__(self, *, fail_at: int | None = None, stall_at: int | None = None) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []
        self.fail_at = fail_at
        self.stall_at = stall_at

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> Any:
        self.sent.append((topic, key, value))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        n = len(self.sent)
        if self.fail_at is not None and n >= self.fail_at:
            future.set_exception(RuntimeError("broker said no"))
        elif self.stall_at is None or n < self.stall_at:
            future.set_result(None)
        return future


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _fast() -> Pace:
    clock = FakeClock()
    return Pace(1000.0, clock=clock, sleep=clock.sleep)


async def test_every_event_goes_out_as_the_worker_sent_it_in_id_order() -> None:
    store, kafka = FakeStore(_rows(7)), FakeKafka()
    progress = await reemit(
        store,
        kafka,
        NAMES,
        ReemitFilter(),
        upto_id=7,
        pace=_fast(),
        progress=Progress(last_id=0),
        page_size=3,
    )
    expected = [canonical_message(NAMES, EVENTS[i % len(EVENTS)]) for i in range(7)]
    assert kafka.sent == expected
    assert (progress.emitted, progress.last_id) == (7, 7)
    assert progress.per_topic == {"p.commerce.orders": 7}
    assert store.pages == [(0, 7), (3, 7), (6, 7), (7, 7)]  # keyset pages, bounded by the plan


async def test_a_run_resumes_after_the_given_id() -> None:
    kafka = FakeKafka()
    progress = await reemit(
        FakeStore(_rows(5)),
        kafka,
        NAMES,
        ReemitFilter(after_id=3),
        upto_id=None,
        pace=_fast(),
        progress=Progress(last_id=3),
    )
    assert (progress.emitted, progress.last_id, len(kafka.sent)) == (2, 5, 2)


async def test_only_acknowledged_pages_count() -> None:
    kafka = FakeKafka(fail_at=5)
    progress = Progress(last_id=0)
    with pytest.raises(RuntimeError, match="broker said no"):
        await reemit(
            FakeStore(_rows(9)),
            kafka,
            NAMES,
            ReemitFilter(),
            upto_id=None,
            pace=_fast(),
            progress=progress,
            page_size=3,
        )
    assert (progress.emitted, progress.last_id) == (3, 3)


async def test_cancelling_leaves_the_last_acknowledged_id() -> None:
    kafka = FakeKafka(stall_at=5)  # page 2 (ids 4..6) never gets its acks
    progress = Progress(last_id=0)
    task = asyncio.ensure_future(
        reemit(
            FakeStore(_rows(9)),
            kafka,
            NAMES,
            ReemitFilter(),
            upto_id=None,
            pace=_fast(),
            progress=progress,
            page_size=3,
        )
    )
    while len(kafka.sent) < 6:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (progress.emitted, progress.last_id) == (3, 3)


async def test_the_rate_cap_spaces_the_sends() -> None:
    clock = FakeClock()
    await reemit(
        FakeStore(_rows(10)),
        FakeKafka(),
        NAMES,
        ReemitFilter(),
        upto_id=None,
        pace=Pace(5.0, clock=clock, sleep=clock.sleep),
        progress=Progress(last_id=0),
    )
    assert clock.now == pytest.approx(2.0)  # 10 events at 5/s


async def test_an_event_that_cannot_be_rebuilt_stops_the_run_before_it() -> None:
    rows = _rows(4)
    rows[2]["payload"] = '{"schema": "commerce.nope/v1"}'
    kafka = FakeKafka()
    progress = Progress(last_id=0)
    with pytest.raises(ReemitError, match="id 3"):
        await reemit(
            FakeStore(rows),
            kafka,
            NAMES,
            ReemitFilter(),
            upto_id=None,
            pace=_fast(),
            progress=progress,
            page_size=2,
        )
    assert (progress.last_id, len(kafka.sent)) == (2, 2)


def test_filter_parameters_are_in_the_sql_order() -> None:
    where = ReemitFilter("shopify", "s", T0, T0 + timedelta(hours=1), ("order.paid",), (), "7")
    assert where.args(after_id=4, upto_id=9) == (
        "shopify",
        "s",
        T0,
        T0 + timedelta(hours=1),
        ["order.paid"],
        None,
        "7",
        4,
        9,
    )
    assert ReemitFilter().args(after_id=0, upto_id=None) == (
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        0,
        None,
    )


def test_the_plan_merges_schemas_into_their_topics() -> None:
    rows = [
        {
            "schema": "commerce.order/v1",
            "events": 3,
            "first_recorded": T0,
            "last_recorded": T0 + timedelta(minutes=5),
            "first_id": 10,
            "last_id": 40,
        },
        {
            "schema": "commerce.order_status/v1",
            "events": 2,
            "first_recorded": T0 - timedelta(minutes=1),
            "last_recorded": T0,
            "first_id": 11,
            "last_id": 12,
        },
        {
            "schema": "commerce.fulfillment/v1",
            "events": 1,
            "first_recorded": T0,
            "last_recorded": T0,
            "first_id": 50,
            "last_id": 50,
        },
        {
            "schema": "commerce.gone/v0",
            "events": 1,
            "first_recorded": T0,
            "last_recorded": T0,
            "first_id": 60,
            "last_id": 60,
        },
    ]
    plan = plan_from_counts(rows, NAMES)
    assert [(t.topic, t.events) for t in plan.topics] == [
        ("p.commerce.fulfillments", 1),
        ("p.commerce.orders", 5),
    ]
    assert plan.topics[1].first_recorded == T0 - timedelta(minutes=1)
    assert (plan.total, plan.first_id, plan.last_id) == (6, 10, 50)
    assert plan.unknown_schemas == ("commerce.gone/v0",)
    assert (plan.first_recorded, plan.last_recorded) == (
        T0 - timedelta(minutes=1),
        T0 + timedelta(minutes=5),
    )


def test_the_dry_run_says_counts_per_topic_and_the_span() -> None:
    plan = Plan((TopicPlan("p.commerce.orders", 5, T0, T0 + timedelta(hours=1)),), 3, 9)
    lines = render_plan(plan, ReemitFilter(), 500.0, execute=False)
    assert lines[0].startswith("would re-emit 5 event(s), ids 3..9, recorded 2026-12-01T10:00:00")
    assert "p.commerce.orders" in lines[2]
    assert " 5 " in lines[2]
    assert lines[-1].startswith("dry run: nothing sent")
    empty = render_plan(Plan((), None, None), ReemitFilter(after_id=4), 1.0, execute=True)
    assert empty == ["no stored event matches (after id 4); nothing to re-emit"]


def _args(*argv: str) -> argparse.Namespace:
    return cli._parser().parse_args(["reemit", *argv])


def test_the_resume_command_repeats_the_filter_with_absolute_times() -> None:
    args = _args(
        "--platform",
        "shopify",
        "--shop",
        "A-Shop.myshopify.com",
        "--from",
        "6h",
        "--kind",
        "order.paid",
    )
    where = reemit_filter(args)
    command = resume_command(args, where, 1234)
    again = reemit_filter(_args(*shlex.split(command)[2:]))
    assert again == ReemitFilter(
        "shopify", "a-shop.myshopify.com", where.since, None, ("order.paid",), (), None, 1234
    )
    assert "--execute" in command
    assert "--rate 500" in command


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--shop", "x"], "--shop needs --platform"),
        (["--platform", "shopify", "--shop", "not a shop!"], "is not a shopify shop id"),
        (["--from", "2026-12-01T10:00", "--to", "2026-12-01T09:00"], "is not before --to"),
    ],
)
def test_a_filter_that_makes_no_sense_is_one_error_line(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(cli, "configure_logging", lambda level, fmt, service: None)
    with pytest.raises(SystemExit) as info:
        cli.main(["reemit", *argv])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err.startswith("pipeline: error: ")
    assert message in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["--after-id", "-1"],
        ["--rate", "0"],
        ["--kind", "order.exploded"],
        ["--from", "soon"],
        ["--entity-type", "planet"],
    ],
)
def test_bad_arguments_are_refused_by_the_parser(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["reemit", *argv])
    assert info.value.code == 2
    assert "error: argument" in capsys.readouterr().err


def test_the_choices_come_from_the_catalogue() -> None:
    assert {"order.created", "order.status_changed", "price.updated"} <= set(event_types())
    assert entity_types() == ["inventory_item", "order", "product"]


@pytest.mark.parametrize(
    ("rate", "size"), [(0.5, 1), (1.0, 1), (37.9, 37), (500.0, 500), (5e4, 500)]
)
def test_a_page_is_about_a_second_of_sending(rate: float, size: int) -> None:
    assert page_size(rate) == size
