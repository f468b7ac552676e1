from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest

from pipeline.envelope import Envelope
from pipeline.errors import InvalidPayload
from pipeline.platforms.base import Credentials, Rejection
from pipeline.platforms.fields import content_id
from pipeline.platforms.woocommerce import (
    DELIVERY_ID_HEADER,
    SIGNATURE_HEADER,
    SOURCE_HEADER,
    STATUS_MAP,
    TOPIC_HEADER,
    WooCommerceAdapter,
    canonical_status,
    delivery_headers,
    sign,
)
from schemas.inventory import InventoryLevelEvent
from schemas.orders import ORDER_STATUSES, OrderEvent, OrderStatusEvent
from schemas.products import ProductEvent
from tests.unit.platform_cases import Fixtures

FIXTURES = Fixtures("woocommerce")
body_of = FIXTURES.bytes
data_of = FIXTURES.json
SHOP = "shop.example.com"
SOURCE = "https://shop.example.com/"
SECRET = "wc_webhook_secret_7f3a9c"
RECEIVED_AT_MS = 1_795_000_000_000  # 2026-11-19T09:46:40Z
RECEIVED_AT = datetime.fromtimestamp(RECEIVED_AT_MS / 1000, tz=UTC)
DELIVERY = "c-delivery"

KAV_SECRET = "test_secret_key"
KAV_BODY = b'{"foo": "bar"}'
KAV_DIGEST = "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g="

adapter = WooCommerceAdapter()


def changed(name: str, **changes: Any) -> bytes:
    return orjson.dumps({**data_of(name), **changes})


def line_changed(index: int, **changes: Any) -> bytes:
    data = data_of("order_created")
    data["line_items"][index] = {**data["line_items"][index], **changes}
    return orjson.dumps(data)


def wc_envelope(body: bytes, topic: str, *, delivery_id: str = DELIVERY) -> Envelope:
    return Envelope(
        platform="woocommerce",
        shop_id=SHOP,
        topic=topic,
        delivery_id=delivery_id,
        received_at_ms=RECEIVED_AT_MS,
        entity_key=f"woocommerce:{SHOP}:delivery:{delivery_id}",
        body=body,
    )


def headers_for(body: bytes, topic: str = "order.updated", **kw: Any) -> dict[str, str]:
    return delivery_headers(SECRET, body, source=SOURCE, topic=topic, **kw)


def creds(*secrets: str) -> Credentials:
    return Credentials(secrets=secrets)


def order_event(name: str = "order_created", topic: str = "order.created") -> OrderEvent:
    (event,) = adapter.normalize(wc_envelope(body_of(name), topic)).events
    assert isinstance(event, OrderEvent)
    return event


# -- adapter shape ---------------------------------------------------------------------------


def test_adapter_identity() -> None:
    assert (adapter.name, adapter.credential_scope, adapter.empty_ack) == (
        "woocommerce",
        "shop",
        False,
    )


# -- signature -------------------------------------------------------------------------------


def test_sign_matches_the_known_answer_vector() -> None:
    assert sign(KAV_SECRET, KAV_BODY) == KAV_DIGEST


def test_verify_accepts_the_known_answer_vector() -> None:
    assert adapter.verify(creds(KAV_SECRET), {SIGNATURE_HEADER: KAV_DIGEST}, KAV_BODY)


def test_verify_accepts_either_secret_of_a_rotation() -> None:
    body = body_of("product_updated")
    headers = headers_for(body, "product.updated")
    assert adapter.verify(creds(SECRET, "the-new-secret"), headers, body)
    assert adapter.verify(creds("the-old-secret", SECRET), headers, body)


def test_verify_rejects_a_wrong_secret() -> None:
    body = body_of("product_updated")
    assert not adapter.verify(creds("not-the-secret"), headers_for(body), body)
    assert not adapter.verify(creds("a", "b"), headers_for(body), body)


def test_verify_is_on_the_raw_bytes() -> None:
    # WooCommerce escapes slashes (wp_json_encode); re-serialising changes the bytes.
    body = body_of("product_updated")
    assert b"https:\\/\\/shop.example.com" in body
    reserialized = orjson.dumps(orjson.loads(body))
    assert not adapter.verify(creds(SECRET), headers_for(body), reserialized)


def test_verify_rejects_a_missing_signature() -> None:
    headers = headers_for(KAV_BODY)
    del headers[SIGNATURE_HEADER]
    assert not adapter.verify(creds(SECRET), headers, KAV_BODY)


def test_delivery_headers_are_what_woocommerce_sends() -> None:
    headers = headers_for(KAV_BODY, "order.created", delivery_id="d1", webhook_id="12")
    assert headers == {
        "X-WC-Webhook-Source": SOURCE,
        "X-WC-Webhook-Topic": "order.created",
        "X-WC-Webhook-Resource": "order",
        "X-WC-Webhook-Event": "created",
        "X-WC-Webhook-Signature": sign(SECRET, KAV_BODY),
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": "d1",
    }


# -- handshake -------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"webhook_id=12", b"webhook_id=12\n", b"webhook_id=0"])
def test_the_ping_is_a_handshake(body: bytes) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "WooCommerce"}
    assert adapter.handshake(headers, body) is True


def test_a_signed_delivery_is_not_a_handshake() -> None:
    body = body_of("order_created")
    assert adapter.handshake(headers_for(body), body) is False
    # Even a ping-shaped body is not a ping once it is signed or has a topic.
    assert adapter.handshake(headers_for(b"webhook_id=12"), b"webhook_id=12") is False
    assert adapter.handshake({TOPIC_HEADER: "order.created"}, b"webhook_id=12") is False


@pytest.mark.parametrize(
    "body",
    [
        b"webhook_id=1&x=2",
        b"webhook_id=",
        b"webhook_id=abc",
        b"webhook_id=12\n\n",
        b" webhook_id=12",
        b'{"webhook_id": 12}',
        b"",
        b"webhook_id=" + b"1" * 21,
    ],
)
def test_anything_else_is_not_a_handshake(body: bytes) -> None:
    assert adapter.handshake({}, body) is False


# -- shop_of ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "shop"),
    [
        ("https://shop.example.com/", "shop.example.com"),
        ("https://Shop.Example.COM", "shop.example.com"),
        ("http://www.example.com/", "www.example.com"),
        ("https://example.com/store/", "example.com/store"),
        ("https://example.com/Store//", "example.com/store"),
        ("http://localhost:8080/", "localhost:8080"),
        ("  https://shop.example.com/  ", "shop.example.com"),
        ("https://example.com/?lang=en", "example.com"),
    ],
)
def test_shop_of_reads_the_store_url(source: str, shop: str) -> None:
    assert adapter.shop_of({SOURCE_HEADER: source}, b"") == shop


@pytest.mark.parametrize("source", ["", "   "])
def test_shop_of_rejects_a_missing_source(source: str) -> None:
    with pytest.raises(Rejection) as info:
        adapter.shop_of({SOURCE_HEADER: source}, b"")
    assert info.value.status == 400
    assert info.value.reason == f"missing {SOURCE_HEADER} header"


def test_shop_of_rejects_an_absent_header() -> None:
    with pytest.raises(Rejection, match="400"):
        adapter.shop_of({}, b"")


@pytest.mark.parametrize(
    "source",
    [
        "shop.example.com",
        "ftp://shop.example.com/",
        "https://",
        "https:///store",
        "https://user:pw@shop.example.com/",
        "https://shop.example.com:99999/",
        "https://shop example.com/",
        "https://-shop.example.com/",
        "https://shop.example.com/a|b",
        "https://" + "a" * 300 + ".com/",
    ],
)
def test_shop_of_rejects_what_is_not_a_store_url(source: str) -> None:
    with pytest.raises(Rejection) as info:
        adapter.shop_of({SOURCE_HEADER: source}, b"")
    assert info.value.status == 400
    assert SOURCE_HEADER in info.value.reason


# -- describe --------------------------------------------------------------------------------


def test_describe_an_order_delivery() -> None:
    body = body_of("order_created")
    info = adapter.describe(SHOP, headers_for(body, "order.created", delivery_id="abc123"), body)
    assert info.topic == "order.created"
    assert info.entity_key == f"woocommerce:{SHOP}:order:727"
    digest = hashlib.sha256(body).hexdigest()
    expected = content_id(SHOP, "order.created", "727", "2026-11-20T10:00:04", digest)
    assert info.delivery_id == expected
    assert info.event_id == "abc123"
    assert info.malformed is False


def test_describe_same_content_resent_is_the_same_delivery() -> None:
    body = body_of("order_updated_completed")
    one = adapter.describe(SHOP, headers_for(body, delivery_id="first"), body)
    two = adapter.describe(SHOP, headers_for(body, delivery_id="second"), body)
    assert one.delivery_id == two.delivery_id
    assert (one.event_id, two.event_id) == ("first", "second")


def test_describe_a_new_modification_time_is_a_new_delivery() -> None:
    body = body_of("order_updated_completed")
    later = changed("order_updated_completed", date_modified_gmt="2026-11-22T14:30:13")
    one = adapter.describe(SHOP, headers_for(body), body)
    two = adapter.describe(SHOP, headers_for(later), later)
    assert one.delivery_id != two.delivery_id


def test_describe_the_delivery_id_depends_on_shop_and_topic() -> None:
    body = body_of("order_updated_completed")
    base = adapter.describe(SHOP, headers_for(body), body).delivery_id
    assert adapter.describe("other.example.com", headers_for(body), body).delivery_id != base
    assert adapter.describe(SHOP, headers_for(body, "order.restored"), body).delivery_id != base


def test_describe_keys_products_by_product_id() -> None:
    body = body_of("product_updated")
    info = adapter.describe(SHOP, headers_for(body, "product.updated"), body)
    assert info.entity_key == f"woocommerce:{SHOP}:product:93"
    digest = hashlib.sha256(body).hexdigest()
    expected = content_id(SHOP, "product.updated", "93", "2026-11-20T10:00:04", digest)
    assert info.delivery_id == expected


def test_describe_a_delete_without_a_time_hashes_the_body_and_the_send() -> None:
    body = body_of("order_deleted")
    one = adapter.describe(SHOP, headers_for(body, "order.deleted", delivery_id="d1"), body)
    again = adapter.describe(SHOP, headers_for(body, "order.deleted", delivery_id="d1"), body)
    later = adapter.describe(SHOP, headers_for(body, "order.deleted", delivery_id="d2"), body)
    assert one.entity_key == f"woocommerce:{SHOP}:order:727"
    assert one.delivery_id == again.delivery_id
    # A later delete of the same order (after a restore) must not be taken for a re-send.
    assert one.delivery_id != later.delivery_id


def test_describe_without_a_delivery_id_header_hashes_the_body() -> None:
    body = body_of("order_deleted")
    headers = headers_for(body, "order.deleted")
    del headers[DELIVERY_ID_HEADER]
    one = adapter.describe(SHOP, headers, body)
    two = adapter.describe(SHOP, headers, body)
    assert one.delivery_id == two.delivery_id
    assert one.event_id is None


def test_describe_flags_a_malformed_body_and_keys_by_delivery() -> None:
    body = b'{"id": 727,'
    info = adapter.describe(SHOP, headers_for(body), body)
    assert info.malformed is True
    assert info.entity_key == f"woocommerce:{SHOP}:delivery:{info.delivery_id}"
    assert info.delivery_id.startswith("c-")


@pytest.mark.parametrize(
    ("body", "topic"),
    [
        (b'{"action": "woocommerce_add_to_cart", "arg": "x"}', "action.woocommerce_add_to_cart"),
        (b'{"id": 5, "code": "SAVE10"}', "coupon.created"),
        (b'{"id": true}', "order.updated"),
        (b"[1, 2]", "order.updated"),
    ],
)
def test_describe_keys_by_delivery_when_no_order_or_product_id(body: bytes, topic: str) -> None:
    info = adapter.describe(SHOP, headers_for(body, topic), body)
    assert info.malformed is False
    assert info.entity_key == f"woocommerce:{SHOP}:delivery:{info.delivery_id}"


@pytest.mark.parametrize("value", [None, "", "order", "order.updated; DROP", "Order.Updated"])
def test_describe_rejects_a_missing_or_odd_topic(value: str | None) -> None:
    headers = headers_for(b"{}")
    if value is None:
        del headers[TOPIC_HEADER]
    else:
        headers[TOPIC_HEADER] = value
    with pytest.raises(Rejection) as info:
        adapter.describe(SHOP, headers, b"{}")
    assert info.value.status == 400
    assert TOPIC_HEADER in info.value.reason


def test_describe_drops_a_delivery_id_that_is_not_a_token() -> None:
    body = body_of("order_created")
    info = adapter.describe(SHOP, headers_for(body, delivery_id="a b<script>"), body)
    assert info.event_id is None


def test_describe_entity_key_matches_the_event_entity_key() -> None:
    for name, topic in [("order_created", "order.created"), ("product_updated", "product.updated")]:
        body = body_of(name)
        info = adapter.describe(SHOP, headers_for(body, topic), body)
        first = adapter.normalize(wc_envelope(body, topic)).events[0]
        assert info.entity_key == first.entity_key


# -- status map ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "canonical"),
    [
        ("pending", "pending"),
        ("on-hold", "pending"),
        ("checkout-draft", "pending"),
        ("processing", "paid"),
        ("completed", "completed"),
        ("cancelled", "cancelled"),
        ("failed", "cancelled"),
        ("trash", "cancelled"),
        ("refunded", "refunded"),
        ("awaiting-shipment", "pending"),
    ],
)
def test_canonical_status(status: str, canonical: str) -> None:
    assert canonical_status(status) == canonical


def test_status_map_covers_every_woocommerce_status_with_canonical_values() -> None:
    assert set(STATUS_MAP) == {
        "pending",
        "on-hold",
        "checkout-draft",
        "processing",
        "completed",
        "cancelled",
        "failed",
        "trash",
        "refunded",
    }
    assert set(STATUS_MAP.values()) <= set(ORDER_STATUSES)


def test_an_unknown_status_is_pending_and_kept() -> None:
    body = changed("order_created", status="wc-awaiting-pickup")
    (event,) = adapter.normalize(wc_envelope(body, "order.updated")).events
    assert isinstance(event, OrderEvent)
    assert (event.order.status, event.order.platform_status) == ("pending", "wc-awaiting-pickup")


# -- normalize: orders -----------------------------------------------------------------------


def test_order_created_fields() -> None:
    event = order_event()
    order = event.order
    assert event.type == "order.created"
    assert (order.platform, order.shop_id, order.external_id) == ("woocommerce", SHOP, "727")
    assert (order.order_number, order.status, order.platform_status) == (
        "727",
        "paid",
        "processing",
    )
    assert order.financial_status == "paid"
    assert order.fulfillment_status is None
    assert order.currency == "EUR"
    assert (order.total_amount, order.total_tax) == (Decimal("57.48"), Decimal("9.58"))
    assert order.subtotal_amount == Decimal("43.00")
    assert order.customer_email == "anna.lindqvist@example.com"
    assert order.placed_at == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    assert order.source_updated_at == datetime(2026, 11, 20, 10, 0, 4, tzinfo=UTC)
    assert order.cancelled_at is None
    assert event.occurred_at == order.source_updated_at


def test_order_lines() -> None:
    simple, variation = order_event().order.lines
    assert (simple.external_line_id, simple.quantity, simple.title) == ("315", 2, "Woo Single #1")
    assert (simple.product_id, simple.variant_id, simple.sku) == ("93", "93", "WOO-SINGLE-1")
    assert simple.unit_price == Decimal("9")
    assert (variation.external_line_id, variation.quantity) == ("316", 1)
    assert (variation.product_id, variation.variant_id, variation.sku) == ("22", "23", "SYI-BLK-L")
    assert variation.title == "Ship Your Idea - Black, L"
    assert variation.unit_price == Decimal("25")


def test_order_updated_completed() -> None:
    event = order_event("order_updated_completed", "order.updated")
    assert event.type == "order.updated"
    assert (event.order.status, event.order.platform_status) == ("completed", "completed")
    assert event.order.source_updated_at == datetime(2026, 11, 22, 14, 30, 12, tzinfo=UTC)
    assert event.occurred_at == datetime(2026, 11, 22, 14, 30, 12, tzinfo=UTC)


def test_order_restored_is_an_update() -> None:
    assert order_event("order_created", "order.restored").type == "order.updated"


@pytest.mark.parametrize(
    ("changes", "financial"),
    [
        ({}, "paid"),
        ({"date_paid_gmt": None, "date_paid": None}, None),
        ({"date_paid_gmt": None}, "paid"),
        ({"status": "refunded"}, "refunded"),
        ({"status": "pending", "date_paid_gmt": None, "date_paid": None}, None),
    ],
)
def test_financial_status_follows_date_paid(changes: dict[str, Any], financial: str | None) -> None:
    body = changed("order_created", **changes)
    (event,) = adapter.normalize(wc_envelope(body, "order.updated")).events
    assert isinstance(event, OrderEvent)
    assert event.order.financial_status == financial


def test_subtotal_is_none_unless_every_line_has_one() -> None:
    data = data_of("order_created")
    del data["line_items"][1]["subtotal"]
    (event,) = adapter.normalize(wc_envelope(orjson.dumps(data), "order.updated")).events
    assert isinstance(event, OrderEvent)
    assert event.order.subtotal_amount is None
    empty = changed("order_created", line_items=[])
    (event,) = adapter.normalize(wc_envelope(empty, "order.updated")).events
    assert isinstance(event, OrderEvent)
    assert (event.order.subtotal_amount, event.order.lines) == (None, ())


def test_a_line_of_a_deleted_product_has_no_product() -> None:
    body = line_changed(0, product_id=0, variation_id=0)
    (event,) = adapter.normalize(wc_envelope(body, "order.updated")).events
    assert isinstance(event, OrderEvent)
    line = event.order.lines[0]
    assert (line.product_id, line.variant_id) == (None, None)


def test_order_event_carries_its_source() -> None:
    source = order_event().source
    assert (source.platform, source.shop_id, source.topic) == ("woocommerce", SHOP, "order.created")
    assert (source.delivery_id, source.received_at) == (DELIVERY, RECEIVED_AT)


def test_order_event_id_is_deterministic_and_versioned() -> None:
    one = adapter.normalize(wc_envelope(body_of("order_created"), "order.updated", delivery_id="a"))
    two = adapter.normalize(wc_envelope(body_of("order_created"), "order.updated", delivery_id="b"))
    assert one.events[0].event_id == two.events[0].event_id
    later = changed("order_created", date_modified_gmt="2026-11-20T10:00:05")
    three = adapter.normalize(wc_envelope(later, "order.updated"))
    assert three.events[0].event_id != one.events[0].event_id


def test_without_date_modified_the_delivery_versions_the_order() -> None:
    body = changed("order_created", date_modified_gmt=None)
    one = adapter.normalize(wc_envelope(body, "order.updated", delivery_id="a")).events[0]
    two = adapter.normalize(wc_envelope(body, "order.updated", delivery_id="b")).events[0]
    assert one.event_id != two.event_id
    assert one.occurred_at == RECEIVED_AT


def test_order_deleted() -> None:
    (event,) = adapter.normalize(wc_envelope(body_of("order_deleted"), "order.deleted")).events
    assert isinstance(event, OrderStatusEvent)
    assert event.type == "order.status_changed"
    change = event.order
    assert (change.platform, change.shop_id, change.external_id) == ("woocommerce", SHOP, "727")
    assert (change.status, change.platform_status) == ("cancelled", "deleted")
    assert change.source_updated_at == RECEIVED_AT
    assert event.occurred_at == RECEIVED_AT
    assert event.entity_key == f"woocommerce:{SHOP}:order:727"
    again = adapter.normalize(wc_envelope(body_of("order_deleted"), "order.deleted")).events[0]
    assert again.event_id == event.event_id


# -- normalize: products ---------------------------------------------------------------------


def test_simple_product_with_managed_stock() -> None:
    product_event, level_event = adapter.normalize(
        wc_envelope(body_of("product_updated"), "product.updated")
    ).events
    assert isinstance(product_event, ProductEvent)
    assert isinstance(level_event, InventoryLevelEvent)
    modified = datetime(2026, 11, 20, 10, 0, 4, tzinfo=UTC)
    product = product_event.product
    assert product_event.type == "product.updated"
    assert (product.external_id, product.title, product.status) == (
        "93",
        "Woo Single #1",
        "publish",
    )
    assert (product.source_updated_at, product.deleted, product.complete) == (modified, False, True)
    (variant,) = product.variants
    assert (variant.external_variant_id, variant.sku, variant.price) == (
        "93",
        "WOO-SINGLE-1",
        Decimal("9.00"),
    )
    assert (variant.currency, variant.inventory_item_id) == (None, "93")
    level = level_event.level
    assert level_event.type == "inventory.level_updated"
    assert (level.platform, level.shop_id, level.inventory_item_id) == ("woocommerce", SHOP, "93")
    assert (level.location_id, level.available, level.variant_id) == ("", 7, "93")
    assert (level.sku, level.source_updated_at) == ("WOO-SINGLE-1", modified)
    assert level_event.occurred_at == modified
    assert level_event.source.topic == "product.updated"


def test_product_created_type() -> None:
    body = body_of("product_updated")
    event = adapter.normalize(wc_envelope(body, "product.created")).events[0]
    assert event.type == "product.created"
    restored = adapter.normalize(wc_envelope(body, "product.restored")).events[0]
    assert restored.type == "product.updated"


def test_product_price_falls_back_to_regular_price() -> None:
    body = changed("product_updated", price="", regular_price="11.50")
    event = adapter.normalize(wc_envelope(body, "product.updated")).events[0]
    assert isinstance(event, ProductEvent)
    assert event.product.variants[0].price == Decimal("11.50")


@pytest.mark.parametrize(
    "changes",
    [
        {"manage_stock": False},
        {"stock_quantity": None},
        {"manage_stock": False, "stock_quantity": 3},
    ],
)
def test_no_stock_level_unless_stock_is_managed(changes: dict[str, Any]) -> None:
    body = changed("product_updated", **changes)
    (event,) = adapter.normalize(wc_envelope(body, "product.updated")).events
    assert isinstance(event, ProductEvent)
    assert len(event.product.variants) == 1


def test_stock_quantity_of_unmanaged_stock_is_not_read() -> None:
    body = changed("product_updated", manage_stock=False, stock_quantity="n/a")
    (event,) = adapter.normalize(wc_envelope(body, "product.updated")).events
    assert event.type == "product.updated"


def test_backordered_stock_may_be_negative() -> None:
    body = changed("product_updated", stock_quantity=-2)
    level_event = adapter.normalize(wc_envelope(body, "product.updated")).events[1]
    assert isinstance(level_event, InventoryLevelEvent)
    assert level_event.level.available == -2


def test_variable_product_without_stock_has_no_variants() -> None:
    (event,) = adapter.normalize(wc_envelope(body_of("product_variable"), "product.updated")).events
    assert isinstance(event, ProductEvent)
    product = event.product
    assert (product.external_id, product.title, product.status) == (
        "22",
        "Ship Your Idea",
        "publish",
    )
    assert (product.variants, product.complete) == ((), False)
    assert product.source_updated_at == datetime(2026, 11, 21, 8, 45, 31, tzinfo=UTC)


def test_variable_product_managing_stock_is_its_own_variant() -> None:
    body = changed("product_variable", manage_stock=True, stock_quantity=30)
    product_event, level_event = adapter.normalize(wc_envelope(body, "product.updated")).events
    assert isinstance(product_event, ProductEvent)
    assert isinstance(level_event, InventoryLevelEvent)
    (variant,) = product_event.product.variants
    assert (variant.external_variant_id, variant.sku, variant.price) == ("22", "SYI", Decimal("25"))
    assert product_event.product.complete is False
    assert (level_event.level.inventory_item_id, level_event.level.available) == ("22", 30)


def test_variation_with_stock_managed_by_its_parent() -> None:
    body = changed("product_updated", id=23, type="variation", parent_id=22, manage_stock="parent")
    (event,) = adapter.normalize(wc_envelope(body, "product.updated")).events
    assert isinstance(event, ProductEvent)
    (variant,) = event.product.variants
    assert (variant.external_variant_id, variant.inventory_item_id) == ("23", "22")


def test_product_and_level_event_ids_are_deterministic() -> None:
    body = body_of("product_updated")
    one = adapter.normalize(wc_envelope(body, "product.updated", delivery_id="a")).events
    two = adapter.normalize(wc_envelope(body, "product.updated", delivery_id="b")).events
    assert [e.event_id for e in one] == [e.event_id for e in two]
    assert one[0].event_id != one[1].event_id
    later = changed("product_updated", date_modified_gmt="2026-11-20T10:00:05")
    three = adapter.normalize(wc_envelope(later, "product.updated")).events
    assert {e.event_id for e in three}.isdisjoint({e.event_id for e in one})


def test_product_deleted() -> None:
    (event,) = adapter.normalize(wc_envelope(body_of("product_deleted"), "product.deleted")).events
    assert isinstance(event, ProductEvent)
    assert event.type == "product.deleted"
    product = event.product
    assert (product.external_id, product.deleted, product.complete) == ("93", True, False)
    assert (product.title, product.variants, product.source_updated_at) == (None, (), RECEIVED_AT)
    assert event.occurred_at == RECEIVED_AT


# -- normalize: ignored and invalid ----------------------------------------------------------


@pytest.mark.parametrize(
    "topic",
    ["coupon.created", "customer.updated", "action.woocommerce_add_to_cart", "order.exploded"],
)
def test_unhandled_topic_is_ignored(topic: str) -> None:
    result = adapter.normalize(wc_envelope(b"not even json", topic))
    assert result.events == ()
    assert result.ignored == f"topic {topic} is not handled yet"


@pytest.mark.parametrize(
    ("body", "topic", "message"),
    [
        (b"not json", "order.updated", "not JSON"),
        (b"[1]", "order.created", "not a JSON object"),
        (changed("order_created", id=None), "order.updated", "id is missing"),
        (changed("order_created", id=True), "order.updated", "id is not an id"),
        (changed("order_created", status=None), "order.updated", "status is missing"),
        (changed("order_created", total="12,50"), "order.updated", "total is not an amount"),
        (changed("order_created", total_tax="NaN"), "order.updated", "total_tax is out of range"),
        (
            changed("order_created", date_created_gmt="yesterday"),
            "order.updated",
            "date_created_gmt",
        ),
        (changed("order_created", date_modified_gmt=17), "order.updated", "date_modified_gmt"),
        (changed("order_created", date_paid_gmt="soon"), "order.updated", "date_paid_gmt"),
        (changed("order_created", billing="anna"), "order.updated", "billing is not an object"),
        (changed("order_created", line_items={}), "order.updated", "line_items is not a list"),
        (changed("order_created", line_items=[7]), "order.updated", r"line_items\[0\] is not an"),
        (
            line_changed(1, quantity="x"),
            "order.updated",
            r"line_items\[1\].quantity is not a whole",
        ),
        (
            line_changed(0, quantity=1.5),
            "order.updated",
            r"line_items\[0\].quantity is not a whole",
        ),
        (
            line_changed(0, quantity=-1),
            "order.updated",
            r"line_items\[0\].quantity is out of range",
        ),
        (line_changed(0, quantity=None), "order.updated", r"line_items\[0\].quantity is missing"),
        (line_changed(1, price="x"), "order.updated", r"line_items\[1\].price is not an amount"),
        (line_changed(0, subtotal="x"), "order.updated", r"line_items\[0\].subtotal is not an"),
        (line_changed(0, variation_id=[1]), "order.updated", r"line_items\[0\].variation_id"),
        (b"{}", "order.deleted", "id is missing"),
        (b"{}", "product.deleted", "id is missing"),
        (b'{"id": 1.5}', "product.deleted", "id is not an id"),
        (changed("product_updated", id=None), "product.updated", "id is missing"),
        (changed("product_updated", price="free"), "product.updated", "price is not an amount"),
        (changed("product_updated", stock_quantity="x"), "product.updated", "stock_quantity"),
        (changed("product_updated", date_modified_gmt="x"), "product.updated", "date_modified_gmt"),
    ],
)
def test_unusable_payload_raises_invalid_payload(body: bytes, topic: str, message: str) -> None:
    with pytest.raises(InvalidPayload, match=message):
        adapter.normalize(wc_envelope(body, topic))


def test_a_stock_change_that_keeps_date_modified_is_a_new_delivery_and_a_new_level() -> None:
    # WooCommerce changes stock_quantity without touching date_modified (woocommerce#40060).
    first = body_of("product_updated")
    payload = orjson.loads(first)
    payload["stock_quantity"] = payload["stock_quantity"] - 1
    second = orjson.dumps(payload)
    ids = [adapter.describe(SHOP, headers_for(b, "product.updated"), b) for b in (first, second)]
    assert ids[0].delivery_id != ids[1].delivery_id
    levels = [
        next(
            e
            for e in adapter.normalize(wc_envelope(b, "product.updated")).events
            if isinstance(e, InventoryLevelEvent)
        )
        for b in (first, second)
    ]
    assert levels[0].event_id != levels[1].event_id
    assert levels[0].level.source_updated_at == levels[1].level.source_updated_at
