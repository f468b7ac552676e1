"""The shared field readers every adapter uses, each on realistic and hostile values."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest

from pipeline.envelope import Envelope
from pipeline.errors import InvalidPayload
from pipeline.platforms import fields
from pipeline.platforms.base import Rejection
from schemas.events import Source

# -- payload readers: None when absent, InvalidPayload naming the field when unusable --------


def test_json_object_reads_an_object_and_refuses_anything_else() -> None:
    assert fields.json_object(b'{"id": 1}') == {"id": 1}
    with pytest.raises(InvalidPayload, match="body is not JSON"):
        fields.json_object(b"{")
    with pytest.raises(InvalidPayload, match="body is not a JSON object"):
        fields.json_object(b"[1]")


def test_obj_and_required_obj() -> None:
    assert fields.obj(None, "data") == {}
    assert fields.obj({"a": 1}, "data") == {"a": 1}
    assert fields.required_obj({"a": 1}, "line_items[0]") == {"a": 1}
    for value in (None, [], "x"):
        with pytest.raises(InvalidPayload, match=re.escape("line_items[0] is not an object")):
            fields.required_obj(value, "line_items[0]")
    with pytest.raises(InvalidPayload, match="data is not an object"):
        fields.obj([1], "data")


def test_items() -> None:
    assert fields.items(None, "line_items") == []
    assert fields.items([{"id": 1}], "line_items") == [{"id": 1}]
    with pytest.raises(InvalidPayload, match="line_items is not a list"):
        fields.items({"id": 1}, "line_items")


@pytest.mark.parametrize(
    ("value", "found"),
    [(450789469, "450789469"), (" 241120K7QXP3N5 ", "241120K7QXP3N5"), (None, None)],
)
def test_ident_reads_integers_and_short_strings(value: object, found: str | None) -> None:
    assert fields.ident(value, "id") == found


@pytest.mark.parametrize("value", [True, 1.5, "", "  ", "x" * 101, {"id": 1}, [1]])
def test_ident_refuses_what_is_not_an_id(value: object) -> None:
    with pytest.raises(InvalidPayload, match=r"data\.item_id is not an id"):
        fields.ident(value, "data.item_id")


def test_required_ident_and_nonzero_ident() -> None:
    assert fields.required_ident(7, "id") == "7"
    with pytest.raises(InvalidPayload, match=r"data\.ordersn is missing"):
        fields.required_ident(None, "data.ordersn")
    assert fields.nonzero_ident(0, "variation_id") is None
    assert fields.nonzero_ident("0", "variation_id") is None
    assert fields.nonzero_ident(None, "variation_id") is None
    assert fields.nonzero_ident(180012345678, "variation_id") == "180012345678"
    with pytest.raises(InvalidPayload, match="variation_id is not an id"):
        fields.nonzero_ident(False, "variation_id")


def test_text() -> None:
    assert fields.text("READY_TO_SHIP") == "READY_TO_SHIP"
    assert fields.text(7) == "7"
    assert fields.text("") is None
    assert fields.text(None) is None
    assert fields.text("x" * 600) == "x" * 500


@pytest.mark.parametrize(
    ("value", "amount"),
    [("45.90", Decimal("45.90")), (45.9, Decimal("45.9")), (12, Decimal(12)), ("", None)],
)
def test_money(value: object, amount: Decimal | None) -> None:
    assert fields.money(value, "total") == amount


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("cheap", "total is not an amount"),
        (True, "total is not an amount"),
        ("NaN", "total is out of range"),
        ("1e15", "total is out of range"),
    ],
)
def test_money_refuses(value: object, message: str) -> None:
    with pytest.raises(InvalidPayload, match=message):
        fields.money(value, "total")


def test_count() -> None:
    assert fields.count(3, "quantity") == 3
    assert fields.count("12", "quantity") == 12
    assert fields.count("-4", "available", signed=True) == -4
    assert fields.count(None, "quantity") is None
    with pytest.raises(InvalidPayload, match="quantity is out of range"):
        fields.count(-1, "quantity")
    with pytest.raises(InvalidPayload, match="quantity is not a whole number"):
        fields.count(1.5, "quantity")
    with pytest.raises(InvalidPayload, match="quantity is out of range"):
        fields.count(2**31, "quantity")


def test_iso_time() -> None:
    assert fields.iso_time("2024-03-11T11:00:00-05:00", "updated_at") == datetime(
        2024, 3, 11, 16, 0, tzinfo=UTC
    )
    assert fields.iso_time("2026-11-20T10:00:04", "date_modified_gmt") == datetime(
        2026, 11, 20, 10, 0, 4, tzinfo=UTC
    )
    assert fields.iso_time("", "updated_at") is None
    with pytest.raises(InvalidPayload, match="updated_at is not an ISO 8601"):
        fields.iso_time("yesterday", "updated_at")
    with pytest.raises(InvalidPayload, match="updated_at is not a timestamp"):
        fields.iso_time(1710172000, "updated_at")


@pytest.mark.parametrize("value", [1_732_100_000, "1732100000", 1_732_100_000_000, 1_732_100_000.0])
def test_epoch_time_reads_seconds_or_milliseconds(value: object) -> None:
    assert fields.epoch_time(value, "timestamp") == datetime(2024, 11, 20, 10, 53, 20, tzinfo=UTC)


@pytest.mark.parametrize("value", ["soon", True, -1, 10**30, float("nan")])
def test_epoch_time_refuses(value: object) -> None:
    with pytest.raises(InvalidPayload, match=r"data\.update_time"):
        fields.epoch_time(value, "data.update_time")


def test_received_at_and_version_of() -> None:
    moment = fields.received_at(1_710_172_000_000)
    assert moment == datetime(2024, 3, 11, 15, 46, 40, tzinfo=UTC)
    assert fields.version_of(moment, "delivery:d-1") == "2024-03-11T15:46:40+00:00"
    assert fields.version_of(None, "delivery:d-1") == "delivery:d-1"


def test_content_id_is_stable_and_depends_on_every_part() -> None:
    first = fields.content_id("123456", 3, {"ordersn": "A", "status": "SHIPPED"})
    assert first == fields.content_id("123456", 3, {"status": "SHIPPED", "ordersn": "A"})
    assert re.fullmatch(r"c-[0-9a-f]{40}", first)
    assert first != fields.content_id("123457", 3, {"ordersn": "A", "status": "SHIPPED"})


# -- signatures ------------------------------------------------------------------------------

# WooCommerce's published vector (base64) and Shopee's (hex over `url|body`).
_B64 = "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g="
_HEX = "b43c7e4cad148d440597015f1da5a0b9335895110ca4399785593bbf6e0e329e"
_SHOPEE_MESSAGE = b"http://localhost/webhook|HELLO"


def test_hmac_sha256_matches_the_vectors() -> None:
    assert fields.hmac_sha256("PARTNER_KEY", _SHOPEE_MESSAGE).hex() == _HEX


def test_signed_by_any_base64_and_hex() -> None:
    body = b'{"foo": "bar"}'
    assert fields.signed_by_any(("test_secret_key",), body, _B64, "base64")
    assert not fields.signed_by_any(("test_secret_key",), body, _B64.lower(), "base64")
    assert fields.signed_by_any(("PARTNER_KEY",), _SHOPEE_MESSAGE, _HEX.upper(), "hex")
    assert fields.signed_by_any(("old", "PARTNER_KEY"), _SHOPEE_MESSAGE, f" {_HEX} ", "hex")


@pytest.mark.parametrize("given", ["", "   ", _HEX[:-1], "é" * 64])
def test_signed_by_any_refuses_blank_short_or_odd(given: str) -> None:
    assert not fields.signed_by_any(("PARTNER_KEY",), _SHOPEE_MESSAGE, given, "hex")


def test_signed_by_any_with_no_secrets_is_false() -> None:
    assert not fields.signed_by_any((), _SHOPEE_MESSAGE, _HEX, "hex")


def test_header() -> None:
    assert fields.header({"X-Topic": " orders/create "}, "X-Topic") == "orders/create"
    assert fields.header({}, "X-Topic") == ""


# -- provenance and keys ---------------------------------------------------------------------


def test_source_of_names_the_adapter_and_the_delivery() -> None:
    envelope = Envelope(
        platform="shopee",
        shop_id="123456",
        topic="order_status",
        delivery_id="d-1",
        received_at_ms=1_732_100_003_000,
        entity_key="shopee:123456:order:241120K7QXP3N5",
        body=b"{}",
    )
    assert fields.source_of("shopee", envelope) == Source(
        platform="shopee",
        shop_id="123456",
        topic="order_status",
        delivery_id="d-1",
        received_at=datetime(2024, 11, 20, 10, 53, 23, tzinfo=UTC),
    )


def test_delivery_key() -> None:
    assert fields.delivery_key("tiktok", "749", "n-1", ("order", "5764")) == "tiktok:749:order:5764"
    assert fields.delivery_key("tiktok", "749", "n-1", None) == "tiktok:749:delivery:n-1"


# -- ingress side: Rejection(400) or None, never InvalidPayload ------------------------------


def test_body_object() -> None:
    assert fields.body_object(b'{"shop_id": 1}') == {"shop_id": 1}
    for body, reason in ((b"HELLO", "body is not JSON"), (b"[1]", "body is not a JSON object")):
        with pytest.raises(Rejection) as info:
            fields.body_object(body)
        assert (info.value.status, info.value.reason) == (400, reason)


_DIGITS = re.compile(r"[0-9]{1,20}")


@pytest.mark.parametrize("shop", [123456, "123456", " 123456 "])
def test_body_shop_id_reads_the_field(shop: object) -> None:
    body = orjson.dumps({"code": 3, "shop_id": shop})
    assert fields.body_shop_id(body, "shop_id", "a shop id", _DIGITS) == "123456"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{}", "body has no shop_id"),
        (b'{"shop_id": null}', "body has no shop_id"),
        (b'{"shop_id": "12ab"}', "body shop_id is not a shop id"),
        (b'{"shop_id": true}', "body shop_id is not a shop id"),
        (b'{"shop_id": 1.5}', "body shop_id is not a shop id"),
        (b'{"shop_id": ""}', "body shop_id is not a shop id"),
        (b"HELLO", "body is not JSON"),
    ],
)
def test_body_shop_id_refuses_with_400(body: bytes, reason: str) -> None:
    with pytest.raises(Rejection) as info:
        fields.body_shop_id(body, "shop_id", "a shop id", _DIGITS)
    assert (info.value.status, info.value.reason) == (400, reason)


def test_body_shop_id_without_a_pattern_takes_any_id() -> None:
    assert fields.body_shop_id(b'{"seller_id": "ab-1"}', "seller_id", "an id") == "ab-1"
    with pytest.raises(Rejection, match="body seller_id is not an id"):
        fields.body_shop_id(b'{"seller_id": {"id": 1}}', "seller_id", "an id")


def test_safe_ident() -> None:
    assert fields.safe_ident(2281163757) == "2281163757"
    assert fields.safe_ident("a:b") == "a:b"
    for value in (None, True, "", {"id": 1}, "x" * 101):
        assert fields.safe_ident(value) is None


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ("7327112393057371910", "7327112393057371910"),
        (7327112393057371910, "7327112393057371910"),
        (" abc.1_2-3 ", "abc.1_2-3"),
        ("a" * 100, "a" * 100),
        ("a" * 101, None),
        ("a:b", None),
        ("has space", None),
        ("", None),
        (True, None),
        (None, None),
        (1.5, None),
    ],
)
def test_token(value: object, found: str | None) -> None:
    assert fields.token(value) == found


@pytest.mark.parametrize(
    ("value", "number"),
    [(3, 3), ("22", 22), (" 4 ", 4), (0, 0), (None, None), ("three", None), (True, None)],
)
def test_whole_number(value: object, number: int | None) -> None:
    assert fields.whole_number(value) == number


@pytest.mark.parametrize("value", [3.5, -1, 2**31, [3], "-1"])
def test_whole_number_refuses_quietly(value: object) -> None:
    assert fields.whole_number(value) is None


def test_epoch_iso() -> None:
    assert fields.epoch_iso(1_644_412_885) == "2022-02-09T13:21:25+00:00"
    assert fields.epoch_iso(None) is None
    assert fields.epoch_iso("soon") is None
    assert fields.epoch_iso(10**30) is None
