from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from pipeline.envelope import Envelope
from pipeline.errors import InvalidPayload
from pipeline.outcomes import Outcome
from pipeline.platforms.base import Normalized
from pipeline.platforms.shopify import ShopifyAdapter
from pipeline.processing import process_message
from tests.unit.factories import RECEIVED_AT_MS, SHOP, envelope, raw

NOW = datetime(2024, 3, 11, 17, 0, tzinfo=UTC)


def _process(item: Envelope | bytes, **kwargs: object) -> Outcome:
    outcome = process_message(raw(item, offset=7), now=lambda: NOW, **kwargs)  # type: ignore[arg-type]
    assert outcome is not None
    return outcome


class Exploding:
    name = "shopify"

    def normalize(self, item: Envelope) -> Normalized:
        raise KeyError("total_price")


def test_good_delivery_completes_with_one_event() -> None:
    outcome = _process(envelope())
    assert outcome.audit is not None
    assert outcome.audit.status == "COMPLETED"
    assert len(outcome.events) == 1
    assert outcome.dead_letter is None
    assert outcome.dedupe_key == f"shopify|{SHOP}|b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"


def test_audit_describes_the_delivery() -> None:
    audit = _process(envelope(topic="orders/paid", delivery_id="d-9")).audit
    assert audit is not None
    assert (audit.topic, audit.delivery_id, audit.shop_id) == ("orders/paid", "d-9", SHOP)
    assert audit.received_at == datetime.fromtimestamp(RECEIVED_AT_MS / 1000, tz=UTC)
    assert audit.source.offset == 7


def test_seen_delivery_returns_none() -> None:
    asked: list[str] = []

    def is_seen(key: str) -> bool:
        asked.append(key)
        return True

    assert process_message(raw(envelope(delivery_id="d-1")), is_seen=is_seen) is None
    assert asked == [f"shopify|{SHOP}|d-1"]


def test_undecodable_envelope_is_a_dead_letter_without_audit() -> None:
    outcome = _process(b"\x00garbage")
    assert outcome.audit is None
    assert outcome.dedupe_key is None
    assert outcome.dead_letter is not None
    assert outcome.dead_letter.error_class == "EnvelopeError"
    assert outcome.dead_letter.failed_at == NOW
    assert outcome.dead_letter.source.value == b"\x00garbage"


def test_undecodable_envelope_is_not_looked_up() -> None:
    def is_seen(key: str) -> bool:
        raise AssertionError("no key to look up")

    assert _process(b"{}", is_seen=is_seen).dead_letter is not None


def _assert_failed(outcome: Outcome, error_class: str) -> None:
    assert outcome.audit is not None
    assert outcome.audit.status == "DEAD_LETTERED"
    assert outcome.events == ()
    assert outcome.dead_letter is not None
    assert outcome.dead_letter.error_class == error_class
    assert outcome.audit.error == outcome.dead_letter.error


def test_malformed_flag_fails_with_a_dead_letter() -> None:
    outcome = _process(envelope(b"{not json", malformed=True))
    _assert_failed(outcome, "InvalidPayload")
    assert outcome.dedupe_key is not None


def test_unknown_platform_fails() -> None:
    outcome = _process(envelope(platform="etsy"))
    _assert_failed(outcome, "InvalidPayload")
    assert outcome.audit is not None
    assert "etsy" in str(outcome.audit.error)


def test_invalid_payload_fails_with_its_reason() -> None:
    outcome = _process(envelope(b"[]"))
    _assert_failed(outcome, "InvalidPayload")
    assert outcome.dead_letter is not None
    assert "not a JSON object" in outcome.dead_letter.error


def test_an_unexpected_error_schedules_the_next_attempt() -> None:
    outcome = _process(envelope(), adapters=lambda platform: Exploding(), max_attempts=5)
    assert outcome.audit is not None
    assert (outcome.audit.status, outcome.audit.attempts) == ("FAILED", 1)
    assert outcome.audit.error is not None
    assert outcome.audit.error.startswith("KeyError")
    assert outcome.dead_letter is None
    assert outcome.retry is not None
    assert outcome.retry.attempt == 2
    assert outcome.retry.first_failed_at_ms == int(NOW.timestamp() * 1000)
    assert outcome.retry.body == envelope().body


def test_a_retry_keeps_the_first_failure_time() -> None:
    second = replace(envelope(), attempt=2, first_failed_at_ms=1_000)
    outcome = _process(second, adapters=lambda platform: Exploding(), max_attempts=5)
    assert outcome.retry is not None
    assert (outcome.retry.attempt, outcome.retry.first_failed_at_ms) == (3, 1_000)


def test_the_last_attempt_is_dead_lettered_with_its_history() -> None:
    last = replace(envelope(), attempt=5, first_failed_at_ms=1_000)
    outcome = _process(last, adapters=lambda platform: Exploding(), max_attempts=5)
    _assert_failed(outcome, "KeyError")
    assert outcome.retry is None
    assert outcome.dead_letter is not None
    assert outcome.dead_letter.attempts == 5
    assert outcome.dead_letter.first_failure == datetime.fromtimestamp(1, tz=UTC)
    assert outcome.audit is not None
    assert outcome.audit.attempts == 5


def test_a_shop_without_a_channel_is_dead_lettered_at_once() -> None:
    outcome = _process(envelope(), has_channel=lambda platform, shop: False)
    _assert_failed(outcome, "UnknownChannel")
    assert outcome.retry is None


def test_a_replay_is_processed_even_when_the_delivery_was_seen() -> None:
    replayed = replace(envelope(), replay=True, attempt=2)
    outcome = _process(replayed, is_seen=lambda key: True)
    assert outcome.audit is not None
    assert outcome.audit.status == "COMPLETED"
    assert outcome.audit.attempts == 2


def test_ignored_topic_gives_an_ignored_audit_and_no_events() -> None:
    outcome = _process(envelope(topic="orders/edited"))
    assert outcome.audit is not None
    assert outcome.audit.status == "IGNORED"
    assert outcome.audit.error == "topic orders/edited is not handled yet"
    assert outcome.events == ()
    assert outcome.dead_letter is None


def test_adapter_is_looked_up_by_platform() -> None:
    asked: list[str] = []

    def lookup(platform: str) -> ShopifyAdapter:
        asked.append(platform)
        return ShopifyAdapter()

    _process(envelope(), adapters=lookup)
    assert asked == ["shopify"]


@pytest.mark.parametrize("received_at_ms", [10**18, -(10**15)])
def test_out_of_range_receive_time_is_a_dead_letter(received_at_ms: int) -> None:
    outcome = _process(envelope(received_at_ms=received_at_ms))
    assert outcome.dead_letter is not None


def test_invalid_payload_from_a_custom_adapter_keeps_its_class() -> None:
    class Refusing(Exploding):
        def normalize(self, item: Envelope) -> Normalized:
            raise InvalidPayload("nope")

    _assert_failed(_process(envelope(), adapters=lambda p: Refusing()), "InvalidPayload")
