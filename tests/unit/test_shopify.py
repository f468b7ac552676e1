from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest

from pipeline.errors import InvalidPayload
from pipeline.platforms.base import Credentials, Rejection
from pipeline.platforms.shopify import (
    HMAC_HEADER,
    SHOP_HEADER,
    TOPIC_HEADER,
    WEBHOOK_ID_HEADER,
    ShopifyAdapter,
    canonical_status,
    sign,
)
from schemas.orders import OrderEvent
from tests.unit.factories import (
    RECEIVED_AT_MS,
    SHOP,
    envelope,
    fixture,
    fixture_bytes,
    order_body,
    shopify_headers,
)

KAV_SECRET = "test_secret_key"
KAV_BODY = b'{"foo": "bar"}'
KAV_DIGEST = "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g="

adapter = ShopifyAdapter()


def _event(name: str = "order_paid", topic: str = "orders/updated") -> OrderEvent:
    (event,) = adapter.normalize(envelope(fixture_bytes(name), topic=topic)).events
    return event


# -- signature -------------------------------------------------------------------------------


def test_sign_matches_the_published_vector() -> None:
    assert sign(KAV_SECRET, KAV_BODY) == KAV_DIGEST


def test_verify_accepts_the_published_vector() -> None:
    assert adapter.verify(Credentials((KAV_SECRET,)), {HMAC_HEADER: KAV_DIGEST}, KAV_BODY)


def test_verify_rejects_a_wrong_secret() -> None:
    assert not adapter.verify(
        Credentials(("test_secret_kez",)), {HMAC_HEADER: KAV_DIGEST}, KAV_BODY
    )


def test_verify_rejects_a_missing_or_blank_header() -> None:
    assert not adapter.verify(Credentials((KAV_SECRET,)), {}, KAV_BODY)
    assert not adapter.verify(Credentials((KAV_SECRET,)), {HMAC_HEADER: "  "}, KAV_BODY)


def test_verify_rejects_a_truncated_signature() -> None:
    assert not adapter.verify(Credentials((KAV_SECRET,)), {HMAC_HEADER: KAV_DIGEST[:-2]}, KAV_BODY)


def test_verify_rejects_a_reserialized_body() -> None:
    assert not adapter.verify(
        Credentials((KAV_SECRET,)), {HMAC_HEADER: KAV_DIGEST}, b'{"foo":"bar"}'
    )


def test_verify_accepts_the_second_secret_of_a_rotation() -> None:
    assert adapter.verify(
        Credentials(("old-secret", KAV_SECRET)), {HMAC_HEADER: KAV_DIGEST}, KAV_BODY
    )


def test_verify_with_no_secrets_is_false() -> None:
    assert not adapter.verify(Credentials(()), {HMAC_HEADER: KAV_DIGEST}, KAV_BODY)


def test_verify_survives_a_non_ascii_header() -> None:
    assert not adapter.verify(
        Credentials((KAV_SECRET,)), {HMAC_HEADER: "B23tXN681gZ0qIWNRrgtzBE9XSDo5yé="}, b""
    )


# -- shop_of ---------------------------------------------------------------------------------


def test_shop_of_normalizes_case_and_spaces() -> None:
    assert adapter.shop_of({SHOP_HEADER: "  Demo.MyShopify.com "}, b"") == SHOP


@pytest.mark.parametrize("value", ["", "   "])
def test_shop_of_rejects_a_missing_header(value: str) -> None:
    with pytest.raises(Rejection) as info:
        adapter.shop_of({SHOP_HEADER: value}, b"")
    assert info.value.status == 400
    assert SHOP_HEADER in info.value.reason


@pytest.mark.parametrize(
    "value", ["demo shop", ".myshopify.com", "demo/../x", "démo.com", "a" * 256]
)
def test_shop_of_rejects_what_is_not_a_domain(value: str) -> None:
    with pytest.raises(Rejection, match="400"):
        adapter.shop_of({SHOP_HEADER: value}, b"")


# -- canonical_shop (what `pipeline channels` accepts as --shop) ------------------------------


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("demo.myshopify.com", "demo.myshopify.com"),
        ("  Demo.MyShopify.com ", "demo.myshopify.com"),
        ("a.myshopify.com", "a.myshopify.com"),
        ("activepieces-test.myshopify.com", "activepieces-test.myshopify.com"),
        ("demo.myshopify.com/", "demo.myshopify.com"),
        ("https://demo.myshopify.com", "demo.myshopify.com"),
        ("HTTPS://Demo.myshopify.com/admin/orders", "demo.myshopify.com"),
        ("http://demo.myshopify.com/", "demo.myshopify.com"),
    ],
)
def test_canonical_shop_is_the_myshopify_domain(typed: str, stored: str) -> None:
    assert adapter.canonical_shop(typed) == stored
    # Whatever the CLI stores is what the ingress reads from the header.
    assert adapter.shop_of({SHOP_HEADER: stored}, b"") == stored


@pytest.mark.parametrize(
    "typed",
    [
        "not-a-shop",
        "demo",
        "shop.example.com",
        "https://shop.example.com",
        "https://admin.shopify.com/store/demo",
        "myshopify.com",
        ".myshopify.com",
        "-demo.myshopify.com",
        "demo-.myshopify.com",
        "a.b.myshopify.com",
        "demo_shop.myshopify.com",
        "demo.myshopify.com.evil.com",
        "demo.myshopify.com/admin",
        "ftp://demo.myshopify.com",
        "https://user@demo.myshopify.com",
        "https://demo.myshopify.com:8443",
        "https://",
        "https://[::1",
        f"{'a' * 64}.myshopify.com",
        "",
    ],
)
def test_canonical_shop_refuses_anything_else(typed: str) -> None:
    assert adapter.canonical_shop(typed) is None


# -- describe --------------------------------------------------------------------------------


def test_describe_keys_an_order_topic_by_order_id() -> None:
    body = fixture_bytes("order_paid")
    info = adapter.describe(SHOP, shopify_headers(body), body)
    assert info.entity_key == f"shopify:{SHOP}:order:450789469"
    assert info.topic == "orders/create"
    assert info.malformed is False


def test_describe_carries_the_optional_headers() -> None:
    body = fixture_bytes("order_paid")
    info = adapter.describe(SHOP, shopify_headers(body), body)
    assert info.delivery_id == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert info.event_id == "98880550-7158-44d4-b7cd-2c97c8a091b5"
    assert (info.api_version, info.triggered_at) == ("2024-01", "2024-03-11T16:05:17.123Z")


def test_describe_keys_refunds_by_their_order() -> None:
    body = orjson.dumps({"id": 509562969, "order_id": 450789469, "note": "wrong size"})
    info = adapter.describe(SHOP, shopify_headers(body, topic="refunds/create"), body)
    assert info.entity_key == f"shopify:{SHOP}:order:450789469"


def test_describe_flags_a_malformed_body_and_keys_by_delivery() -> None:
    body = b'{"id": 450789469,'
    info = adapter.describe(SHOP, shopify_headers(body, webhook_id="w-1"), body)
    assert info.malformed is True
    assert info.entity_key == f"shopify:{SHOP}:delivery:w-1"


@pytest.mark.parametrize("body", [b"[1, 2]", b'{"id": true}', b'{"name": "#1001"}'])
def test_describe_keys_by_delivery_when_no_usable_id(body: bytes) -> None:
    info = adapter.describe(SHOP, shopify_headers(body, webhook_id="w-2"), body)
    assert info.malformed is False
    assert info.entity_key == f"shopify:{SHOP}:delivery:w-2"


@pytest.mark.parametrize("header", [TOPIC_HEADER, WEBHOOK_ID_HEADER])
@pytest.mark.parametrize("value", [None, "", "orders/create; DROP", "a" * 201, "ünïcode"])
def test_describe_rejects_missing_or_odd_headers(header: str, value: str | None) -> None:
    headers = shopify_headers(b"{}")
    if value is None:
        del headers[header]
    else:
        headers[header] = value
    with pytest.raises(Rejection) as info:
        adapter.describe(SHOP, headers, b"{}")
    assert info.value.status == 400
    assert header in info.value.reason


def test_describe_entity_key_matches_the_event_entity_key() -> None:
    body = fixture_bytes("order_partially_fulfilled")
    info = adapter.describe(SHOP, shopify_headers(body), body)
    (event,) = adapter.normalize(envelope(body)).events
    assert info.entity_key == event.entity_key


# -- canonical status ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("financial", "fulfillment", "cancelled", "status"),
    [
        ("pending", None, False, "pending"),
        ("authorized", None, False, "pending"),
        ("partially_paid", None, False, "pending"),
        (None, None, False, "pending"),
        ("paid", None, False, "paid"),
        ("partially_refunded", None, False, "paid"),
        ("paid", "partial", False, "partially_fulfilled"),
        ("paid", "fulfilled", False, "fulfilled"),
        ("partially_refunded", "fulfilled", False, "fulfilled"),
        ("refunded", None, False, "refunded"),
        ("refunded", "fulfilled", False, "refunded"),
        ("voided", None, False, "cancelled"),
        ("paid", None, True, "cancelled"),
        ("refunded", "fulfilled", True, "cancelled"),
    ],
)
def test_canonical_status(
    financial: str | None, fulfillment: str | None, cancelled: bool, status: str
) -> None:
    assert canonical_status(financial, fulfillment, cancelled) == status


# -- normalize: fixtures ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "topic", "event_type", "status"),
    [
        ("order_paid", "orders/paid", "order.paid", "paid"),
        ("order_cancelled", "orders/cancelled", "order.cancelled", "cancelled"),
        (
            "order_partially_fulfilled",
            "orders/partially_fulfilled",
            "order.partially_fulfilled",
            "partially_fulfilled",
        ),
        ("order_fulfilled", "orders/fulfilled", "order.fulfilled", "fulfilled"),
    ],
)
def test_fixture_normalizes_to_one_event(
    name: str, topic: str, event_type: str, status: str
) -> None:
    event = _event(name, topic)
    assert event.type == event_type
    assert event.order.status == status
    assert event.order.external_id == str(fixture(name)["id"])


def test_paid_order_fields() -> None:
    order = _event().order
    assert order.order_number == "#1001"
    assert order.currency == "USD"
    assert order.customer_email == "bob.norman@mail.example.com"
    assert (order.financial_status, order.fulfillment_status) == ("paid", None)
    assert order.cancelled_at is None


def test_amounts_are_exact_decimals() -> None:
    order = _event().order
    assert order.total_amount == Decimal("598.94")
    assert isinstance(order.total_amount, Decimal)
    assert (order.subtotal_amount, order.total_tax) == (Decimal("597.00"), Decimal("11.94"))


def test_times_are_utc_aware() -> None:
    order = _event().order
    assert order.placed_at == datetime(2024, 3, 11, 16, 0, tzinfo=UTC)
    assert order.source_updated_at == datetime(2024, 3, 11, 16, 5, 17, tzinfo=UTC)
    assert order.source_updated_at is not None
    assert order.source_updated_at.utcoffset() == timedelta(0)


def test_lines_are_read_in_order() -> None:
    lines = _event().order.lines
    assert [ln.external_line_id for ln in lines] == ["466157049", "518995019"]
    assert [ln.quantity for ln in lines] == [1, 2]
    assert lines[1].sku == "IPOD2008PINK"
    assert (lines[1].variant_id, lines[1].product_id) == ("49148385", "632910392")
    assert lines[1].unit_price == Decimal("199.00")


def test_line_without_id_variant_or_sku_gets_defaults() -> None:
    body = order_body(line_items=[{"title": "Custom", "price": "5", "quantity": 3}])
    (line,) = adapter.normalize(envelope(body)).events[0].order.lines
    assert (line.external_line_id, line.quantity, line.variant_id, line.sku) == ("0", 3, None, None)


def test_cancelled_order_falls_back_to_customer_email() -> None:
    order = _event("order_cancelled", "orders/cancelled").order
    assert order.customer_email == "karine.ruby@example.com"
    assert order.cancelled_at == datetime(2024, 3, 12, 8, 30, tzinfo=UTC)


def test_event_carries_its_source() -> None:
    event = _event()
    assert event.source.shop_id == SHOP
    assert event.source.topic == "orders/updated"
    assert event.source.received_at == datetime.fromtimestamp(RECEIVED_AT_MS / 1000, tz=UTC)
    assert event.occurred_at == event.order.source_updated_at


# -- normalize: event ids --------------------------------------------------------------------


def test_same_input_same_event_id() -> None:
    assert _event().event_id == _event().event_id


def test_event_id_does_not_depend_on_the_delivery() -> None:
    one = adapter.normalize(envelope(delivery_id="a")).events[0]
    two = adapter.normalize(envelope(delivery_id="b")).events[0]
    assert one.event_id == two.event_id


def test_different_topic_different_event_id() -> None:
    assert _event(topic="orders/updated").event_id != _event(topic="orders/paid").event_id


def test_different_updated_at_different_event_id() -> None:
    one = adapter.normalize(envelope(order_body(updated_at="2024-03-11T11:05:17-05:00")))
    two = adapter.normalize(envelope(order_body(updated_at="2024-03-11T11:05:18-05:00")))
    assert one.events[0].event_id != two.events[0].event_id


def test_same_instant_in_another_offset_same_event_id() -> None:
    one = adapter.normalize(envelope(order_body(updated_at="2024-03-11T11:05:17-05:00")))
    two = adapter.normalize(envelope(order_body(updated_at="2024-03-11T16:05:17Z")))
    assert one.events[0].event_id == two.events[0].event_id


def test_without_updated_at_the_delivery_versions_the_event() -> None:
    body = order_body(drop=("updated_at",))
    one = adapter.normalize(envelope(body, delivery_id="a")).events[0]
    two = adapter.normalize(envelope(body, delivery_id="b")).events[0]
    assert one.event_id != two.event_id
    assert one.occurred_at == datetime.fromtimestamp(RECEIVED_AT_MS / 1000, tz=UTC)


# -- normalize: ignored and invalid ----------------------------------------------------------


@pytest.mark.parametrize("topic", ["orders/edited", "refunds/create", "app/uninstalled"])
def test_unhandled_topic_is_ignored(topic: str) -> None:
    result = adapter.normalize(envelope(b"not even json", topic=topic))
    assert result.events == ()
    assert result.ignored is not None
    assert topic in result.ignored


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2, 3]", "not a JSON object"),
        (b'"a string"', "not a JSON object"),
        (order_body(drop=("id",)), "order has no id"),
        (order_body(id=None), "order has no id"),
        (order_body(id=True), "id is not an id"),
        (order_body(id="   "), "id is not an id"),
        (order_body(id=1.5), "id is not an id"),
        (order_body(total_price="abc"), "total_price is not an amount"),
        (order_body(total_price="1,000.00"), "total_price is not an amount"),
        (order_body(total_price=["1"]), "total_price is not an amount"),
        (order_body(total_price="NaN"), "total_price is out of range"),
        (order_body(total_price="1e20"), "total_price is out of range"),
        (order_body(created_at="yesterday"), "created_at is not an ISO 8601"),
        (order_body(updated_at=1710172000), "updated_at is not a timestamp"),
        (order_body(cancelled_at="2024-13-01T00:00:00Z"), "cancelled_at is not an ISO 8601"),
        (order_body(line_items="none"), "line_items is not a list"),
        (order_body(line_items=[1]), r"line_items\[0\] is not an object"),
    ],
)
def test_unusable_payload_raises_invalid_payload(body: bytes, message: str) -> None:
    with pytest.raises(InvalidPayload, match=message):
        adapter.normalize(envelope(body))


@pytest.mark.parametrize("quantity", [-1, 1.5, "2", True, None, 2**31])
def test_line_quantity_must_be_a_count(quantity: object) -> None:
    body = order_body(line_items=[{"id": 1, "quantity": quantity, "price": "1.00"}])
    with pytest.raises(InvalidPayload, match=r"line_items\[0\].quantity is not a count"):
        adapter.normalize(envelope(body))


def test_bad_line_price_names_the_line() -> None:
    body = order_body(line_items=[{"id": 1, "quantity": 1}, {"id": 2, "quantity": 1, "price": "x"}])
    with pytest.raises(InvalidPayload, match=r"line_items\[1\].price"):
        adapter.normalize(envelope(body))


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_out_of_range_timestamp_is_invalid_payload(value: str) -> None:
    with pytest.raises(InvalidPayload):
        adapter.normalize(envelope(order_body(updated_at=value)))
