"""Dead-letter replay payloads and the CLI's time and rate arguments."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import pytest

from pipeline import envelope as envelopes
from pipeline.dlq import DlqFilter, replay_payload
from pipeline.dlq_cli import _rate, _when
from tests.unit.factories import envelope


def row(payload: bytes, attempts: int = 3) -> dict[str, object]:
    return {"id": 7, "payload": payload, "attempts": attempts}


def test_a_replay_is_flagged_and_counts_as_the_next_attempt() -> None:
    original = envelope()
    replayed = envelopes.decode(replay_payload(row(envelopes.encode(original))))  # type: ignore[arg-type]
    assert (replayed.replay, replayed.attempt) == (True, 4)
    assert replayed.body == original.body
    assert replayed.delivery_id == original.delivery_id


def test_a_letter_that_is_not_an_envelope_cannot_be_replayed() -> None:
    with pytest.raises(ValueError, match="dead letter 7 is not an envelope"):
        replay_payload(row(b"\x00junk"))  # type: ignore[arg-type]


def test_relative_and_absolute_times() -> None:
    assert abs(_when("6h") - (datetime.now(UTC) - timedelta(hours=6))) < timedelta(seconds=5)
    assert _when("2026-11-25T10:00") == datetime(2026, 11, 25, 10, tzinfo=UTC)


@pytest.mark.parametrize("text", ["yesterday", "6x", "", "2026-13-01"])
def test_a_bad_time_names_the_accepted_forms(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="ISO 8601"):
        _when(text)


@pytest.mark.parametrize("text", ["0", "-5", "fast", "100000"])
def test_a_bad_rate_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="--rate"):
        _rate(text)


def test_the_default_filter_leaves_replayed_letters_out() -> None:
    args = DlqFilter().args(after_id=0, limit=10)
    assert args[5] is False
    assert DlqFilter(include_replayed=True, ids=(3,)).args(5, 10)[5:] == (True, [3], 5, 10)
