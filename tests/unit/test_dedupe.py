from __future__ import annotations

from typing import Any

import pytest
from faust.streams import current_event

from agents import dedupe
from agents.dedupe import TableSeenDeliveries, acting_for
from tests.unit.factories import Handle, envelope, raw

WINDOW = 100.0


class RecordingTable(dict[str, Any]):
    """A dict that remembers, for every write and delete, which event was current."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.writes: list[tuple[str, Any]] = []
        self.deletes: list[tuple[str, Any]] = []

    def __setitem__(self, key: str, value: Any) -> None:
        self.writes.append((key, current_event()))
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.deletes.append((key, current_event()))
        super().__delitem__(key)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def make(table: RecordingTable | None = None) -> tuple[TableSeenDeliveries, RecordingTable, Clock]:
    table = RecordingTable() if table is None else table
    clock = Clock()
    return TableSeenDeliveries(table, WINDOW, clock=clock), table, clock


def mark(seen: TableSeenDeliveries, *keys: str, partition: int = 0, handle: Any = None) -> Any:
    handle = handle or Handle(f"p{partition}")
    seen.mark([(k, raw(envelope(), partition=partition, handle=handle)) for k in keys])
    return handle


def test_unknown_key_is_not_seen() -> None:
    seen, _, _ = make()
    assert not seen.is_seen("shopify|s|d1")


def test_marked_key_is_seen_within_the_window() -> None:
    seen, _, clock = make()
    mark(seen, "k")
    clock.now += WINDOW
    assert seen.is_seen("k")


def test_marked_key_is_not_seen_after_the_window() -> None:
    seen, _, clock = make()
    mark(seen, "k")
    clock.now += WINDOW + 0.001
    assert not seen.is_seen("k")


def test_mark_writes_time_and_partition() -> None:
    seen, table, clock = make()
    mark(seen, "a", "b", partition=3)
    assert table == {"a": [clock.now, 3], "b": [clock.now, 3]}


def test_each_write_acts_for_its_own_event() -> None:
    seen, table, _ = make()
    h0, h1 = Handle("p0"), Handle("p1")
    seen.mark([("a", raw(envelope(), handle=h0)), ("b", raw(envelope(), partition=1, handle=h1))])
    assert table.writes == [("a", h0), ("b", h1)]
    assert current_event() is None


def test_acting_for_resets_the_current_event_after_an_error() -> None:
    handle, inside = Handle(), list[Any]()

    def fail() -> None:
        with acting_for(handle):
            inside.append(current_event())
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fail()
    assert inside == [handle]
    assert current_event() is None


def test_expiry_deletes_only_old_keys_of_the_marked_partition() -> None:
    seen, table, clock = make()
    mark(seen, "old0", partition=0)
    mark(seen, "old1", partition=1)
    clock.now += WINDOW + 1
    h0 = mark(seen, "new0", partition=0)
    assert set(table) == {"old1", "new0"}
    assert table.deletes == [("old0", h0)]


def test_expiry_keeps_keys_inside_the_window() -> None:
    seen, table, clock = make()
    mark(seen, "a")
    clock.now += WINDOW - 1
    mark(seen, "b")
    assert set(table) == {"a", "b"}
    assert table.deletes == []


def test_expiry_is_bounded_per_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dedupe, "MAX_DELETES_PER_BATCH", 2)
    seen, table, clock = make()
    mark(seen, "a", "b", "c", "d", "e")
    clock.now += WINDOW + 1
    mark(seen, "x")
    assert len(table.deletes) == 2
    mark(seen, "y")
    assert len(table.deletes) == 4
    assert set(table) == {"e", "x", "y"}


def test_expiry_spares_a_key_marked_again_later() -> None:
    seen, table, clock = make()
    mark(seen, "k")
    clock.now += WINDOW / 2
    mark(seen, "k")
    clock.now += WINDOW / 2 + 1
    mark(seen, "other")
    assert "k" in table
    assert table.deletes == []


def test_re_marked_key_still_expires_after_its_new_window() -> None:
    seen, table, clock = make()
    mark(seen, "k")
    clock.now += WINDOW / 2
    mark(seen, "k")
    clock.now += WINDOW + 1
    mark(seen, "other")
    assert [k for k, _ in table.deletes] == ["k"]


def test_restored_table_contents_expire_after_a_restart() -> None:
    table = RecordingTable({"old0": [0.0, 0], "old1": [0.0, 1], "fresh0": [999.0, 0]})
    seen, _, _ = make(table)
    mark(seen, "new0", partition=0)
    assert set(table) == {"old1", "fresh0", "new0"}


def test_forget_assignment_rebuilds_the_queue_from_the_table() -> None:
    seen, table, clock = make()
    mark(seen, "mine")
    seen.forget_assignment()
    dict.__setitem__(table, "restored", [clock.now - 1, 0])  # arrived with a rebalance
    dict.__setitem__(table, "elsewhere", [clock.now - 1, 5])
    clock.now += WINDOW + 1
    mark(seen, "now")
    assert sorted(k for k, _ in table.deletes) == ["mine", "restored"]
    assert "elsewhere" in table


def test_a_big_restored_table_is_learnt_over_several_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first batch after a start must not wait for a pass over the whole table."""
    monkeypatch.setattr(dedupe, "_LOAD_STEP", 2)
    monkeypatch.setattr(dedupe, "LOAD_BUDGET_S", -1.0)  # the deadline is always past: 2 a batch

    class Restored(dict[str, Any]):
        def items(self) -> Any:  # an iterator that tolerates writes, as RocksDB's does
            return iter(list(super().items()))

    table = Restored({f"old{n}": [800.0 - n, 0] for n in range(5)})
    seen = TableSeenDeliveries(table, WINDOW, clock=lambda: 1_000.0)
    for n in range(2):
        seen.mark([(f"new{n}", raw(envelope(), handle=Handle("p0")))])
    assert all(f"old{n}" in table for n in range(5)), "nothing expires while still learning"
    seen.mark([("new2", raw(envelope(), handle=Handle("p0")))])
    assert not any(f"old{n}" in table for n in range(5))
    assert {"new0", "new1", "new2"} <= set(table)
