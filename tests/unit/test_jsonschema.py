from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator, ValidationError

from schemas.catalogue import EVENT_RECORDS, AnyEvent
from schemas.events import Source, to_json
from schemas.fulfillments import Fulfillment, FulfillmentEvent, FulfillmentLine
from schemas.inventory import (
    InventoryLevelEvent,
    ReservedStockChange,
    ReservedStockEvent,
    StockLevel,
    StockStatusChange,
    StockStatusEvent,
    ValueChange,
)
from schemas.jsonschema import DECIMAL_PATTERN, event_schemas, record_schema, schema_name
from schemas.orders import Order, OrderEvent, OrderLine, OrderStatusChange, OrderStatusEvent
from schemas.products import PriceChange, PriceEvent, Product, ProductEvent, ProductVariant

AT = datetime(2026, 11, 20, 15, 0, 0, tzinfo=UTC)
UPDATED = datetime(2026, 11, 20, 14, 59, 58, 250000, tzinfo=UTC)


def source(platform: str, shop: str, topic: str) -> Source:
    return Source(platform, shop, topic, "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", AT)


SHOP = "demo.myshopify.com"
EXAMPLES: dict[type[Any], AnyEvent] = {
    OrderEvent: OrderEvent(
        event_id=uuid.UUID("0b1f4c1e-8f0a-5d61-9f0e-1d2c3b4a5968"),
        type="order.paid",
        occurred_at=UPDATED,
        order=Order(
            platform="shopify",
            shop_id=SHOP,
            external_id="820982911946154508",
            status="paid",
            order_number="1001",
            financial_status="paid",
            fulfillment_status=None,
            currency="USD",
            total_amount=Decimal("25.50"),
            subtotal_amount=Decimal("23.00"),
            total_tax=Decimal("2.50"),
            customer_email="buyer@example.com",
            placed_at=AT,
            source_updated_at=UPDATED,
            lines=(
                OrderLine("466157049", 2, "39072856", "632910392", "SKU-1", "Mug", Decimal("10")),
                OrderLine("518995019", 1, unit_price=Decimal("3.00")),
            ),
        ),
        source=source("shopify", SHOP, "orders/paid"),
    ),
    OrderStatusEvent: OrderStatusEvent(
        event_id=uuid.UUID("6c1a2b3d-4e5f-5a6b-8c7d-9e0f1a2b3c4d"),
        type="order.status_changed",
        occurred_at=AT,
        order=OrderStatusChange(
            platform="lazada",
            shop_id="1234567",
            external_id="260422900198363",
            status="pending",
            platform_status="unpaid",
            source_updated_at=UPDATED,
            line_id="260422900298363",
        ),
        source=source("lazada", "1234567", "0"),
    ),
    ProductEvent: ProductEvent(
        event_id=uuid.UUID("1a2b3c4d-5e6f-5a7b-8c9d-0e1f2a3b4c5d"),
        type="product.updated",
        occurred_at=UPDATED,
        product=Product(
            platform="woocommerce",
            shop_id="shop.example.com",
            external_id="799",
            title="Ship Your Idea",
            status="publish",
            source_updated_at=UPDATED,
            variants=(
                ProductVariant("800", "SYI-BLK", "Black", Decimal("1E+1"), "USD", "800", UPDATED),
            ),
        ),
        source=source("woocommerce", "shop.example.com", "product.updated"),
    ),
    PriceEvent: PriceEvent(
        event_id=uuid.UUID("2b3c4d5e-6f7a-5b8c-9d0e-1f2a3b4c5d6e"),
        type="price.updated",
        occurred_at=AT,
        price=PriceChange(
            "shopee", "220000001", "3000142341", "4000012", Decimal("199.90"), "SGD", Decimal("249")
        ),
        source=source("shopee", "220000001", "22"),
    ),
    InventoryLevelEvent: InventoryLevelEvent(
        event_id=uuid.UUID("3c4d5e6f-7a8b-5c9d-8e1f-2a3b4c5d6e7f"),
        type="inventory.level_updated",
        occurred_at=UPDATED,
        level=StockLevel("shopify", SHOP, "808950810", "655441491", -3, None, None, AT),
        source=source("shopify", SHOP, "inventory_levels/update"),
    ),
    ReservedStockEvent: ReservedStockEvent(
        event_id=uuid.UUID("4d5e6f7a-8b9c-5d0e-9f2a-3b4c5d6e7f8a"),
        type="inventory.reserved_changed",
        occurred_at=AT,
        reservation=ReservedStockChange(
            platform="shopee",
            shop_id="220000001",
            item_id="3000142341",
            variant_id="4000012",
            order_id="220615ABCDEF12",
            action="reserved",
            changes=(ValueChange("reserved_stock", "2", "3"), ValueChange("note")),
            source_updated_at=UPDATED,
        ),
        source=source("shopee", "220000001", "8"),
    ),
    StockStatusEvent: StockStatusEvent(
        event_id=uuid.UUID("5e6f7a8b-9c0d-5e1f-8a3b-4c5d6e7f8a9b"),
        type="inventory.status_changed",
        occurred_at=AT,
        stock=StockStatusChange(
            "tiktok", "7494049642642441621", "1729382256910", "low_stock", "LOW_STOCK"
        ),
        source=source("tiktok", "7494049642642441621", "27"),
    ),
    FulfillmentEvent: FulfillmentEvent(
        event_id=uuid.UUID("6f7a8b9c-0d1e-5f2a-9b4c-5d6e7f8a9b0c"),
        type="fulfillment.created",
        occurred_at=UPDATED,
        fulfillment=Fulfillment(
            platform="shopify",
            shop_id=SHOP,
            external_id="255858046",
            order_external_id="820982911946154508",
            status="in_transit",
            platform_status="success",
            carrier="UPS",
            tracking_number="1Z2345",
            tracking_url="https://www.ups.com/track?tracknum=1Z2345",
            lines=(FulfillmentLine("466157049", 2),),
            source_updated_at=UPDATED,
        ),
        source=source("shopify", SHOP, "fulfillments/create"),
    ),
}


def validator(record: type[Any]) -> Draft202012Validator:
    return Draft202012Validator(
        record_schema(record), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def as_json(event: AnyEvent) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(to_json(event))
    return data


def test_every_record_has_an_example() -> None:
    assert set(EXAMPLES) == set(EVENT_RECORDS)


def test_schemas_are_keyed_by_schema_name_with_urn_ids() -> None:
    schemas = event_schemas()
    assert list(schemas) == [
        "commerce.order/v1",
        "commerce.order_status/v1",
        "commerce.product/v1",
        "commerce.price/v1",
        "commerce.inventory_level/v1",
        "commerce.inventory_reserved/v1",
        "commerce.inventory_status/v1",
        "commerce.fulfillment/v1",
    ]
    order = schemas["commerce.order/v1"]
    assert order["$id"] == "urn:commerce-pipeline:commerce.order/v1"
    assert order["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert order["title"] == "OrderEvent"
    assert order["description"] == (
        "Something happened to an order; `order` is its full state right after."
    )
    assert order["properties"]["schema"] == {"type": "string", "const": "commerce.order/v1"}
    assert order["properties"]["type"]["enum"][:2] == ["order.created", "order.updated"]
    assert order["required"] == ["event_id", "type", "occurred_at", "order", "source", "schema"]
    assert order["$defs"]["Order"]["required"] == ["platform", "shop_id", "external_id", "status"]
    assert order["$defs"]["Order"]["properties"]["total_amount"] == {
        "type": ["string", "null"],
        "pattern": DECIMAL_PATTERN,
    }
    assert order["$defs"]["Order"]["properties"]["lines"] == {
        "type": "array",
        "items": {"$ref": "#/$defs/OrderLine"},
    }


def test_a_nullable_enum_uses_any_of() -> None:
    fulfillment = event_schemas()["commerce.fulfillment/v1"]["$defs"]["Fulfillment"]
    status = fulfillment["properties"]["status"]
    assert status["anyOf"][1] == {"type": "null"}
    assert status["anyOf"][0]["enum"] == [
        "pending",
        "in_transit",
        "delivered",
        "cancelled",
        "failed",
    ]


@pytest.mark.parametrize("record", EVENT_RECORDS, ids=lambda r: r.__name__)
def test_schema_is_valid_draft_2020_12(record: type[Any]) -> None:
    Draft202012Validator.check_schema(record_schema(record))


@pytest.mark.parametrize("record", EVENT_RECORDS, ids=lambda r: r.__name__)
def test_a_realistic_event_as_serialised_validates(record: type[Any]) -> None:
    event = EXAMPLES[record]
    payload = as_json(event)
    assert payload["schema"] == schema_name(record)
    validator(record).validate(payload)


def _break(payload: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    target = payload
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return payload


@pytest.mark.parametrize(
    ("path", "value", "complaint"),
    [
        (("type",), "order.shipped", "is not one of"),
        (("order", "status"), "lost", "is not one of"),
        (("schema",), "commerce.order/v2", "was expected"),
        (("order", "external_id"), KeyError, "'external_id' is a required property"),
        (("source",), KeyError, "'source' is a required property"),
        (("order", "coupon"), "FREE", "Additional properties are not allowed ('coupon'"),
        (("loyalty",), 3, "Additional properties are not allowed ('loyalty'"),
        (("order", "total_amount"), 25.5, "is not of type 'string', 'null'"),
        (("order", "total_amount"), "25,50", "does not match"),
        (("event_id",), "not-a-uuid", "is not a 'uuid'"),
        (("occurred_at",), "2026-11-20 15:00", "is not a 'date-time'"),
        (("order", "lines"), [{"external_line_id": "1"}], "'quantity' is a required property"),
        (("order", "lines"), [{"external_line_id": "1", "quantity": "2"}], "is not of type"),
    ],
)
def test_a_wrong_payload_is_rejected(path: tuple[str, ...], value: Any, complaint: str) -> None:
    payload = _break(as_json(EXAMPLES[OrderEvent]), path, value)
    with pytest.raises(ValidationError) as info:
        validator(OrderEvent).validate(payload)
    assert complaint in info.value.message


def test_another_records_payload_is_rejected() -> None:
    with pytest.raises(ValidationError):
        validator(OrderEvent).validate(as_json(EXAMPLES[FulfillmentEvent]))


def test_a_naive_datetime_breaks_the_contract() -> None:
    """to_json writes a naive datetime without an offset: not RFC 3339, so it must be caught."""
    naive = OrderStatusEvent(
        event_id=uuid.UUID("6c1a2b3d-4e5f-5a6b-8c7d-9e0f1a2b3c4d"),
        type="order.status_changed",
        occurred_at=datetime(2026, 11, 20, 15, 0),  # noqa: DTZ001 - the mistake under test
        order=OrderStatusChange("tiktok", "749404", "5764863", "paid", "AWAITING_SHIPMENT"),
        source=source("tiktok", "749404", "1"),
    )
    with pytest.raises(ValidationError, match="is not a 'date-time'"):
        validator(OrderStatusEvent).validate(as_json(naive))


@pytest.mark.parametrize("amount", ["0.1", "-3", "1E+2", "1E-7", "0E-8", "123456789.000001"])
def test_decimal_pattern_accepts_what_str_decimal_writes(amount: str) -> None:
    assert str(Decimal(amount)) == amount
    price = as_json(EXAMPLES[PriceEvent])
    price["price"]["price"] = amount
    validator(PriceEvent).validate(price)
