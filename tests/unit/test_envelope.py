from __future__ import annotations

import base64

import orjson
import pytest

from pipeline.envelope import ENVELOPE_VERSION, Envelope, decode, encode
from pipeline.errors import EnvelopeError, InvalidPayload
from tests.unit.factories import envelope


def _fields(item: Envelope) -> dict[str, object]:
    data: dict[str, object] = orjson.loads(encode(item))
    return data


def test_round_trip_of_a_utf8_body() -> None:
    item = envelope()
    assert decode(encode(item)) == item


def test_utf8_body_stays_readable_text() -> None:
    data = _fields(envelope(b'{"name": "caf\xc3\xa9"}'))
    assert data["body"] == '{"name": "café"}'
    assert data["body_encoding"] == "utf-8"
    assert data["v"] == ENVELOPE_VERSION


def test_exact_bytes_are_preserved_including_whitespace() -> None:
    body = b'{ "a" : 1,\r\n\t"b":"\\u00e9\xc3\xa9" }\n\n'
    assert decode(encode(envelope(body))).body == body


def test_non_utf8_body_goes_through_base64() -> None:
    body = b"\xff\xfe\x00binary\x80"
    data = _fields(envelope(body))
    assert data["body_encoding"] == "base64"
    assert base64.b64decode(str(data["body"])) == body
    assert decode(encode(envelope(body))).body == body


def test_optional_fields_and_malformed_flag_survive() -> None:
    item = Envelope(
        "shopify",
        "s",
        "orders/paid",
        "d",
        1,
        "k",
        b"x",
        "ev-1",
        "2024-01",
        "2024-03-11T16:05Z",
        True,
    )
    assert decode(encode(item)) == item


def test_dedupe_key_is_platform_shop_delivery() -> None:
    item = envelope(delivery_id="d-1", shop_id="a.myshopify.com")
    assert item.dedupe_key == "shopify|a.myshopify.com|d-1"


def _valid() -> dict[str, object]:
    return _fields(envelope(b"{}"))


def _without(name: str) -> bytes:
    data = _valid()
    del data[name]
    return orjson.dumps(data)


def _with(**changes: object) -> bytes:
    return orjson.dumps({**_valid(), **changes})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json at all", "not JSON"),
        (b"", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (_with(v=2), "unsupported envelope version 2"),
        (_without("v"), "unsupported envelope version None"),
        (_without("delivery_id"), "lacks delivery_id"),
        (_without("body"), "lacks body"),
        (_with(body=123), "body is not a string"),
        (_with(body="!!not base64!!", body_encoding="base64"), "not valid base64"),
        (_with(body="abc", body_encoding="base64"), "not valid base64"),
        (_with(body_encoding="rot13"), "unknown body encoding 'rot13'"),
        (_with(received_at_ms="soon"), "not a time"),
        (_with(received_at_ms=None), "not a time"),
    ],
)
def test_anything_but_a_v1_envelope_raises_envelope_error(raw: bytes, message: str) -> None:
    with pytest.raises(EnvelopeError, match=message):
        decode(raw)


def test_missing_fields_are_all_named() -> None:
    data = _valid()
    for name in ("platform", "shop_id", "topic"):
        del data[name]
    with pytest.raises(EnvelopeError, match="lacks platform, shop_id, topic"):
        decode(orjson.dumps(data))


def test_envelope_errors_are_permanent_invalid_payloads() -> None:
    err = EnvelopeError("x")
    assert isinstance(err, InvalidPayload)
    assert err.retriable is False
    assert err.code == "invalid_envelope"
