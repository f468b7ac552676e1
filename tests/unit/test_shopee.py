from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest

from pipeline.envelope import Envelope
from pipeline.errors import InvalidPayload
from pipeline.platforms.base import Rejection
from pipeline.platforms.shopee import STATUS_MAP, ShopeeAdapter, topic_of
from schemas.fulfillments import FulfillmentEvent
from schemas.inventory import ReservedStockEvent, ValueChange
from schemas.orders import ORDER_STATUSES, OrderStatusEvent
from schemas.products import PriceEvent
from tests.unit.platform_cases import Fixtures, at

FIXTURES = Fixtures("shopee")
fixture_bytes = FIXTURES.bytes
fixture = FIXTURES.json
body_with = FIXTURES.changed

SHOP = "123456"
ORDERSN = "241120K7QXP3N5"
RECEIVED_AT_MS = 1_732_100_003_000  # 2024-11-20T10:53:23Z

adapter = ShopeeAdapter()


def envelope(body: bytes, *, delivery_id: str = "d-1", topic: str = "order_status") -> Envelope:
    return Envelope(
        platform="shopee",
        shop_id=SHOP,
        topic=topic,
        delivery_id=delivery_id,
        received_at_ms=RECEIVED_AT_MS,
        entity_key=f"shopee:{SHOP}:delivery:{delivery_id}",
        body=body,
    )


def only_event(body: bytes, **kwargs: Any) -> Any:
    (event,) = adapter.normalize(envelope(body, **kwargs)).events
    return event


# -- shop_of ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shop_id", [123456, "123456", " 123456 "])
def test_shop_of_reads_the_body_shop_id(shop_id: object) -> None:
    assert adapter.shop_of({}, orjson.dumps({"shop_id": shop_id, "code": 3})) == SHOP


@pytest.mark.parametrize(
    "body",
    [
        b"HELLO",
        b"[123456]",
        b'{"code": 3}',
        b'{"shop_id": null}',
        b'{"shop_id": true}',
        b'{"shop_id": "12ab"}',
        b'{"shop_id": -5}',
        b'{"shop_id": 1.5}',
        b'{"shop_id": {"id": 1}}',
        b'{"shop_id": "123456789012345678901"}',
    ],
)
def test_shop_of_rejects_a_body_without_a_usable_shop_id(body: bytes) -> None:
    with pytest.raises(Rejection) as info:
        adapter.shop_of({}, body)
    assert info.value.status == 400
    assert "body" in info.value.reason


# -- describe --------------------------------------------------------------------------------


def test_describe_an_order_status_push() -> None:
    body = fixture_bytes("order_status_ready_to_ship")
    info = adapter.describe(SHOP, {}, body)
    assert info.topic == "order_status"
    assert info.delivery_id == "4f8b2c1d9e7a4b3c8d2e1f0a9b8c7d6e"
    assert info.entity_key == f"shopee:{SHOP}:order:{ORDERSN}"
    assert info.triggered_at == "2024-11-20T10:53:20+00:00"
    assert info.malformed is False


@pytest.mark.parametrize(
    ("name", "topic", "key"),
    [
        ("tracking_number", "tracking_number", f"order:{ORDERSN}"),
        ("reserved_stock", "reserved_stock", "product:22001234567"),
        ("item_price", "item_price", "product:22001234567"),
        ("order_status_cancelled", "order_status", f"order:{ORDERSN}"),
    ],
)
def test_describe_topics_and_entity_keys(name: str, topic: str, key: str) -> None:
    info = adapter.describe(SHOP, {}, fixture_bytes(name))
    assert info.topic == topic
    assert info.entity_key == f"shopee:{SHOP}:{key}"


@pytest.mark.parametrize(
    ("code", "topic"),
    [
        (1, "shop_authorization"),
        (2, "shop_deauthorization"),
        (3, "order_status"),
        (4, "tracking_number"),
        (8, "reserved_stock"),
        (12, "authorization_expiry"),
        (22, "item_price"),
        (31, "code_31"),
    ],
)
def test_topic_names(code: int, topic: str) -> None:
    assert topic_of(code) == topic


def test_describe_keys_a_shop_push_by_delivery() -> None:
    body = orjson.dumps({"data": {"success": 1}, "shop_id": 123456, "code": 1, "timestamp": 5})
    info = adapter.describe(SHOP, {}, body)
    assert info.topic == "shop_authorization"
    assert info.entity_key == f"shopee:{SHOP}:delivery:{info.delivery_id}"


@pytest.mark.parametrize(
    "data", [None, [], {"status": "SHIPPED"}, {"ordersn": True}, {"ordersn": "a:b"}]
)
def test_describe_falls_back_to_the_delivery_key(data: object) -> None:
    body = orjson.dumps({"data": data, "shop_id": 123456, "code": 3, "timestamp": 1732100000})
    info = adapter.describe(SHOP, {}, body)
    assert info.entity_key == f"shopee:{SHOP}:delivery:{info.delivery_id}"
    assert info.malformed is False


def test_content_id_is_stable_across_identical_resends() -> None:
    body = fixture_bytes("order_status_cancelled")
    first = adapter.describe(SHOP, {}, body).delivery_id
    # The same push re-serialised with keys in another order is the same content.
    reordered = orjson.dumps(dict(reversed(list(fixture("order_status_cancelled").items()))))
    assert first.startswith("c-")
    assert adapter.describe(SHOP, {}, body).delivery_id == first
    assert adapter.describe(SHOP, {}, reordered).delivery_id == first


@pytest.mark.parametrize(
    "changes",
    [
        {"data": {"status": "TO_RETURN"}},
        {"data": {"update_time": 1732186401}},
        {"timestamp": 1732186999},
        {"code": 4},
    ],
)
def test_content_id_changes_with_the_content(changes: dict[str, Any]) -> None:
    base = adapter.describe(SHOP, {}, fixture_bytes("order_status_cancelled")).delivery_id
    changed = adapter.describe(SHOP, {}, body_with("order_status_cancelled", **changes))
    assert changed.delivery_id != base


def test_content_id_depends_on_the_shop() -> None:
    body = fixture_bytes("order_status_cancelled")
    assert (
        adapter.describe("1", {}, body).delivery_id != adapter.describe(SHOP, {}, body).delivery_id
    )


def test_msg_id_is_preferred_over_content() -> None:
    body = body_with("order_status_cancelled", msg_id="abc123")
    assert adapter.describe(SHOP, {}, body).delivery_id == "abc123"


@pytest.mark.parametrize("msg_id", ["", "has space", "a" * 101, 42, None])
def test_an_unusable_msg_id_falls_back_to_content(msg_id: object) -> None:
    body = body_with("order_status_cancelled", msg_id=msg_id)
    assert adapter.describe(SHOP, {}, body).delivery_id.startswith("c-")


@pytest.mark.parametrize("code", [None, "three", True, 3.5, -1, [3]])
def test_describe_rejects_a_missing_or_odd_code(code: object) -> None:
    payload = fixture("order_status_cancelled")
    payload["code"] = code
    with pytest.raises(Rejection) as info:
        adapter.describe(SHOP, {}, orjson.dumps(payload))
    assert info.value.status == 400
    assert "code" in info.value.reason


def test_describe_tolerates_a_digit_string_code() -> None:
    info = adapter.describe(SHOP, {}, body_with("order_status_cancelled", code="3"))
    assert info.topic == "order_status"


def test_describe_drops_an_unreadable_timestamp() -> None:
    info = adapter.describe(SHOP, {}, body_with("order_status_cancelled", timestamp="soon"))
    assert info.triggered_at is None


def test_adapter_flags() -> None:
    assert (adapter.name, adapter.credential_scope, adapter.empty_ack) == ("shopee", "app", True)
    assert adapter.handshake({}, b"") is False


# -- normalize: order status -----------------------------------------------------------------


def test_ready_to_ship_normalizes_to_exact_fields() -> None:
    event = only_event(fixture_bytes("order_status_ready_to_ship"), delivery_id="4f8b")
    assert isinstance(event, OrderStatusEvent)
    assert event.type == "order.status_changed"
    change = event.order
    assert (change.platform, change.shop_id, change.external_id) == ("shopee", SHOP, ORDERSN)
    assert (change.status, change.platform_status) == ("paid", "READY_TO_SHIP")
    assert change.source_updated_at == at("2024-11-20T10:53:10")
    assert change.line_id is None
    assert event.occurred_at == at("2024-11-20T10:53:10")
    assert event.entity_key == f"shopee:{SHOP}:order:{ORDERSN}"
    assert (event.source.platform, event.source.topic, event.source.delivery_id) == (
        "shopee",
        "order_status",
        "4f8b",
    )
    assert event.source.received_at == at("2024-11-20T10:53:23")


def test_cancelled_normalizes_to_cancelled() -> None:
    event = only_event(fixture_bytes("order_status_cancelled"))
    assert (event.order.status, event.order.platform_status) == ("cancelled", "CANCELLED")
    assert event.order.source_updated_at == at("2024-11-21T10:53:20")


def test_event_id_is_the_same_for_a_resend_under_another_delivery_id() -> None:
    body = fixture_bytes("order_status_ready_to_ship")
    assert only_event(body, delivery_id="a").event_id == only_event(body, delivery_id="b").event_id


def test_event_id_differs_for_another_status() -> None:
    first = only_event(fixture_bytes("order_status_ready_to_ship"))
    shipped = only_event(body_with("order_status_ready_to_ship", data={"status": "SHIPPED"}))
    assert first.event_id != shipped.event_id


def test_order_time_falls_back_to_the_push_timestamp() -> None:
    payload = fixture("order_status_ready_to_ship")
    del payload["data"]["update_time"]
    event = only_event(orjson.dumps(payload))
    assert event.order.source_updated_at == at("2024-11-20T10:53:20")


@pytest.mark.parametrize(
    ("platform_status", "status"),
    [
        ("UNPAID", "pending"),
        ("READY_TO_SHIP", "paid"),
        ("PROCESSED", "paid"),
        ("INVOICE_PENDING", "paid"),
        ("SHIPPED", "fulfilled"),
        ("TO_CONFIRM_RECEIVE", "fulfilled"),
        ("IN_CANCEL", "paid"),
        ("CANCELLED", "cancelled"),
        ("TO_RETURN", "returned"),
        ("COMPLETED", "completed"),
    ],
)
def test_every_order_status_maps(platform_status: str, status: str) -> None:
    assert STATUS_MAP[platform_status] == status
    body = body_with("order_status_ready_to_ship", data={"status": platform_status})
    event = only_event(body)
    assert (event.order.status, event.order.platform_status) == (status, platform_status)


def test_status_map_covers_the_documented_statuses_with_canonical_values() -> None:
    assert len(STATUS_MAP) == 10
    assert set(STATUS_MAP.values()) <= set(ORDER_STATUSES)


@pytest.mark.parametrize("platform_status", ["RETRY_SHIP", "ready_to_ship", 7])
def test_an_unknown_status_is_invalid(platform_status: object) -> None:
    body = body_with("order_status_ready_to_ship", data={"status": platform_status})
    with pytest.raises(InvalidPayload, match=r"data\.status"):
        adapter.normalize(envelope(body))


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"status": None}, "data.status"),
        ({"ordersn": None}, "data.ordersn"),
        ({"ordersn": {"x": 1}}, "data.ordersn"),
        ({"update_time": "yesterday"}, "data.update_time"),
    ],
)
def test_order_status_names_the_unusable_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidPayload, match=field):
        adapter.normalize(envelope(body_with("order_status_ready_to_ship", data=data)))


def test_a_data_that_is_not_an_object_is_invalid() -> None:
    payload = fixture("order_status_ready_to_ship")
    payload["data"] = [ORDERSN]
    with pytest.raises(InvalidPayload, match="data is not an object"):
        adapter.normalize(envelope(orjson.dumps(payload)))


# -- normalize: tracking number, reserved stock, price ---------------------------------------


def test_tracking_number_normalizes_to_exact_fields() -> None:
    event = only_event(fixture_bytes("tracking_number"), topic="tracking_number")
    assert isinstance(event, FulfillmentEvent)
    assert event.type == "fulfillment.updated"
    f = event.fulfillment
    assert (f.platform, f.shop_id) == ("shopee", SHOP)
    assert (f.external_id, f.order_external_id) == ("OFG178230915527046", ORDERSN)
    assert f.tracking_number == "SPXMY045129837361"
    assert (f.status, f.platform_status, f.carrier, f.lines) == (None, None, None, ())
    # No update_time in a tracking push: the push timestamp versions it.
    assert f.source_updated_at == at("2024-11-20T14:40:00")
    assert event.occurred_at == at("2024-11-20T14:40:00")
    assert event.entity_key == f"shopee:{SHOP}:order:{ORDERSN}"


def test_tracking_number_without_a_package_is_keyed_by_the_order() -> None:
    payload = fixture("tracking_number")
    del payload["data"]["package_number"]
    event = only_event(orjson.dumps(payload))
    assert event.fulfillment.external_id == ORDERSN


def test_tracking_number_event_id_is_stable() -> None:
    body = fixture_bytes("tracking_number")
    assert only_event(body, delivery_id="a").event_id == only_event(body, delivery_id="b").event_id


def test_reserved_stock_normalizes_to_exact_fields() -> None:
    event = only_event(fixture_bytes("reserved_stock"), topic="reserved_stock")
    assert isinstance(event, ReservedStockEvent)
    assert event.type == "inventory.reserved_changed"
    r = event.reservation
    assert (r.platform, r.shop_id, r.item_id) == ("shopee", SHOP, "22001234567")
    assert (r.variant_id, r.order_id, r.action) == ("180012345678", ORDERSN, "place_order")
    assert r.changes == (ValueChange(name="reserved_stock", old="12", new="11"),)
    assert r.source_updated_at == at("2024-11-20T10:53:15")
    assert event.entity_key == f"shopee:{SHOP}:product:22001234567"


def test_reserved_stock_variation_zero_means_none() -> None:
    event = only_event(body_with("reserved_stock", data={"variation_id": 0}))
    assert event.reservation.variant_id is None


def test_reserved_stock_for_another_order_is_another_event() -> None:
    first = only_event(fixture_bytes("reserved_stock"))
    other = only_event(body_with("reserved_stock", data={"ordersn": "241120OTHER001"}))
    assert first.event_id != other.event_id


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"item_id": None}, "data.item_id"),
        ({"changed_values": {"name": "x"}}, "data.changed_values"),
        ({"changed_values": ["x"]}, r"data.changed_values\[0\]"),
        ({"changed_values": [{"old": 1, "new": 2}]}, r"data.changed_values\[0\].name"),
    ],
)
def test_reserved_stock_names_the_unusable_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidPayload, match=field):
        adapter.normalize(envelope(body_with("reserved_stock", data=data)))


def test_item_price_normalizes_to_exact_fields() -> None:
    (event,) = adapter.normalize(envelope(fixture_bytes("item_price"), topic="item_price")).events
    assert isinstance(event, PriceEvent)
    assert event.type == "price.updated"
    p = event.price
    assert (p.platform, p.shop_id) == ("shopee", SHOP)
    assert (p.external_product_id, p.external_variant_id) == ("22001234567", "180012345678")
    assert (p.price, p.original_price, p.currency) == (Decimal("45.9"), Decimal("45.9"), None)
    assert p.source_updated_at == at("2024-11-20T11:01:40")
    assert event.entity_key == f"shopee:{SHOP}:product:22001234567"


def test_item_price_of_an_item_without_models_uses_the_item_id() -> None:
    event = only_event(body_with("item_price", data={"model_id": 0}))
    assert event.price.external_variant_id == "22001234567"


def test_item_local_price_sets_the_price_only() -> None:
    event = only_event(body_with("item_price", data={"update_field": "local_price"}))
    assert (event.price.price, event.price.original_price) == (Decimal("45.9"), None)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"new_value": None}, "data.new_value"),
        ({"new_value": "cheap"}, "data.new_value"),
        ({"update_field": "stock"}, "data.update_field"),
        ({"item_id": None}, "data.item_id"),
    ],
)
def test_item_price_names_the_unusable_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidPayload, match=field):
        adapter.normalize(envelope(body_with("item_price", data=data)))


# -- normalize: ignored and refused ----------------------------------------------------------


@pytest.mark.parametrize("code", [1, 2, 12, 5, 31])
def test_unhandled_codes_are_ignored(code: int) -> None:
    # Their data is not read at all, so an odd one does not turn a no-op into a dead letter.
    body = orjson.dumps({"data": "odd", "shop_id": 123456, "code": code, "timestamp": 1})
    result = adapter.normalize(envelope(body))
    assert result.events == ()
    assert result.ignored == f"shopee code {code} is not handled yet"


@pytest.mark.parametrize("body", [b"HELLO", b"[]", b'{"shop_id": 123456}'])
def test_normalize_refuses_what_is_not_a_push(body: bytes) -> None:
    with pytest.raises(InvalidPayload):
        adapter.normalize(envelope(body))
