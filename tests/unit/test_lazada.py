from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from pipeline.envelope import Envelope
from pipeline.errors import InvalidPayload
from pipeline.platforms.base import Rejection
from pipeline.platforms.lazada import STATUS_MAP, LazadaAdapter
from schemas.orders import OrderStatusEvent, status_event_id
from schemas.products import ProductEvent
from tests.unit.platform_cases import Fixtures

fixture_bytes = Fixtures("lazada").bytes

SELLER = "1234567"
RECEIVED_AT_MS = 1_603_766_860_000
RECEIVED_AT = datetime.fromtimestamp(RECEIVED_AT_MS / 1000, tz=UTC)

adapter = LazadaAdapter()


def body_with(name: str, **data_changes: Any) -> bytes:
    """A fixture with fields of `data` replaced; a value of None removes the field."""
    payload = orjson.loads(fixture_bytes(name))
    payload["data"].update(data_changes)
    payload["data"] = {k: v for k, v in payload["data"].items() if v is not None}
    return orjson.dumps(payload)


def envelope_for(body: bytes) -> Envelope:
    """What the ingress would produce for a verified `body`."""
    info = adapter.describe(adapter.shop_of({}, body), {}, body)
    return Envelope(
        platform="lazada",
        shop_id=SELLER,
        topic=info.topic,
        delivery_id=info.delivery_id,
        received_at_ms=RECEIVED_AT_MS,
        entity_key=info.entity_key,
        body=body,
    )


def status_event(body: bytes) -> OrderStatusEvent:
    (event,) = adapter.normalize(envelope_for(body)).events
    assert isinstance(event, OrderStatusEvent)
    return event


def product_event(body: bytes) -> ProductEvent:
    (event,) = adapter.normalize(envelope_for(body)).events
    assert isinstance(event, ProductEvent)
    return event


def test_adapter_shape() -> None:
    assert (adapter.name, adapter.credential_scope, adapter.empty_ack) == ("lazada", "app", False)
    assert adapter.handshake({}, fixture_bytes("trade_order_unpaid")) is False


# -- shop_of ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seller", ["1234567", 1234567])
def test_shop_of_reads_seller_id(seller: object) -> None:
    assert adapter.shop_of({}, orjson.dumps({"seller_id": seller, "message_type": 0})) == SELLER


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"message_type": 0}', "seller_id"),
        (b'{"seller_id": null}', "seller_id"),
        (b'{"seller_id": ""}', "seller_id"),
        (b'{"seller_id": true}', "seller_id"),
        (b'{"seller_id": {"id": 1}}', "seller_id"),
    ],
)
def test_shop_of_rejects_with_400(body: bytes, reason: str) -> None:
    with pytest.raises(Rejection) as info:
        adapter.shop_of({}, body)
    assert info.value.status == 400
    assert reason in info.value.reason


# -- describe --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "topic", "entity_key"),
    [
        ("trade_order_unpaid", "trade_order", "lazada:1234567:order:260422900198363"),
        ("trade_order_shipped", "trade_order", "lazada:1234567:order:260422900198363"),
        ("product_updated", "product_updated", "lazada:1234567:product:2281163757"),
        ("product_deleted", "product_deleted", "lazada:1234567:product:2281163757"),
    ],
)
def test_describe_topic_and_entity_key(name: str, topic: str, entity_key: str) -> None:
    body = fixture_bytes(name)
    info = adapter.describe(SELLER, {}, body)
    assert (info.topic, info.entity_key) == (topic, entity_key)
    assert info.delivery_id.startswith("c-")
    assert info.malformed is False


@pytest.mark.parametrize(
    ("message_type", "topic"),
    [(0, "trade_order"), (3, "product_created"), (4, "product_updated"), (5, "product_deleted")],
)
def test_describe_maps_each_message_type(message_type: int, topic: str) -> None:
    body = orjson.dumps({"seller_id": SELLER, "message_type": message_type, "data": {}})
    assert adapter.describe(SELLER, {}, body).topic == topic


def test_describe_names_an_unknown_message_type_and_keys_by_delivery() -> None:
    body = orjson.dumps({"seller_id": SELLER, "message_type": 10, "data": {"x": 1}})
    info = adapter.describe(SELLER, {}, body)
    assert info.topic == "message_type_10"
    assert info.entity_key == f"lazada:1234567:delivery:{info.delivery_id}"


def test_describe_keys_by_delivery_when_the_order_id_is_unusable() -> None:
    body = body_with("trade_order_unpaid", trade_order_id=True)
    info = adapter.describe(SELLER, {}, body)
    assert info.entity_key == f"lazada:1234567:delivery:{info.delivery_id}"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"seller_id": "1"}', "message_type"),
        (b'{"seller_id": "1", "message_type": null}', "message_type"),
        (b'{"seller_id": "1", "message_type": "0"}', "message_type"),
        (b'{"seller_id": "1", "message_type": 0.0}', "message_type"),
        (b'{"seller_id": "1", "message_type": true}', "message_type"),
        (b"not json", "not JSON"),
        (b'"text"', "not a JSON object"),
    ],
)
def test_describe_rejects_with_400(body: bytes, reason: str) -> None:
    with pytest.raises(Rejection) as info:
        adapter.describe(SELLER, {}, body)
    assert info.value.status == 400
    assert reason in info.value.reason


def test_content_id_is_stable_on_an_identical_resend() -> None:
    one = adapter.describe(SELLER, {}, fixture_bytes("trade_order_unpaid"))
    two = adapter.describe(SELLER, {}, fixture_bytes("trade_order_unpaid"))
    assert one.delivery_id == two.delivery_id


def test_content_id_ignores_the_envelope_timestamp_and_key_order() -> None:
    payload = orjson.loads(fixture_bytes("trade_order_unpaid"))
    resent = {
        **payload,
        "timestamp": payload["timestamp"] + 1_800_000,  # a retry 30 minutes later
        "data": dict(reversed(payload["data"].items())),
    }
    one = adapter.describe(SELLER, {}, fixture_bytes("trade_order_unpaid"))
    two = adapter.describe(SELLER, {}, orjson.dumps(resent))
    assert one.delivery_id == two.delivery_id


@pytest.mark.parametrize(
    "change",
    [
        {"trade_order_line_id": "260422900298364"},
        {"order_status": "pending"},
        {"status_update_time": 1603698639},
    ],
)
def test_content_id_differs_for_another_line_status_or_time(change: dict[str, object]) -> None:
    one = adapter.describe(SELLER, {}, fixture_bytes("trade_order_unpaid"))
    two = adapter.describe(SELLER, {}, body_with("trade_order_unpaid", **change))
    assert one.delivery_id != two.delivery_id
    assert one.entity_key == two.entity_key


def test_content_id_differs_per_seller() -> None:
    body = fixture_bytes("trade_order_unpaid")
    assert (
        adapter.describe(SELLER, {}, body).delivery_id
        != adapter.describe("7654321", {}, body).delivery_id
    )


def test_product_content_id_uses_the_envelope_time_when_data_has_none() -> None:
    payload = orjson.loads(fixture_bytes("product_deleted"))
    later = {**payload, "timestamp": payload["timestamp"] + 60}
    one = adapter.describe(SELLER, {}, fixture_bytes("product_deleted"))
    two = adapter.describe(SELLER, {}, orjson.dumps(later))
    assert one.delivery_id != two.delivery_id


def test_describe_entity_key_matches_the_event_entity_key() -> None:
    for name in ("trade_order_unpaid", "product_updated"):
        body = fixture_bytes(name)
        (event,) = adapter.normalize(envelope_for(body)).events
        assert adapter.describe(SELLER, {}, body).entity_key == event.entity_key


# -- normalize: orders -----------------------------------------------------------------------


def test_unpaid_trade_order_normalizes_exactly() -> None:
    body = fixture_bytes("trade_order_unpaid")
    event = status_event(body)
    change = event.order
    assert event.type == "order.status_changed"
    assert (change.platform, change.shop_id) == ("lazada", SELLER)
    assert (change.external_id, change.line_id) == ("260422900198363", "260422900298363")
    assert (change.platform_status, change.status) == ("unpaid", "pending")
    assert change.source_updated_at == datetime(2020, 10, 26, 7, 50, 38, tzinfo=UTC)
    assert event.occurred_at == change.source_updated_at
    assert event.entity_key == "lazada:1234567:order:260422900198363"
    assert event.source.topic == "trade_order"
    assert event.source.delivery_id == adapter.describe(SELLER, {}, body).delivery_id
    assert event.source.received_at == RECEIVED_AT
    assert event.event_id == status_event_id(change, "2020-10-26T07:50:38+00:00")


def test_shipped_trade_order_normalizes_exactly() -> None:
    change = status_event(fixture_bytes("trade_order_shipped")).order
    assert (change.platform_status, change.status) == ("shipped", "fulfilled")
    assert change.source_updated_at == datetime(2020, 10, 27, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("platform_status", "status"),
    [
        ("unpaid", "pending"),
        ("pending", "paid"),
        ("packed", "paid"),
        ("repacked", "paid"),
        ("ready_to_ship", "paid"),
        ("ready_to_ship_pending", "paid"),
        ("shipped", "fulfilled"),
        ("failed_delivery", "fulfilled"),
        ("delivered", "completed"),
        ("confirmed", "completed"),
        ("failed", "cancelled"),
        ("canceled", "cancelled"),
        ("cancelled", "cancelled"),
        ("returned", "returned"),
        ("shipped_back", "returned"),
        ("lost_by_3pl", "cancelled"),
        ("damaged_by_3pl", "cancelled"),
    ],
)
def test_every_status_maps(platform_status: str, status: str) -> None:
    change = status_event(body_with("trade_order_unpaid", order_status=platform_status)).order
    assert (change.status, change.platform_status) == (status, platform_status)


def test_the_status_table_is_exactly_the_tested_one() -> None:
    assert len(STATUS_MAP) == 17


def test_status_is_read_case_insensitively_and_kept_as_sent() -> None:
    change = status_event(body_with("trade_order_unpaid", order_status="Ready_To_Ship")).order
    assert (change.status, change.platform_status) == ("paid", "Ready_To_Ship")


def test_same_push_same_event_id_and_another_status_another() -> None:
    one = status_event(fixture_bytes("trade_order_unpaid"))
    again = status_event(fixture_bytes("trade_order_unpaid"))
    shipped = status_event(fixture_bytes("trade_order_shipped"))
    assert one.event_id == again.event_id
    assert one.event_id != shipped.event_id


def test_another_line_of_the_same_order_gets_another_event_id() -> None:
    one = status_event(fixture_bytes("trade_order_unpaid"))
    other = status_event(body_with("trade_order_unpaid", trade_order_line_id="260422900298364"))
    assert other.order.external_id == one.order.external_id
    assert other.event_id != one.event_id


def test_status_time_in_milliseconds_is_read() -> None:
    change = status_event(body_with("trade_order_unpaid", status_update_time=1603698638000)).order
    assert change.source_updated_at == datetime(2020, 10, 26, 7, 50, 38, tzinfo=UTC)


def test_without_status_time_the_delivery_versions_and_receipt_dates_the_event() -> None:
    event = status_event(body_with("trade_order_unpaid", status_update_time=None))
    assert event.order.source_updated_at is None
    assert event.occurred_at == RECEIVED_AT
    assert event.event_id == status_event_id(event.order, f"delivery:{event.source.delivery_id}")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"order_status": None}, "data.order_status is missing"),
        ({"order_status": "teleported"}, "'teleported' is not a known status"),
        ({"trade_order_id": None}, "data.trade_order_id is missing"),
        ({"trade_order_id": True}, "data.trade_order_id is not an id"),
        ({"trade_order_line_id": 1.5}, "data.trade_order_line_id is not an id"),
        ({"status_update_time": "yesterday"}, "data.status_update_time is not a time"),
        ({"status_update_time": -5}, "data.status_update_time is out of range"),
    ],
)
def test_unusable_trade_order_raises_invalid_payload(
    change: dict[str, object], message: str
) -> None:
    body = body_with("trade_order_unpaid", **change)
    with pytest.raises(InvalidPayload, match=message):
        adapter.normalize(envelope_for(body))


def test_data_that_is_not_an_object_is_invalid() -> None:
    body = orjson.dumps({"seller_id": SELLER, "message_type": 0, "data": [1]})
    with pytest.raises(InvalidPayload, match="data is not an object"):
        adapter.normalize(envelope_for(body))


# -- normalize: products ---------------------------------------------------------------------


def test_product_updated_is_a_thin_product() -> None:
    event = product_event(fixture_bytes("product_updated"))
    product = event.product
    assert event.type == "product.updated"
    assert (product.platform, product.shop_id, product.external_id) == (
        "lazada",
        SELLER,
        "2281163757",
    )
    assert (product.title, product.variants, product.complete, product.deleted) == (
        None,
        (),
        False,
        False,
    )
    assert product.source_updated_at == datetime(2020, 10, 27, 9, 13, 20, tzinfo=UTC)
    assert event.occurred_at == product.source_updated_at
    assert event.entity_key == "lazada:1234567:product:2281163757"


def test_product_created_has_its_own_type() -> None:
    payload = orjson.loads(fixture_bytes("product_updated"))
    event = product_event(orjson.dumps({**payload, "message_type": 3}))
    assert event.type == "product.created"
    assert event.product.deleted is False


def test_product_deleted_uses_the_envelope_timestamp_in_seconds() -> None:
    event = product_event(fixture_bytes("product_deleted"))
    assert event.type == "product.deleted"
    assert (event.product.external_id, event.product.deleted) == ("2281163757", True)
    assert event.product.complete is False
    assert event.product.source_updated_at == datetime(2020, 10, 27, 12, 0, tzinfo=UTC)


def test_product_without_data_time_falls_back_to_millisecond_timestamp() -> None:
    event = product_event(body_with("product_updated", update_time=None))
    assert event.product.source_updated_at == datetime(2020, 10, 27, 9, 13, 21, 287000, tzinfo=UTC)


def test_product_event_id_is_stable_and_versioned_by_time() -> None:
    one = product_event(fixture_bytes("product_updated"))
    assert one.event_id == product_event(fixture_bytes("product_updated")).event_id
    later = product_event(body_with("product_updated", update_time=1603790001))
    assert later.event_id != one.event_id


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"item_id": None}, "data.item_id is missing"),
        ({"item_id": [1]}, "data.item_id is not an id"),
        ({"update_time": "soon"}, "data.update_time is not a time"),
    ],
)
def test_unusable_product_push_raises_invalid_payload(
    change: dict[str, object], message: str
) -> None:
    body = body_with("product_updated", **change)
    with pytest.raises(InvalidPayload, match=message):
        adapter.normalize(envelope_for(body))


# -- normalize: ignored ----------------------------------------------------------------------


def test_other_message_types_are_ignored() -> None:
    body = orjson.dumps({"seller_id": SELLER, "message_type": 10, "data": {"x": 1}})
    result = adapter.normalize(envelope_for(body))
    assert result.events == ()
    assert result.ignored == "topic message_type_10 is not handled yet"
