from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from pipeline import sql
from pipeline.outcomes import Outcome
from pipeline.processing import process_message
from pipeline.sink import PostgresSink, _final_audits, _first_claims
from pipeline.writers.orders import snapshots
from schemas.orders import OrderEvent
from tests.unit.factories import envelope, order_body, raw


def outcome(
    delivery_id: str,
    *,
    order_id: int = 1,
    updated_at: str | None = "2024-03-11T11:00:00Z",
    topic: str = "orders/updated",
) -> Outcome:
    body = order_body(id=order_id, updated_at=updated_at)
    result = process_message(raw(envelope(body, delivery_id=delivery_id, topic=topic)))
    assert result is not None
    return result


def test_first_claims_keeps_each_event_once_for_the_first_carrier() -> None:
    a, b = outcome("a"), outcome("b")  # same order, topic and version: the same event id
    c = outcome("c", order_id=2)
    claims = _first_claims([a, b, c])
    assert [e.source.delivery_id for e in claims] == ["a", "c"]


def test_first_claims_skips_outcomes_without_events() -> None:
    ignored = outcome("x", topic="orders/edited")
    assert _first_claims([ignored, outcome("a")])[0].source.delivery_id == "a"
    assert len(_first_claims([ignored])) == 0


def _newest_per_order(events: list[OrderEvent]) -> list[OrderEvent]:
    return list(snapshots(events).chosen.values())


def test_newest_per_order_wins_whatever_the_order() -> None:
    new = outcome("new", updated_at="2024-03-11T12:00:00Z").events[0]
    old = outcome("old", updated_at="2024-03-11T11:00:00Z").events[0]
    assert _newest_per_order([new, old]) == [new]
    assert _newest_per_order([old, new]) == [new]


def test_newest_per_order_takes_the_later_one_on_ties() -> None:
    first = outcome("first", topic="orders/updated").events[0]
    second = outcome("second", topic="orders/paid").events[0]
    assert _newest_per_order([first, second]) == [second]
    assert _newest_per_order([second, first]) == [first]


def test_newest_per_order_keeps_one_per_order() -> None:
    events = [outcome(d, order_id=n).events[0] for d, n in [("a", 1), ("b", 2), ("c", 1)]]
    assert [e.source.delivery_id for e in _newest_per_order(events)] == ["c", "b"]


def test_newest_per_order_prefers_a_dated_snapshot_over_an_undated_one() -> None:
    dated = outcome("dated").events[0]
    undated = outcome("undated", updated_at=None).events[0]
    assert _newest_per_order([dated, undated]) == [dated]


def _statuses(outcomes: list[Outcome], new_ids: set[Any], stale: set[Any]) -> list[str]:
    return [a.status for a in _final_audits(outcomes, new_ids, stale)]


def test_final_audits_completed_when_an_event_is_new() -> None:
    o = outcome("a")
    assert _statuses([o], {o.events[0].event_id}, set()) == ["COMPLETED"]


def test_final_audits_duplicate_when_no_event_is_new() -> None:
    o = outcome("a")
    audits = _final_audits([o], set(), set())
    assert [a.status for a in audits] == ["DUPLICATE"]


def test_final_audits_stale_when_the_order_was_not_applied() -> None:
    o = outcome("a")
    (audit,) = _final_audits([o], {o.events[0].event_id}, {o.events[0].event_id})
    assert audit.status == "STALE"
    assert audit.error == "a newer version is already stored"


def test_final_audits_duplicate_wins_over_stale() -> None:
    o = outcome("a")
    assert _statuses([o], set(), {o.events[0].event_id}) == ["DUPLICATE"]


def test_final_audits_leave_ignored_failed_and_audit_less_outcomes_alone() -> None:
    ignored = outcome("i", topic="orders/edited")
    failed = outcome("f").dead_lettered("InvalidPayload", "bad", ignored.audit.received_at)  # type: ignore[union-attr]
    no_audit = replace(outcome("n"), audit=None)
    assert _statuses([ignored, failed, no_audit], set(), set()) == ["IGNORED", "DEAD_LETTERED"]


# -- write() against a fake connection: the statuses it records ------------------------------


class FakeConn:
    def __init__(self, recorded: frozenset[str] = frozenset()) -> None:
        self.audit_statuses: list[str] = []
        self.recorded = recorded  # delivery ids whose audit row already exists

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield

    async def fetch(self, query: str, *args: Any) -> list[dict[str, Any]]:
        if query == sql.INSERT_EVENTS:
            return [{"event_id": i} for i in args[0]]  # every event is new to the database
        if query == sql.INSERT_WEBHOOK_EVENTS:
            self.audit_statuses.extend(args[6])
            fresh = [s for d, s in zip(args[3], args[6], strict=True) if d not in self.recorded]
            return [{"status": s} for s in fresh]
        assert query == sql.UPSERT_ORDERS
        return [{"id": i} for i in args[0]]

    async def execute(self, query: str, *args: Any) -> None:
        assert query in (
            sql.DELETE_ORDER_LINES,
            sql.INSERT_ORDER_LINES,
            sql.RELEASE_RESERVATIONS,
            sql.CONSUME_RESERVATIONS,
            sql.RELEASE_CHANGED_LINES,
            sql.RESERVE_ORDER_LINES,
        )


class FakePool:
    def __init__(self, recorded: frozenset[str] = frozenset()) -> None:
        self.conn = FakeConn(recorded)

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[FakeConn]:
        yield self.conn


async def test_write_records_one_audit_per_outcome() -> None:
    pool = FakePool()
    result = await PostgresSink(pool).write([outcome("a", order_id=1), outcome("b", order_id=2)])  # type: ignore[arg-type]
    assert pool.conn.audit_statuses == ["COMPLETED", "COMPLETED"]
    assert (result.statuses, result.new_events) == ({"COMPLETED": 2}, 2)


async def test_second_carrier_of_an_event_in_one_batch_is_a_duplicate() -> None:
    # Across two batches the second delivery of the same event is DUPLICATE; in one batch too.
    pool = FakePool()
    await PostgresSink(pool).write([outcome("a"), outcome("b")])  # type: ignore[arg-type]
    assert pool.conn.audit_statuses == ["COMPLETED", "DUPLICATE"]


async def test_redelivered_deliveries_are_counted_apart_from_new_rows() -> None:
    first, second = outcome("a", order_id=1), outcome("b", order_id=2)
    assert first.audit is not None
    pool = FakePool(recorded=frozenset({first.audit.delivery_id}))
    result = await PostgresSink(pool).write([first, second])  # type: ignore[arg-type]
    assert (result.statuses, result.already_recorded) == ({"COMPLETED": 1}, 1)
