"""Dead-letter replay payloads and the CLI's time and rate arguments."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import patch

import pytest

from pipeline import envelope as envelopes
from pipeline.cli_common import CliError, one_line
from pipeline.cli_common import time_arg as _when
from pipeline.dlq import DlqFilter, replay, replay_payload
from pipeline.dlq_cli import MESSAGE_WIDTH, _rate, envelope_fields, webhook_body
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


class FakeStore:
    """dead_letters in memory, with the store's paging contract."""

    def __init__(self, count: int) -> None:
        payload = envelopes.encode(envelope())
        self.rows = [
            {"id": i, "payload": payload, "attempts": 1, "message_key": b"k", "replayed": False}
            for i in range(1, count + 1)
        ]

    async def all(self, where: DlqFilter) -> Any:
        for row in self.rows:
            if where.include_replayed or not row["replayed"]:
                yield row

    async def mark_replayed(self, letter_id: int) -> None:
        self.rows[letter_id - 1]["replayed"] = True


class InterruptingProducer:
    def __init__(self, interrupt_after: int | None) -> None:
        self.sent: list[bytes] = []
        self.interrupt_after = interrupt_after

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        if self.interrupt_after is not None and len(self.sent) == self.interrupt_after:
            raise asyncio.CancelledError  # what Ctrl-C does to the running replay
        self.sent.append(value)


async def test_an_interrupted_replay_resumes_with_the_rest() -> None:
    store = FakeStore(5)
    first = InterruptingProducer(interrupt_after=2)
    with pytest.raises(asyncio.CancelledError):
        await replay(store, first, "raw", DlqFilter(), rate_per_s=10_000)  # type: ignore[arg-type]
    assert [r["replayed"] for r in store.rows] == [True, True, False, False, False]
    second = InterruptingProducer(interrupt_after=None)
    report = await replay(store, second, "raw", DlqFilter(), rate_per_s=10_000)  # type: ignore[arg-type]
    assert report.replayed == 3
    assert all(r["replayed"] for r in store.rows)


async def test_the_rate_cap_paces_the_replay() -> None:
    store = FakeStore(4)
    clock = [0.0]
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    producer = InterruptingProducer(None)
    with patch("pipeline.dlq.asyncio.sleep", fake_sleep):
        await replay(store, producer, "raw", DlqFilter(), rate_per_s=2, clock=lambda: clock[0])  # type: ignore[arg-type]
    assert clock[0] == pytest.approx(2.0)
    assert len(producer.sent) == 4


# -- what `pipeline dlq list | show` print ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("no shopify channel for shop x", "no shopify channel for shop x"),
        ("line one\nline two\r\n\ttabbed", "line one line two tabbed"),
        ("  padded  ", "padded"),
        ("bell\x07 and escape\x1b[31m", "bell? and escape?[31m"),
        ("x" * 80, "x" * 80),
        ("x" * 81, "x" * 77 + "..."),
        ("word " * 30, "word " * 15 + "wo..."),
        ("x" * 76 + " yyyy", "x" * 76 + "..."),
        ("", ""),
    ],
)
def test_an_error_message_is_shown_on_one_short_line(text: str, shown: str) -> None:
    assert one_line(text, MESSAGE_WIDTH) == shown
    assert len(one_line(text, MESSAGE_WIDTH)) <= MESSAGE_WIDTH
    assert "\n" not in one_line(text, MESSAGE_WIDTH)


def test_the_envelope_is_shown_without_its_body() -> None:
    item = replace(
        envelope(body=b'{"email": "buyer@example.com"}'), event_id="ev-1", attempt=3, replay=True
    )
    fields = dict(envelope_fields(envelopes.encode(item)))
    assert fields["received_at"] == "2024-03-11T15:46:40.000+00:00"
    assert fields["entity_key"] == item.entity_key
    assert (fields["event_id"], fields["api_version"]) == ("ev-1", "-")
    assert (fields["attempt"], fields["replay"], fields["malformed"]) == (3, True, False)
    assert fields["body_bytes"] == len(item.body)
    assert "buyer@example.com" not in repr(fields)


def test_a_payload_that_is_no_envelope_is_shown_as_such() -> None:
    fields = dict(envelope_fields(b"\x00junk"))
    assert fields["payload_bytes"] == 5
    assert str(fields["envelope"]).startswith("none (envelope is not JSON")


@pytest.mark.parametrize(
    "body", [b'{"id":1,"note":"caf\\u00e9 \\/ \xc3\xa9"}', b"\xff\xfe binary \x00", b""]
)
def test_the_webhook_body_is_the_bytes_the_marketplace_sent(body: bytes) -> None:
    stored = envelopes.encode(envelope(body=body))
    assert webhook_body(7, stored) == body
    assert stored != body  # the envelope itself is not what is printed


def test_a_letter_without_an_envelope_has_no_webhook_body() -> None:
    with pytest.raises(CliError, match=r"dead letter 7 is not an envelope \(envelope is not JSON"):
        webhook_body(7, b"\x00junk")
