from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest

from pipeline.errors import InvalidPayload
from pipeline.platforms.shopify import ShopifyAdapter
from pipeline.platforms.shopify_resources import fulfillment_status
from schemas.fulfillments import FulfillmentEvent, FulfillmentLine, fulfillment_event_id
from schemas.inventory import InventoryLevelEvent, inventory_event_id
from schemas.products import ProductEvent, ProductVariant, product_event_id
from tests.unit.factories import RECEIVED_AT_MS, SHOP, envelope, fixture, shopify_headers

adapter = ShopifyAdapter()
RECEIVED_AT = datetime.fromtimestamp(RECEIVED_AT_MS / 1000, tz=UTC)
DELIVERY = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"


def body_of(name: str, *, drop: tuple[str, ...] = (), **changes: Any) -> bytes:
    data = {**fixture(name), **changes}
    for field in drop:
        del data[field]
    return orjson.dumps(data)


def product(body: bytes, topic: str = "products/create") -> ProductEvent:
    (event,) = adapter.normalize(envelope(body, topic=topic)).events
    assert isinstance(event, ProductEvent)
    return event


def level(body: bytes, topic: str = "inventory_levels/update", **kw: Any) -> InventoryLevelEvent:
    (event,) = adapter.normalize(envelope(body, topic=topic, **kw)).events
    assert isinstance(event, InventoryLevelEvent)
    return event


def fulfillment(body: bytes, topic: str = "fulfillments/create") -> FulfillmentEvent:
    (event,) = adapter.normalize(envelope(body, topic=topic)).events
    assert isinstance(event, FulfillmentEvent)
    return event


# -- describe: entity keys -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "topic", "entity_key"),
    [
        ("product_create", "products/create", "product:788032119674292922"),
        ("product_create", "products/update", "product:788032119674292922"),
        ("product_delete", "products/delete", "product:788032119674292922"),
        ("inventory_level_update", "inventory_levels/update", "inventory_item:49148385"),
        ("inventory_level_update", "inventory_levels/connect", "inventory_item:49148385"),
        ("inventory_level_disconnect", "inventory_levels/disconnect", "inventory_item:49148385"),
        ("fulfillment_create", "fulfillments/create", "order:450789469"),
        ("fulfillment_create", "fulfillments/update", "order:450789469"),
        ("order_paid", "orders/paid", "order:450789469"),
    ],
)
def test_describe_entity_key_per_topic(name: str, topic: str, entity_key: str) -> None:
    body = body_of(name)
    info = adapter.describe(SHOP, shopify_headers(body, topic=topic), body)
    assert info.entity_key == f"shopify:{SHOP}:{entity_key}"
    (event,) = adapter.normalize(envelope(body, topic=topic)).events
    assert event.entity_key == info.entity_key


def test_describe_keys_a_fulfillment_without_order_id_by_delivery() -> None:
    body = body_of("fulfillment_create", drop=("order_id",))
    info = adapter.describe(SHOP, shopify_headers(body, topic="fulfillments/create"), body)
    assert info.entity_key == f"shopify:{SHOP}:delivery:{DELIVERY}"


def test_describe_keys_a_level_by_item_not_by_a_stray_id() -> None:
    body = body_of("inventory_level_update", id=1)
    info = adapter.describe(SHOP, shopify_headers(body, topic="inventory_levels/update"), body)
    assert info.entity_key == f"shopify:{SHOP}:inventory_item:49148385"


# -- products --------------------------------------------------------------------------------


def test_product_create_normalizes_exactly() -> None:
    event = product(body_of("product_create"))
    p = event.product
    updated = datetime(2024, 3, 11, 15, 2, 45, tzinfo=UTC)
    assert event.type == "product.created"
    assert (p.platform, p.shop_id, p.external_id) == ("shopify", SHOP, "788032119674292922")
    assert (p.title, p.status, p.deleted, p.complete) == ("Example T-Shirt", "active", False, True)
    assert p.source_updated_at == updated
    assert p.variants == (
        ProductVariant(
            external_variant_id="642667041472713922",
            sku="TEE-S",
            title="Small",
            price=Decimal("19.99"),
            currency=None,
            inventory_item_id="49148385",
            source_updated_at=updated,
        ),
        ProductVariant(
            external_variant_id="757650484644203962",
            sku="TEE-M",
            title="Medium",
            price=Decimal("21.00"),
            currency=None,
            inventory_item_id="49148386",
            source_updated_at=datetime(2024, 3, 11, 15, 1, 30, tzinfo=UTC),
        ),
    )
    assert event.occurred_at == updated
    assert event.event_id == product_event_id(p, "product.created", updated.isoformat())
    assert (event.source.topic, event.source.delivery_id) == ("products/create", DELIVERY)


def test_product_update_has_its_own_type_and_id() -> None:
    created = product(body_of("product_create"))
    updated = product(body_of("product_create"), topic="products/update")
    assert updated.type == "product.updated"
    assert updated.event_id != created.event_id


def test_product_event_id_does_not_depend_on_the_delivery() -> None:
    body = body_of("product_create")
    one = adapter.normalize(envelope(body, topic="products/update", delivery_id="a")).events[0]
    two = adapter.normalize(envelope(body, topic="products/update", delivery_id="b")).events[0]
    assert one.event_id == two.event_id


def test_product_without_variants_has_none() -> None:
    assert product(body_of("product_create", drop=("variants",))).product.variants == ()


def test_product_delete_is_dated_by_receipt() -> None:
    event = product(body_of("product_delete"), topic="products/delete")
    p = event.product
    assert event.type == "product.deleted"
    assert (p.external_id, p.deleted, p.complete) == ("788032119674292922", True, False)
    assert (p.title, p.variants) == (None, ())
    assert p.source_updated_at == RECEIVED_AT
    assert event.occurred_at == RECEIVED_AT


def test_product_delete_event_id_is_the_same_whenever_it_arrives() -> None:
    body = body_of("product_delete")
    one = adapter.normalize(envelope(body, topic="products/delete", delivery_id="a")).events[0]
    two = adapter.normalize(
        envelope(body, topic="products/delete", delivery_id="b", received_at_ms=RECEIVED_AT_MS + 9)
    ).events[0]
    assert one.event_id == two.event_id


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id": None}, "id is missing"),
        ({"id": True}, "id is not an id"),
        ({"updated_at": "last week"}, "updated_at is not an ISO 8601"),
        ({"variants": {"id": 1}}, "variants is not a list"),
        ({"variants": [None]}, r"variants\[0\] is not an object"),
        ({"variants": [{"sku": "X"}]}, r"variants\[0\].id is missing"),
        ({"variants": [{"id": 1, "price": "free"}]}, r"variants\[0\].price is not an amount"),
        (
            {"variants": [{"id": 1}, {"id": 2, "inventory_item_id": 1.5}]},
            r"variants\[1\].inventory_item_id is not an id",
        ),
        ({"variants": [{"id": 1, "updated_at": 5}]}, r"variants\[0\].updated_at is not a"),
    ],
)
def test_unusable_product_raises_invalid_payload(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidPayload, match=message):
        product(body_of("product_create", **changes), topic="products/update")


def test_product_delete_without_id_is_invalid() -> None:
    with pytest.raises(InvalidPayload, match="id is missing"):
        product(b"{}", topic="products/delete")


# -- inventory levels ------------------------------------------------------------------------


def test_inventory_level_update_normalizes_exactly() -> None:
    event = level(body_of("inventory_level_update"))
    lv = event.level
    updated = datetime(2024, 3, 11, 15, 4, 8, tzinfo=UTC)
    assert event.type == "inventory.level_updated"
    assert (lv.platform, lv.shop_id) == ("shopify", SHOP)
    assert (lv.inventory_item_id, lv.location_id, lv.available) == ("49148385", "24826418", 12)
    assert (lv.variant_id, lv.sku) == (None, None)
    assert lv.source_updated_at == updated
    assert event.occurred_at == updated
    assert event.event_id == inventory_event_id(
        "shopify", SHOP, "49148385@24826418", "inventory.level_updated", updated.isoformat()
    )


def test_inventory_level_connect_has_its_own_type() -> None:
    event = level(body_of("inventory_level_update", available=0), "inventory_levels/connect")
    assert (event.type, event.level.available) == ("inventory.level_connected", 0)


def test_disconnect_has_no_quantity_and_is_versioned_by_delivery() -> None:
    event = level(body_of("inventory_level_disconnect"), "inventory_levels/disconnect")
    lv = event.level
    assert event.type == "inventory.level_disconnected"
    assert (lv.inventory_item_id, lv.location_id, lv.available) == ("49148385", "24826418", None)
    assert lv.source_updated_at is None
    assert event.occurred_at == RECEIVED_AT
    assert event.event_id == inventory_event_id(
        "shopify", SHOP, "49148385@24826418", "inventory.level_disconnected", f"delivery:{DELIVERY}"
    )


def test_disconnect_ignores_a_stray_available() -> None:
    event = level(body_of("inventory_level_update"), "inventory_levels/disconnect")
    assert event.level.available is None


def test_level_without_updated_at_is_tolerated_and_versioned_by_delivery() -> None:
    body = body_of("inventory_level_update", drop=("updated_at",))
    one = level(body, delivery_id="d-1")
    two = level(body, delivery_id="d-2")
    assert one.level.available == 12
    assert one.level.source_updated_at is None
    assert one.occurred_at == RECEIVED_AT
    assert one.event_id != two.event_id


def test_level_with_updated_at_has_one_event_id_across_deliveries() -> None:
    body = body_of("inventory_level_update")
    assert level(body, delivery_id="d-1").event_id == level(body, delivery_id="d-2").event_id


def test_another_location_is_another_event() -> None:
    one = level(body_of("inventory_level_update"))
    two = level(body_of("inventory_level_update", location_id=24826419))
    assert one.event_id != two.event_id


def test_negative_stock_is_kept() -> None:
    assert level(body_of("inventory_level_update", available=-3)).level.available == -3


def test_null_available_on_update_is_none() -> None:
    assert level(body_of("inventory_level_update", available=None)).level.available is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"inventory_item_id": None}, "inventory_item_id is missing"),
        ({"location_id": None}, "location_id is missing"),
        ({"location_id": {"id": 1}}, "location_id is not an id"),
        ({"available": "twelve"}, "available is not a whole number"),
        ({"available": 1.5}, "available is not a whole number"),
        ({"available": 2**31}, "available is out of range"),
        ({"updated_at": "noon"}, "updated_at is not an ISO 8601"),
    ],
)
def test_unusable_level_raises_invalid_payload(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidPayload, match=message):
        level(body_of("inventory_level_update", **changes))


# -- fulfilments -----------------------------------------------------------------------------


def test_fulfillment_create_normalizes_exactly() -> None:
    event = fulfillment(body_of("fulfillment_create"))
    f = event.fulfillment
    updated = datetime(2024, 3, 12, 13, 14, 28, tzinfo=UTC)
    assert event.type == "fulfillment.created"
    assert (f.platform, f.shop_id) == ("shopify", SHOP)
    assert (f.external_id, f.order_external_id) == ("4903127629859", "450789469")
    assert (f.status, f.platform_status, f.carrier) == ("in_transit", "success", "UPS")
    assert f.tracking_number == "1Z2345678901234567"
    assert f.tracking_url == (
        "https://www.ups.com/WebTracking?loc=en_US&requester=ST&trackNums=1Z2345678901234567"
    )
    assert f.lines == (FulfillmentLine("466157049", 1), FulfillmentLine("518995019", 2))
    assert f.source_updated_at == updated
    assert event.occurred_at == updated
    assert event.event_id == fulfillment_event_id(f, "fulfillment.created", updated.isoformat())
    assert event.entity_key == f"shopify:{SHOP}:order:450789469"


def test_single_tracking_fields_win_over_the_lists() -> None:
    body = body_of(
        "fulfillment_create", tracking_number="1ZSINGLE", tracking_url="https://t.example/1"
    )
    f = fulfillment(body, "fulfillments/update").fulfillment
    assert (f.tracking_number, f.tracking_url) == ("1ZSINGLE", "https://t.example/1")


def test_fulfillment_without_tracking_has_none() -> None:
    body = body_of(
        "fulfillment_create",
        tracking_company=None,
        tracking_numbers=[],
        drop=("tracking_urls", "tracking_number"),
    )
    f = fulfillment(body).fulfillment
    assert (f.carrier, f.tracking_number, f.tracking_url) == (None, None, None)


def test_fulfillment_update_has_its_own_type() -> None:
    event = fulfillment(
        body_of("fulfillment_create", shipment_status="delivered"), "fulfillments/update"
    )
    assert (event.type, event.fulfillment.status) == ("fulfillment.updated", "delivered")
    assert event.fulfillment.platform_status == "success"


@pytest.mark.parametrize(
    ("shipment_status", "status"),
    [
        ("label_printed", "pending"),
        ("label_purchased", "pending"),
        ("confirmed", "pending"),
        ("ready_for_pickup", "pending"),
        ("in_transit", "in_transit"),
        ("out_for_delivery", "in_transit"),
        ("attempted_delivery", "in_transit"),
        ("delivered", "delivered"),
        ("failure", "failed"),
    ],
)
def test_shipment_status_wins_when_set(shipment_status: str, status: str) -> None:
    assert fulfillment_status("success", shipment_status) == status
    body = body_of("fulfillment_create", shipment_status=shipment_status)
    assert fulfillment(body).fulfillment.status == status


@pytest.mark.parametrize(
    ("platform_status", "status"),
    [
        ("pending", "pending"),
        ("open", "pending"),
        ("success", "in_transit"),
        ("cancelled", "cancelled"),
        ("error", "failed"),
        ("failure", "failed"),
    ],
)
def test_status_maps_without_shipment_status(platform_status: str, status: str) -> None:
    assert fulfillment_status(platform_status, None) == status
    body = body_of("fulfillment_create", status=platform_status)
    assert fulfillment(body).fulfillment.status == status


def test_unknown_shipment_status_falls_back_to_status() -> None:
    assert fulfillment_status("cancelled", "teleported") == "cancelled"


def test_no_status_at_all_is_none() -> None:
    f = fulfillment(body_of("fulfillment_create", drop=("status", "shipment_status"))).fulfillment
    assert (f.status, f.platform_status) == (None, None)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"status": "misplaced"}, "'misplaced' is not a known fulfillment status"),
        ({"id": None}, "id is missing"),
        ({"order_id": None}, "order_id is missing"),
        ({"order_id": False}, "order_id is not an id"),
        ({"line_items": "all"}, "line_items is not a list"),
        ({"line_items": [7]}, r"line_items\[0\] is not an object"),
        ({"line_items": [{"id": 1}]}, r"line_items\[0\].quantity is missing"),
        ({"line_items": [{"id": 1, "quantity": -1}]}, r"line_items\[0\].quantity is out of range"),
        ({"line_items": [{"quantity": 1}]}, r"line_items\[0\].id is missing"),
        ({"tracking_numbers": "1Z"}, "tracking_numbers is not a list"),
        ({"updated_at": 1710172000}, "updated_at is not a timestamp"),
    ],
)
def test_unusable_fulfillment_raises_invalid_payload(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidPayload, match=message):
        fulfillment(body_of("fulfillment_create", **changes))


# -- dispatch --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "topic",
    [
        "refunds/create",
        "orders/edited",
        "orders/delete",
        "inventory_items/update",
        "locations/create",
        "customers/redact",
        "shop/redact",
        "app/uninstalled",
    ],
)
def test_topics_not_handled_stay_ignored(topic: str) -> None:
    result = adapter.normalize(envelope(b"{}", topic=topic))
    assert result.events == ()
    assert result.ignored == f"topic {topic} is not handled yet"


@pytest.mark.parametrize(
    "topic", ["products/update", "inventory_levels/update", "fulfillments/create"]
)
def test_resource_body_must_be_a_json_object(topic: str) -> None:
    with pytest.raises(InvalidPayload, match="not a JSON object"):
        adapter.normalize(envelope(b"[1]", topic=topic))
    with pytest.raises(InvalidPayload, match="not JSON"):
        adapter.normalize(envelope(b"{", topic=topic))
