from __future__ import annotations

from typing import Any

import orjson
import pytest

from pipeline.envelope import Envelope
from pipeline.errors import InvalidPayload
from pipeline.platforms.base import Rejection
from pipeline.platforms.tiktok import (
    PACKAGE_STATUS_MAP,
    STATUS_MAP,
    STOCK_STATUS_MAP,
    TikTokAdapter,
    topic_of,
)
from schemas.fulfillments import FULFILLMENT_STATUSES, FulfillmentEvent
from schemas.inventory import StockStatusEvent
from schemas.orders import ORDER_STATUSES, OrderStatusEvent
from tests.unit.platform_cases import Fixtures, at

FIXTURES = Fixtures("tiktok")
fixture_bytes = FIXTURES.bytes
fixture = FIXTURES.json
body_with = FIXTURES.changed

SHOP = "7494049642642441621"
ORDER = "576486316948490001"
RECEIVED_AT_MS = 1_644_412_890_000  # 2022-02-09T13:21:30Z

# The body of TikTok Shop's known-answer signature vector (checked in test_app_signed.py).
KAV_BODY = (
    b'{"type":1,"tts_notification_id":"7327112393057371910","shop_id":"7494049642642441621",'
    b'"timestamp":1644412885,"data":{"order_id":"576486316948490001","order_status":"UNPAID",'
    b'"is_on_hold_order":false,"update_time":1644412885}}'
)

adapter = TikTokAdapter()


def without(name: str, field: str) -> bytes:
    payload = fixture(name)
    del payload["data"][field]
    return orjson.dumps(payload)


def envelope(
    body: bytes, *, delivery_id: str = "7327112393057371910", topic: str = "order_status_change"
) -> Envelope:
    return Envelope(
        platform="tiktok",
        shop_id=SHOP,
        topic=topic,
        delivery_id=delivery_id,
        received_at_ms=RECEIVED_AT_MS,
        entity_key=f"tiktok:{SHOP}:order:{ORDER}",
        body=body,
    )


def only_event(body: bytes, **kwargs: Any) -> Any:
    (event,) = adapter.normalize(envelope(body, **kwargs)).events
    return event


def test_the_unpaid_fixture_is_the_vector_body_byte_for_byte() -> None:
    assert fixture_bytes("order_status_unpaid") == KAV_BODY


# -- shop_of ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shop_id", [SHOP, int(SHOP), f" {SHOP} "])
def test_shop_of_reads_the_body_shop_id(shop_id: object) -> None:
    assert adapter.shop_of({}, orjson.dumps({"type": 1, "shop_id": shop_id})) == SHOP


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'"7494049642642441621"',
        b'{"type": 1}',
        b'{"shop_id": ""}',
        b'{"shop_id": false}',
        b'{"shop_id": "749 404"}',
        b'{"shop_id": "shop:1"}',
        b'{"shop_id": ["7494049642642441621"]}',
    ],
)
def test_shop_of_rejects_a_body_without_a_usable_shop_id(body: bytes) -> None:
    with pytest.raises(Rejection) as info:
        adapter.shop_of({}, body)
    assert info.value.status == 400
    assert "body" in info.value.reason


# -- describe --------------------------------------------------------------------------------


def test_describe_the_vector_body() -> None:
    info = adapter.describe(SHOP, {}, KAV_BODY)
    assert info.topic == "order_status_change"
    assert info.delivery_id == "7327112393057371910"
    assert info.entity_key == f"tiktok:{SHOP}:order:{ORDER}"
    assert info.triggered_at == "2022-02-09T13:21:25+00:00"
    assert info.malformed is False


@pytest.mark.parametrize(
    ("name", "topic", "delivery_id", "key"),
    [
        ("order_status_cancel", "order_status_change", "7327112393057371915", f"order:{ORDER}"),
        ("package_update", "package_update", "7327112393057371913", f"order:{ORDER}"),
        (
            "inventory_status",
            "inventory_status_change",
            "7327112393057371920",
            "product:1729592969712207008",
        ),
    ],
)
def test_describe_fixtures(name: str, topic: str, delivery_id: str, key: str) -> None:
    info = adapter.describe(SHOP, {}, fixture_bytes(name))
    assert (info.topic, info.delivery_id) == (topic, delivery_id)
    assert info.entity_key == f"tiktok:{SHOP}:{key}"


def test_describe_keys_a_cancellation_by_its_order() -> None:
    body = orjson.dumps(
        {
            "type": 11,
            "tts_notification_id": "7327112393057371930",
            "shop_id": SHOP,
            "timestamp": 1644499200,
            "data": {"order_id": ORDER, "cancel_status": "CANCELLATION_REQUEST_PENDING"},
        }
    )
    info = adapter.describe(SHOP, {}, body)
    assert (info.topic, info.entity_key) == (
        "cancellation_status_change",
        f"tiktok:{SHOP}:order:{ORDER}",
    )


@pytest.mark.parametrize(
    ("kind", "topic"),
    [
        (1, "order_status_change"),
        (4, "package_update"),
        (11, "cancellation_status_change"),
        (27, "inventory_status_change"),
        (6, "type_6"),
    ],
)
def test_topic_names(kind: int, topic: str) -> None:
    assert topic_of(kind) == topic


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        (1, {"order_status": "UNPAID"}),
        (1, None),
        (4, {"order_id": {"id": 1}}),
        (27, {"sku_id": "1"}),
        (6, {"order_id": ORDER}),
    ],
)
def test_describe_falls_back_to_the_delivery_key(kind: int, data: object) -> None:
    body = orjson.dumps(
        {"type": kind, "tts_notification_id": "n-1", "shop_id": SHOP, "timestamp": 1, "data": data}
    )
    assert adapter.describe(SHOP, {}, body).entity_key == f"tiktok:{SHOP}:delivery:n-1"


@pytest.mark.parametrize("notification_id", [None, "", "has space", "x" * 101, True, {"id": 1}])
def test_describe_rejects_a_missing_or_odd_notification_id(notification_id: object) -> None:
    body = body_with("order_status_awaiting_shipment", tts_notification_id=notification_id)
    with pytest.raises(Rejection) as info:
        adapter.describe(SHOP, {}, body)
    assert info.value.status == 400
    assert "tts_notification_id" in info.value.reason


def test_describe_accepts_a_numeric_notification_id() -> None:
    body = body_with("order_status_awaiting_shipment", tts_notification_id=7327112393057371911)
    assert adapter.describe(SHOP, {}, body).delivery_id == "7327112393057371911"


@pytest.mark.parametrize("kind", [None, "one", False, 1.0, -4])
def test_describe_rejects_a_missing_or_odd_type(kind: object) -> None:
    with pytest.raises(Rejection) as info:
        adapter.describe(SHOP, {}, body_with("order_status_awaiting_shipment", type=kind))
    assert info.value.status == 400
    assert "type" in info.value.reason


def test_describe_rejects_a_body_that_is_not_an_object() -> None:
    with pytest.raises(Rejection, match="400"):
        adapter.describe(SHOP, {}, b"[1]")


def test_adapter_flags() -> None:
    assert (adapter.name, adapter.credential_scope, adapter.empty_ack) == ("tiktok", "app", True)
    assert adapter.handshake({}, b"") is False


# -- normalize: order status -----------------------------------------------------------------


def test_the_vector_body_normalizes_to_pending() -> None:
    event = only_event(KAV_BODY)
    assert isinstance(event, OrderStatusEvent)
    change = event.order
    assert (change.platform, change.shop_id, change.external_id) == ("tiktok", SHOP, ORDER)
    assert (change.status, change.platform_status) == ("pending", "UNPAID")
    assert change.source_updated_at == at("2022-02-09T13:21:25")


def test_awaiting_shipment_normalizes_to_exact_fields() -> None:
    event = only_event(
        fixture_bytes("order_status_awaiting_shipment"), delivery_id="7327112393057371911"
    )
    assert event.type == "order.status_changed"
    assert (event.order.status, event.order.platform_status) == ("paid", "AWAITING_SHIPMENT")
    assert event.order.source_updated_at == at("2022-02-09T13:23:20")
    assert event.occurred_at == at("2022-02-09T13:23:20")
    assert event.entity_key == f"tiktok:{SHOP}:order:{ORDER}"
    assert (event.source.platform, event.source.delivery_id, event.source.topic) == (
        "tiktok",
        "7327112393057371911",
        "order_status_change",
    )
    assert event.source.received_at == at("2022-02-09T13:21:30")


def test_cancel_normalizes_to_cancelled() -> None:
    event = only_event(fixture_bytes("order_status_cancel"))
    assert (event.order.status, event.order.platform_status) == ("cancelled", "CANCEL")
    assert event.order.source_updated_at == at("2022-02-10T13:21:40")


def test_order_event_id_is_stable_across_deliveries_and_differs_by_status() -> None:
    body = fixture_bytes("order_status_awaiting_shipment")
    first = only_event(body, delivery_id="a").event_id
    assert only_event(body, delivery_id="b").event_id == first
    assert only_event(fixture_bytes("order_status_cancel")).event_id != first


def test_without_update_time_the_notification_time_orders_the_event() -> None:
    event = only_event(without("order_status_awaiting_shipment", "update_time"))
    assert event.order.source_updated_at is None
    assert event.occurred_at == at("2022-02-09T13:23:25")


@pytest.mark.parametrize(
    ("platform_status", "status"),
    [
        ("UNPAID", "pending"),
        ("ON_HOLD", "pending"),
        ("AWAITING_SHIPMENT", "paid"),
        ("AWAITING_COLLECTION", "paid"),
        ("PARTIALLY_SHIPPING", "partially_fulfilled"),
        ("IN_TRANSIT", "fulfilled"),
        ("DELIVERED", "completed"),
        ("COMPLETED", "completed"),
        ("CANCEL", "cancelled"),
        ("CANCELLED", "cancelled"),
    ],
)
def test_every_order_status_maps(platform_status: str, status: str) -> None:
    assert STATUS_MAP[platform_status] == status
    event = only_event(
        body_with("order_status_awaiting_shipment", data={"order_status": platform_status})
    )
    assert (event.order.status, event.order.platform_status) == (status, platform_status)


def test_status_maps_hold_only_canonical_values() -> None:
    assert len(STATUS_MAP) == 10
    assert set(STATUS_MAP.values()) <= set(ORDER_STATUSES)
    assert set(PACKAGE_STATUS_MAP.values()) <= set(FULFILLMENT_STATUSES)


@pytest.mark.parametrize("platform_status", ["SHIPPED_BY_MOON", "unpaid", 3])
def test_an_unknown_order_status_is_invalid(platform_status: object) -> None:
    body = body_with("order_status_awaiting_shipment", data={"order_status": platform_status})
    with pytest.raises(InvalidPayload, match=r"data\.order_status"):
        adapter.normalize(envelope(body))


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"order_status": None}, r"data\.order_status is missing"),
        ({"order_id": None}, r"data\.order_id is missing"),
        ({"update_time": "later"}, r"data\.update_time"),
    ],
)
def test_order_status_names_the_unusable_field(data: dict[str, Any], field: str) -> None:
    body = body_with("order_status_awaiting_shipment", data=data)
    with pytest.raises(InvalidPayload, match=field):
        adapter.normalize(envelope(body))


# -- normalize: packages ---------------------------------------------------------------------


def test_package_update_normalizes_to_exact_fields() -> None:
    event = only_event(fixture_bytes("package_update"), topic="package_update")
    assert isinstance(event, FulfillmentEvent)
    assert event.type == "fulfillment.updated"
    f = event.fulfillment
    assert (f.platform, f.shop_id) == ("tiktok", SHOP)
    assert (f.external_id, f.order_external_id) == ("1152921504606846976", ORDER)
    assert (f.status, f.platform_status) == ("in_transit", "IN_TRANSIT")
    assert (f.tracking_number, f.carrier, f.lines) == (None, None, ())
    assert f.source_updated_at == at("2022-02-09T15:21:40")
    assert event.entity_key == f"tiktok:{SHOP}:order:{ORDER}"


@pytest.mark.parametrize(
    ("package_status", "status"),
    [
        ("TO_FULFILL", "pending"),
        ("PROCESSING", "pending"),
        ("SHIPPED", "in_transit"),
        ("IN_TRANSIT", "in_transit"),
        ("DELIVERED", "delivered"),
        ("COMPLETED", "delivered"),
        ("CANCELLED", "cancelled"),
        ("FULFILLING", None),
        (None, None),
    ],
)
def test_package_statuses_map(package_status: str | None, status: str | None) -> None:
    event = only_event(body_with("package_update", data={"package_status": package_status}))
    assert event.fulfillment.status == status
    assert event.fulfillment.platform_status == package_status


def test_package_status_changes_the_event_id() -> None:
    first = only_event(fixture_bytes("package_update"))
    delivered = only_event(body_with("package_update", data={"package_status": "DELIVERED"}))
    assert first.event_id != delivered.event_id


def test_a_package_list_gives_one_event_per_package() -> None:
    payload = fixture("package_update")
    del payload["data"]["package_id"]
    payload["data"]["package_list"] = [{"package_id": "1152921504606846977"}, {"package_id": 78}]
    events = adapter.normalize(envelope(orjson.dumps(payload))).events
    assert [e.fulfillment.external_id for e in events] == ["1152921504606846977", "78"]
    assert {e.fulfillment.order_external_id for e in events} == {ORDER}
    assert len({e.event_id for e in events}) == 2


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"package_list": None}, r"data\.package_id is missing"),
        ({"package_list": "1152921504606846977"}, r"data\.package_list is not a list"),
        ({"package_list": [{"id": 1}]}, r"data\.package_list\[0\]\.package_id is missing"),
    ],
)
def test_a_package_update_without_a_package_is_invalid(changes: dict[str, Any], field: str) -> None:
    payload = fixture("package_update")
    del payload["data"]["package_id"]
    payload["data"].update(changes)
    with pytest.raises(InvalidPayload, match=field):
        adapter.normalize(envelope(orjson.dumps(payload)))


def test_a_package_update_without_an_order_is_invalid() -> None:
    with pytest.raises(InvalidPayload, match=r"data\.order_id"):
        adapter.normalize(envelope(without("package_update", "order_id")))


# -- normalize: stock status -----------------------------------------------------------------


def test_inventory_status_normalizes_to_exact_fields() -> None:
    event = only_event(fixture_bytes("inventory_status"), topic="inventory_status_change")
    assert isinstance(event, StockStatusEvent)
    assert event.type == "inventory.status_changed"
    s = event.stock
    assert (s.platform, s.shop_id, s.product_id) == ("tiktok", SHOP, "1729592969712207008")
    assert (s.sku_id, s.warehouse_id) == ("1729592969712272544", "7068517275539719942")
    assert (s.status, s.platform_status) == ("low_stock", "LOW_STOCK")
    assert s.source_updated_at == at("2022-02-09T18:10:00")
    assert event.entity_key == f"tiktok:{SHOP}:product:1729592969712207008"


@pytest.mark.parametrize(
    ("word", "status", "platform_status"),
    [
        ("LOW_STOCK", "low_stock", "LOW_STOCK"),
        ("low stock", "low_stock", "LOW_STOCK"),
        ("OUT_OF_STOCK", "out_of_stock", "OUT_OF_STOCK"),
        ("out-of-stock", "out_of_stock", "OUT_OF_STOCK"),
        ("SOLD_OUT", "out_of_stock", "SOLD_OUT"),
        ("IN_STOCK", "in_stock", "IN_STOCK"),
    ],
)
def test_stock_words_map(word: str, status: str, platform_status: str) -> None:
    event = only_event(body_with("inventory_status", data={"inventory_status": word}))
    assert (event.stock.status, event.stock.platform_status) == (status, platform_status)
    assert STOCK_STATUS_MAP[platform_status] == status


def test_stock_status_is_also_read_from_status() -> None:
    payload = fixture("inventory_status")
    payload["data"]["status"] = payload["data"].pop("inventory_status")
    assert only_event(orjson.dumps(payload)).stock.status == "low_stock"


def test_stock_status_without_a_sku_or_warehouse() -> None:
    payload = fixture("inventory_status")
    del payload["data"]["sku_id"], payload["data"]["warehouse_id"]
    event = only_event(orjson.dumps(payload))
    assert (event.stock.sku_id, event.stock.warehouse_id) == (None, None)


def test_stock_events_of_two_skus_differ() -> None:
    first = only_event(fixture_bytes("inventory_status"))
    other = only_event(body_with("inventory_status", data={"sku_id": "1729592969712272545"}))
    assert first.event_id != other.event_id
    again = only_event(fixture_bytes("inventory_status"), delivery_id="another")
    assert again.event_id == first.event_id


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"inventory_status": "PLENTY"}, r"data\.inventory_status 'PLENTY'"),
        ({"inventory_status": None}, r"data\.inventory_status is missing"),
        ({"product_id": None}, r"data\.product_id is missing"),
    ],
)
def test_stock_status_names_the_unusable_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidPayload, match=field):
        adapter.normalize(envelope(body_with("inventory_status", data=data)))


# -- normalize: ignored and refused ----------------------------------------------------------


def test_cancellation_status_is_recorded_not_mapped() -> None:
    body = orjson.dumps({"type": 11, "shop_id": SHOP, "data": {"order_id": ORDER}})
    result = adapter.normalize(envelope(body))
    assert result.events == ()
    assert result.ignored == "tiktok type 11 is recorded, not mapped yet"


@pytest.mark.parametrize("kind", [2, 5, 6, 12, 99])
def test_other_types_are_ignored(kind: int) -> None:
    body = orjson.dumps({"type": kind, "shop_id": SHOP, "data": "not read"})
    result = adapter.normalize(envelope(body))
    assert result.events == ()
    assert result.ignored == f"tiktok type {kind} is not handled yet"


@pytest.mark.parametrize("body", [b"nope", b"[]", b'{"shop_id": "1"}', b'{"type": "x"}'])
def test_normalize_refuses_what_is_not_a_notification(body: bytes) -> None:
    with pytest.raises(InvalidPayload):
        adapter.normalize(envelope(body))


def test_a_data_that_is_not_an_object_is_invalid() -> None:
    payload = fixture("order_status_awaiting_shipment")
    payload["data"] = [ORDER]
    with pytest.raises(InvalidPayload, match="data is not an object"):
        adapter.normalize(envelope(orjson.dumps(payload)))
