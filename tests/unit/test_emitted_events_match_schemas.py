"""The contract holds for what the pipeline really emits: every fixture of every platform, read
the way the ingress reads it and normalized the way the worker does, yields events that validate
against the JSON Schema of their `schema` name."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from jsonschema import Draft202012Validator

from pipeline.envelope import Envelope
from pipeline.platforms import lazada, shopee, shopify, tiktok, woocommerce
from pipeline.platforms.base import Normalized
from pipeline.platforms.registry import adapter_for
from schemas.events import to_json
from schemas.jsonschema import event_schemas

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SECRET = "schema-test-secret"
APP_KEY = "schema-app"
CALLBACK = "https://hooks.example.com/shopee"

# Shopify and WooCommerce name the topic in a header; the others in the body.
HEADER_TOPICS = {
    ("shopify", "order_paid"): "orders/paid",
    ("shopify", "order_cancelled"): "orders/cancelled",
    ("shopify", "order_fulfilled"): "orders/fulfilled",
    ("shopify", "order_partially_fulfilled"): "orders/partially_fulfilled",
    ("shopify", "product_create"): "products/create",
    ("shopify", "product_delete"): "products/delete",
    ("shopify", "inventory_level_update"): "inventory_levels/update",
    ("shopify", "inventory_level_disconnect"): "inventory_levels/disconnect",
    ("shopify", "fulfillment_create"): "fulfillments/create",
    ("woocommerce", "order_created"): "order.created",
    ("woocommerce", "order_updated_completed"): "order.updated",
    ("woocommerce", "order_deleted"): "order.deleted",
    ("woocommerce", "product_updated"): "product.updated",
    ("woocommerce", "product_variable"): "product.updated",
    ("woocommerce", "product_deleted"): "product.deleted",
}


def _headers(platform: str, name: str, body: bytes) -> dict[str, str]:
    if platform == "shopify":
        topic = HEADER_TOPICS[(platform, name)]
        return shopify.delivery_headers(
            SECRET, body, shop="schemas.myshopify.com", topic=topic, webhook_id=f"wh-{name}"
        )
    if platform == "woocommerce":
        topic = HEADER_TOPICS[(platform, name)]
        return woocommerce.delivery_headers(
            SECRET, body, source="https://shop.example.com/", topic=topic
        )
    if platform == "shopee":
        return shopee.delivery_headers(SECRET, body, callback_url=CALLBACK)
    if platform == "lazada":
        return lazada.delivery_headers(SECRET, APP_KEY, body)
    return tiktok.delivery_headers(SECRET, body, app_key=APP_KEY)


def _cases() -> list[tuple[str, str]]:
    return sorted(
        (path.parent.name, path.stem)
        for path in FIXTURES.glob("*/*.json")
        if adapter_for(path.parent.name) is not None
    )


VALIDATORS = {name: Draft202012Validator(schema) for name, schema in event_schemas().items()}


def test_every_platform_has_fixtures() -> None:
    assert {p for p, _ in _cases()} == {"shopify", "woocommerce", "shopee", "lazada", "tiktok"}


def normalize_fixture(platform: str, name: str) -> tuple[Normalized, str]:
    """A fixture delivery through its adapter, as the worker sees it: (what the adapter made
    of it, the entity key the ingress partitioned it by)."""
    adapter = adapter_for(platform)
    assert adapter is not None
    body = (FIXTURES / platform / f"{name}.json").read_bytes()
    headers = _headers(platform, name, body)
    shop = adapter.shop_of(headers, body)
    info = adapter.describe(shop, headers, body)
    envelope = Envelope(
        platform=platform,
        shop_id=shop,
        topic=info.topic,
        delivery_id=info.delivery_id,
        received_at_ms=1_732_100_000_000,
        entity_key=info.entity_key,
        body=body,
    )
    return adapter.normalize(envelope), info.entity_key


@pytest.mark.parametrize(("platform", "name"), _cases())
def test_emitted_events_validate_against_their_schema(platform: str, name: str) -> None:
    normalized, entity_key = normalize_fixture(platform, name)
    assert normalized.events, f"{platform}/{name} gave no events: {normalized.ignored}"
    for event in normalized.events:
        payload = orjson.loads(to_json(event))
        VALIDATORS[event.schema].validate(payload)
        if event.stream in ("orders", "fulfillments"):
            # An order's events keep the key the ingress partitioned the delivery by.
            assert event.entity_key == entity_key
