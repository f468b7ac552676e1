"""The raw topic's retention: the setting, what `topics create` does with an existing topic,
and how `topics describe` shows it."""

from __future__ import annotations

import pytest

from pipeline.settings import SettingsError, load_settings
from pipeline.topics import (
    EVENT_RETENTION_MS,
    TopicNames,
    TopicSpec,
    retention_change,
    topic_specs,
)
from pipeline.topics_describe import PartitionRange, TopicReport, duration, format_report

DAY_MS = 24 * 3600 * 1000


def test_raw_retention_defaults_to_30_days() -> None:
    assert load_settings({}).raw_retention_ms == 30 * DAY_MS


def test_raw_retention_days_is_read_and_checked() -> None:
    assert load_settings({"RAW_RETENTION_DAYS": "1.5"}).raw_retention_ms == 36 * 3600 * 1000
    with pytest.raises(SettingsError, match="RAW_RETENTION_DAYS"):
        load_settings({"RAW_RETENTION_DAYS": "0"})


def test_only_the_raw_topic_takes_the_raw_retention() -> None:
    specs = topic_specs(TopicNames("p."), 6, 1, 1, "app", raw_retention_ms=45 * DAY_MS)
    by_name = {s.name: s.configs for s in specs}
    assert by_name["p.webhooks.raw"]["retention.ms"] == str(45 * DAY_MS)
    assert by_name["p.commerce.orders"]["retention.ms"] == str(EVENT_RETENTION_MS)
    assert "retention.ms" not in by_name["p.app-seen-deliveries-changelog"]


@pytest.mark.parametrize(
    ("have", "want", "action"),
    [
        (30 * DAY_MS, 30 * DAY_MS, "same"),
        (14 * DAY_MS, 30 * DAY_MS, "lengthen"),
        (30 * DAY_MS, 14 * DAY_MS, "keep"),  # shortening deletes replayable history
        (-1, 30 * DAY_MS, "keep"),  # kept forever: never shortened implicitly
    ],
)
def test_retention_change(have: int, want: int, action: str) -> None:
    assert retention_change(have, want) == action


@pytest.mark.parametrize(
    ("ms", "text"),
    [(30 * DAY_MS, "30 d"), (36 * 3600 * 1000, "36 h"), (-1, "forever"), (1500, "1.5 s")],
)
def test_duration(ms: int, text: str) -> None:
    assert duration(ms) == text


def _report(configs: dict[str, str] | None, want: str = str(30 * DAY_MS)) -> TopicReport:
    spec = TopicSpec("webhooks.raw", 2, 1, {"retention.ms": want})
    ranges = [PartitionRange(0, 5, 12, 1_764_633_600_000), PartitionRange(1, 0, 0, None)]
    return TopicReport(spec, configs, ranges if configs is not None else [])


def test_describe_shows_offsets_and_the_earliest_timestamp() -> None:
    lines = format_report(_report({"retention.ms": str(30 * DAY_MS), "cleanup.policy": "delete"}))
    assert lines[0] == (
        "webhooks.raw: retention 30 d (retention.ms=2592000000), cleanup.policy=delete"
    )
    assert lines[2].split() == ["0", "5", "12", "7", "2025-12-02T00:00:00Z"]
    assert lines[3].split() == ["1", "0", "0", "0", "-"]


def test_describe_flags_a_retention_mismatch() -> None:
    lines = format_report(_report({"retention.ms": str(14 * DAY_MS), "cleanup.policy": "delete"}))
    assert "configured 30 d: MISMATCH" in lines[0]


def test_describe_names_a_missing_topic() -> None:
    assert format_report(_report(None)) == ["webhooks.raw: missing (run `pipeline topics create`)"]
