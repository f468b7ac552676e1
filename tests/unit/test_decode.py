"""Stored payloads become the bytes the worker published: every fixture's events survive the
jsonb round trip (keys reordered) byte for byte, and a payload that would not is refused."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from pipeline.publish import canonical_message
from pipeline.topics import TopicNames
from schemas.catalogue import AnyEvent
from schemas.decode import RECORDS_BY_SCHEMA, EventDecodeError, from_json
from schemas.events import to_json
from tests.unit.test_emitted_events_match_schemas import _cases, normalize_fixture


def _events(platform: str, name: str) -> list[AnyEvent]:
    return list(normalize_fixture(platform, name)[0].events)


def _jsonb_order(value: Any) -> Any:
    """Keys as Postgres jsonb stores them: shorter first, then bytewise; not the record's order."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        return {k: _jsonb_order(value[k]) for k in keys}
    if isinstance(value, list):
        return [_jsonb_order(v) for v in value]
    return value


def _stored(event: AnyEvent) -> bytes:
    return orjson.dumps(_jsonb_order(orjson.loads(to_json(event))))


@pytest.mark.parametrize(("platform", "name"), _cases())
def test_every_fixture_event_comes_back_byte_for_byte(platform: str, name: str) -> None:
    names = TopicNames("p.")
    for event in _events(platform, name):
        stored = _stored(event)
        if len(orjson.loads(stored)) > 1:
            assert stored != to_json(event), "the reordering must change the bytes"
        again = from_json(stored)
        assert again == event
        assert canonical_message(names, again) == canonical_message(names, event)


def test_every_record_is_known_by_its_schema() -> None:
    assert len(RECORDS_BY_SCHEMA) == 8
    assert RECORDS_BY_SCHEMA["commerce.order/v1"].__name__ == "OrderEvent"


def _an_order_payload() -> dict[str, Any]:
    event = next(e for e in _events("shopify", "order_paid") if e.schema == "commerce.order/v1")
    payload: dict[str, Any] = orjson.loads(to_json(event))
    return payload


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda p: p.update(schema="commerce.nope/v9"), "unknown event schema"),
        (lambda p: p.update(surprise=1), "has no fields"),
        (lambda p: p.update(type="order.exploded"), "not a valid OrderEvent"),
        (lambda p: p["order"].update(lines="x"), "not a valid"),
        (lambda p: p["source"].update(received_at="2024-11-20T10:00:00Z"), "would not encode"),
        (lambda p: p.pop("event_id"), "not a valid OrderEvent"),
    ],
)
def test_a_payload_that_is_not_what_was_published_is_refused(change: Any, why: str) -> None:
    payload = _an_order_payload()
    change(payload)
    with pytest.raises(EventDecodeError, match=why):
        from_json(orjson.dumps(payload))


@pytest.mark.parametrize("data", [b"not json", b"[1, 2]", b'"text"'])
def test_what_is_no_json_object_is_refused(data: bytes) -> None:
    with pytest.raises(EventDecodeError):
        from_json(data)
