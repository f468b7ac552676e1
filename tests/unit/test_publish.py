from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import orjson

from pipeline.outcomes import DeadLetter
from pipeline.processing import process_message
from pipeline.publish import Publisher, dead_letter_headers
from pipeline.topics import CANONICAL_STREAMS, TopicNames
from schemas.catalogue import EVENT_RECORDS
from tests.unit.factories import envelope, raw

AT = datetime(2024, 3, 11, 17, 0, tzinfo=UTC)


def test_dead_letter_headers_say_where_and_why() -> None:
    letter = DeadLetter(raw(b"x", partition=4, offset=99), "InvalidPayload", "bad", AT)
    headers = dict(dead_letter_headers(letter))
    assert headers["x-original-topic"] == b"webhooks.raw"
    assert (headers["x-original-partition"], headers["x-original-offset"]) == (b"4", b"99")
    assert (headers["x-error-class"], headers["x-error"]) == (b"InvalidPayload", b"bad")
    assert headers["x-first-failure-at"] == b"2024-03-11T17:00:00+00:00"


def test_dead_letter_error_header_is_bounded_and_encoded() -> None:
    letter = DeadLetter(raw(b"x"), "E", "é" * 5000, AT)
    assert len(dict(dead_letter_headers(letter))["x-error"]) == 4000


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None, Any]] = []

    async def send(self, topic: str, value: bytes, key: bytes | None, headers: Any = None) -> Any:
        self.sent.append((topic, value, key, headers))
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


async def test_publish_sends_events_and_dead_letters() -> None:
    good = process_message(raw(envelope()))
    bad = process_message(raw(b"garbage"))
    assert good is not None
    assert bad is not None
    producer = FakeProducer()
    count = await Publisher(producer, TopicNames("p.")).publish([good, bad])
    assert count == 2
    (topic, value, key, _), (dl_topic, dl_value, dl_key, dl_headers) = producer.sent
    assert (topic, key) == ("p.commerce.orders", good.events[0].entity_key.encode())
    assert orjson.loads(value)["event_id"] == str(good.events[0].event_id)
    assert (dl_topic, dl_value, dl_key) == ("p.webhooks.dlq", b"garbage", b"key")
    assert dict(dl_headers)["x-error-class"] == b"EnvelopeError"


def test_every_event_record_has_a_canonical_topic() -> None:
    names = TopicNames(prefix="p.")
    topics = {record.__name__: names.canonical(record.stream) for record in EVENT_RECORDS}
    assert topics["OrderEvent"] == topics["OrderStatusEvent"] == "p.commerce.orders"
    assert topics["FulfillmentEvent"] == "p.commerce.fulfillments"
    assert {t.removeprefix("p.commerce.") for t in topics.values()} == set(CANONICAL_STREAMS)
