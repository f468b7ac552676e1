"""Pure parts of `pipeline tables`: reading changelog values, tombstones, what a rebuild
writes, and the honest totals of `tables show`."""

from __future__ import annotations

import orjson
import pytest

from pipeline import tables
from pipeline.tables import PartitionKeys, Remembered
from pipeline.tables_cli import span_lines


def test_seen_at_reads_the_table_value() -> None:
    assert tables.seen_at(orjson.dumps([1234.5, 3])) == 1234.5


@pytest.mark.parametrize("value", [None, b"not json", b"{}", b"[]", b'"x"'])
def test_seen_at_is_none_for_tombstones_and_foreign_values(value: bytes | None) -> None:
    assert tables.seen_at(value) is None


def test_a_tombstone_removes_a_live_key() -> None:
    span = PartitionKeys(0, 0, 3)
    tables._apply(span, b'"a"', orjson.dumps([1.0, 0]))
    tables._apply(span, b'"b"', orjson.dumps([2.0, 0]))
    tables._apply(span, b'"a"', None)
    assert span.live == {b'"b"': 2.0}
    assert span.records == 3


def test_tombstones_cover_every_live_key_on_its_partition() -> None:
    spans = [PartitionKeys(0, 0, 1, live={b"a": 1.0}), PartitionKeys(2, 0, 2, live={b"b": 1.0})]
    assert tables.tombstones(spans) == [(0, b"a", None), (2, b"b", None)]


def test_rebuild_writes_only_what_is_not_live() -> None:
    spans = [PartitionKeys(0, 0, 1, live={b'"shopify|s|1"': 5.0})]
    found = [Remembered(0, b'"shopify|s|1"', 5.0), Remembered(1, b'"shopify|s|2"', 6.0)]
    todo = tables.missing(found, spans)
    assert todo == [found[1]]
    assert todo[0].record() == (1, b'"shopify|s|2"', orjson.dumps([6.0, 1]))


def test_expired_counts_keys_older_than_the_cutoff() -> None:
    assert PartitionKeys(0, 0, 2, live={b"a": 1.0, b"b": 10.0}).expired(5.0) == 1


def test_show_without_count_says_the_span_is_an_upper_bound() -> None:
    lines = span_lines([PartitionKeys(0, 10, 110)], counted=False, cutoff=0.0)
    assert lines[1].split() == ["0", "10", "110", "100", "<=", "100"]
    assert lines[-1].startswith("total: at most 100 live keys (an upper bound")


def test_show_with_count_gives_live_and_expired_keys() -> None:
    span = PartitionKeys(0, 0, 4, live={b"a": 1.0, b"b": 10.0})
    lines = span_lines([span], counted=True, cutoff=5.0)
    assert lines[1].split() == ["0", "0", "4", "4", "2", "1"]
    assert lines[-1].startswith("total: 2 live keys (1 older than the window")
