"""The ingress end to end for every platform: real adapters, a fake channel store and producer.

Each platform's deliveries are built with its adapter module's own `delivery_headers`/`sign`, from
the realistic fixtures its adapter tests use. This module also holds the per-platform cases the
OpenAPI tests send (`PLATFORMS`, `ChannelPool`, `all_platforms`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline import envelope as envelopes
from pipeline.envelope import Envelope
from pipeline.platforms import lazada, registry, shopee, shopify, tiktok, woocommerce
from pipeline.platforms.base import PlatformAdapter
from tests.unit.factories import SECRET as SHOPIFY_SECRET
from tests.unit.factories import SHOP as SHOPIFY_SHOP
from tests.unit.factories import shopify_headers
from tests.unit.test_ingress_hostile import (
    SHOPS as SHOPIFY_SHOPS,
)
from tests.unit.test_ingress_hostile import (
    Answer,
    FakePool,
    FakeResources,
    request,
    serve,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CONTENT_ID = re.compile(r"^c-[0-9a-f]{40}$")

WOO_SHOP = "shop.example.com"
WOO_SECRET = "wc_webhook_secret_7f3a9c"
SHOPEE_SHOP = "123456"
SHOPEE_PARTNER_ID = "2001234"
SHOPEE_PARTNER_KEY = "shpk_partner_key_4e1d9a"
SHOPEE_CALLBACK = "https://hooks.example.com/webhooks/shopee"
LAZADA_SHOP = "1234567"
LAZADA_APP_KEY = "test_app_key"
LAZADA_SECRET = "test_app_secret"
TIKTOK_SHOP = "7494049642642441621"
TIKTOK_APP_KEY = "6a1b2c3d4e5f7"
TIKTOK_SECRET = "tts_app_secret_93bd"
NEW_SECRET = "rotated-in-secret-0001"
THIRD_SECRET = "neither-old-nor-new-0002"


def fixture_bytes(platform: str, name: str) -> bytes:
    return (FIXTURES / platform / f"{name}.json").read_bytes()


def with_field(body: bytes, name: str, value: object | None) -> bytes:
    """`body` with one top-level field replaced, or removed when `value` is None."""
    payload: dict[str, Any] = orjson.loads(body)
    if value is None:
        payload.pop(name, None)
    else:
        payload[name] = value
    return orjson.dumps(payload)


# A builder makes one genuine delivery: (body, headers) for a shop (None: naming no shop),
# signed under a secret.
Builder = Callable[[str | None, str], tuple[bytes, dict[str, str]]]


def _shopify(shop: str | None, secret: str) -> tuple[bytes, dict[str, str]]:
    body = fixture_bytes("shopify", "order_cancelled")
    headers = shopify_headers(
        body, secret=secret, shop=shop or SHOPIFY_SHOP, topic="orders/cancelled"
    )
    if shop is None:
        del headers[shopify.SHOP_HEADER]
    return body, headers


def _woocommerce(shop: str | None, secret: str) -> tuple[bytes, dict[str, str]]:
    body = fixture_bytes("woocommerce", "order_created")
    headers = woocommerce.delivery_headers(
        secret, body, source=f"https://{shop or WOO_SHOP}/", topic="order.updated"
    )
    if shop is None:
        del headers[woocommerce.SOURCE_HEADER]
    return body, headers


def _shopee(shop: str | None, secret: str) -> tuple[bytes, dict[str, str]]:
    body = fixture_bytes("shopee", "order_status_ready_to_ship")
    if shop != SHOPEE_SHOP:
        body = with_field(body, "shop_id", None if shop is None else int(shop))
    return body, shopee.delivery_headers(secret, body, callback_url=SHOPEE_CALLBACK)


def _lazada(shop: str | None, secret: str) -> tuple[bytes, dict[str, str]]:
    body = fixture_bytes("lazada", "trade_order_unpaid")
    if shop != LAZADA_SHOP:
        body = with_field(body, "seller_id", shop)
    return body, lazada.delivery_headers(secret, LAZADA_APP_KEY, body)


def _tiktok(shop: str | None, secret: str) -> tuple[bytes, dict[str, str]]:
    body = fixture_bytes("tiktok", "order_status_unpaid")
    if shop != TIKTOK_SHOP:
        body = with_field(body, "shop_id", shop)
    return body, tiktok.delivery_headers(secret, body, app_key=TIKTOK_APP_KEY)


@dataclass(frozen=True)
class Platform:
    """One platform's genuine delivery and what the ingress must make of it."""

    name: str
    adapter: Callable[[], PlatformAdapter]
    build: Builder
    shop_id: str
    secret: str
    signature_header: str
    topic: str
    entity_key: str
    delivery_id: str | None  # None: derived from content (`c-` and 40 hex digits)
    empty_ack: bool
    app_key: str | None = None
    callback_url: str | None = None

    def delivery(
        self, *, shop: str | None = "", secret: str | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """A genuine delivery (for this platform's shop unless told; None names no shop)."""
        return self.build(self.shop_id if shop == "" else shop, secret or self.secret)

    def row(
        self,
        secrets: tuple[str, ...] | None = None,
        *,
        app_key: str | None = None,
        callback_url: str | None = None,
    ) -> dict[str, Any]:
        """The channel row the store returns: the shop's own secrets, or its app's."""
        current, *previous = secrets or (self.secret,)
        old = previous[0] if previous else None
        row: dict[str, Any] = {"platform": self.name, "shop_id": self.shop_id, "currency": None}
        if self.app_key is None:
            return row | {"secret": current, "previous_secret": old, "app_key": None}
        return row | {
            "secret": None,
            "previous_secret": None,
            "app_key": app_key or self.app_key,
            "app_secret": current,
            "app_previous_secret": old,
            "callback_url": callback_url or self.callback_url,
        }


PLATFORMS: dict[str, Platform] = {
    "shopify": Platform(
        name="shopify",
        adapter=shopify.ShopifyAdapter,
        build=_shopify,
        shop_id=SHOPIFY_SHOP,
        secret=SHOPIFY_SECRET,
        signature_header=shopify.HMAC_HEADER,
        topic="orders/cancelled",
        entity_key=f"shopify:{SHOPIFY_SHOP}:order:450789470",
        delivery_id="b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        empty_ack=False,
    ),
    "woocommerce": Platform(
        name="woocommerce",
        adapter=woocommerce.WooCommerceAdapter,
        build=_woocommerce,
        shop_id=WOO_SHOP,
        secret=WOO_SECRET,
        signature_header=woocommerce.SIGNATURE_HEADER,
        topic="order.updated",
        entity_key=f"woocommerce:{WOO_SHOP}:order:727",
        delivery_id=None,
        empty_ack=False,
    ),
    "shopee": Platform(
        name="shopee",
        adapter=shopee.ShopeeAdapter,
        build=_shopee,
        shop_id=SHOPEE_SHOP,
        secret=SHOPEE_PARTNER_KEY,
        signature_header=shopee.SIGNATURE_HEADER,
        topic="order_status",
        entity_key=f"shopee:{SHOPEE_SHOP}:order:241120K7QXP3N5",
        delivery_id="4f8b2c1d9e7a4b3c8d2e1f0a9b8c7d6e",
        empty_ack=True,
        app_key=SHOPEE_PARTNER_ID,
        callback_url=SHOPEE_CALLBACK,
    ),
    "lazada": Platform(
        name="lazada",
        adapter=lazada.LazadaAdapter,
        build=_lazada,
        shop_id=LAZADA_SHOP,
        secret=LAZADA_SECRET,
        signature_header=lazada.SIGNATURE_HEADER,
        topic="trade_order",
        entity_key=f"lazada:{LAZADA_SHOP}:order:260422900198363",
        delivery_id=None,
        empty_ack=False,
        app_key=LAZADA_APP_KEY,
    ),
    "tiktok": Platform(
        name="tiktok",
        adapter=tiktok.TikTokAdapter,
        build=_tiktok,
        shop_id=TIKTOK_SHOP,
        secret=TIKTOK_SECRET,
        signature_header=tiktok.SIGNATURE_HEADER,
        topic="order_status_change",
        entity_key=f"tiktok:{TIKTOK_SHOP}:order:576486316948490001",
        delivery_id="7327112393057371910",
        empty_ack=True,
        app_key=TIKTOK_APP_KEY,
    ),
}


def every_channel() -> dict[tuple[str, str], dict[str, Any]]:
    """One channel per platform, plus the second Shopify shop the hostile tests know."""
    rows = {(p.name, p.shop_id): p.row() for p in PLATFORMS.values()}
    for shop, secret in SHOPIFY_SHOPS.items():
        rows[("shopify", shop)] = PLATFORMS["shopify"].row() | {"shop_id": shop, "secret": secret}
    return rows


class ChannelPool(FakePool):
    """The channels table (joined with app credentials) as rows by (platform, shop), or an
    outage; counts lookups."""

    def __init__(
        self,
        rows: dict[tuple[str, str], dict[str, Any]] | None = None,
        error: Exception | None = None,
    ) -> None:
        super().__init__(error)
        self.rows = every_channel() if rows is None else rows

    async def fetchrow(self, query: str, platform: str, shop_id: str) -> dict[str, Any] | None:
        self.lookups += 1
        if self.error is not None:
            raise self.error
        return self.rows.get((platform, shop_id))


def resources(*rows: dict[str, Any], error: Exception | None = None) -> FakeResources:
    """Fakes whose channel store holds `rows` (every platform's channel when none are given)."""
    table = {(r["platform"], r["shop_id"]): r for r in rows} if rows else None
    return FakeResources(pool=ChannelPool(table, error))


def register_all(monkeypatch: pytest.MonkeyPatch) -> None:
    """Serve every platform with its real adapter, whether or not registry.py lists it yet."""
    for platform in PLATFORMS.values():
        if platform.name not in registry.ADAPTERS:
            monkeypatch.setitem(registry.ADAPTERS, platform.name, platform.adapter())


@pytest.fixture(autouse=True)
def all_platforms(monkeypatch: pytest.MonkeyPatch) -> None:
    register_all(monkeypatch)


@dataclass
class Sent:
    """One request's answer and what reached Kafka and the channel store meanwhile."""

    answer: Answer
    produced: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    lookups: int = 0

    def envelope(self) -> Envelope:
        ((_, value, _),) = self.produced
        return envelopes.decode(value)


async def send(
    platform: Platform,
    body: bytes,
    headers: dict[str, str],
    res: FakeResources | None = None,
    *,
    tail: str = "",
) -> Sent:
    res = res or resources()
    path = f"/webhooks/{platform.name}" + (f"/{tail}" if tail else "")
    async with serve(resources=res) as (client, _):
        answer = await request(client, "POST", path, body=body, headers=headers)
    return Sent(answer, list(res.producer.sent), res.pool.lookups)


def assert_refused(sent: Sent, status: int, code: str) -> None:
    assert sent.answer.status == status, sent.answer
    assert sent.answer.content_type == "application/json"
    assert sent.answer.json()["error"] == code
    assert sent.produced == []


PARAMS = pytest.mark.parametrize("platform", PLATFORMS.values(), ids=PLATFORMS.keys())
APP_PLATFORMS = [p for p in PLATFORMS.values() if p.app_key is not None]


# --------------------------------------------------------------------------------------------
# Accepted deliveries
# --------------------------------------------------------------------------------------------


@PARAMS
async def test_a_signed_delivery_is_produced_once_with_its_identity(platform: Platform) -> None:
    body, headers = platform.delivery()
    sent = await send(platform, body, headers)
    assert sent.answer.status == 200, sent.answer
    ((topic, _, key),) = sent.produced
    assert topic == "t.webhooks.raw"
    assert key == platform.entity_key.encode()
    item = sent.envelope()
    assert (item.platform, item.shop_id, item.topic) == (
        platform.name,
        platform.shop_id,
        platform.topic,
    )
    assert item.entity_key == platform.entity_key
    assert item.body == body
    if platform.delivery_id is None:
        assert CONTENT_ID.match(item.delivery_id), item.delivery_id
    else:
        assert item.delivery_id == platform.delivery_id


@PARAMS
async def test_the_answer_is_the_platforms_acknowledgement(platform: Platform) -> None:
    body, headers = platform.delivery()
    sent = await send(platform, body, headers, tail="orders/create")
    assert sent.answer.status == 200
    if platform.empty_ack:
        assert sent.answer.body == b""
        assert "Content-Type" not in sent.answer.headers
    else:
        assert sent.answer.json() == {
            "status": "accepted",
            "delivery_id": sent.envelope().delivery_id,
        }
    assert len(sent.produced) == 1


@pytest.mark.parametrize("name", ["shopee", "tiktok"])
async def test_shopee_and_tiktok_get_an_empty_200(name: str) -> None:
    platform = PLATFORMS[name]
    assert platform.adapter().empty_ack is True
    body, headers = platform.delivery()
    sent = await send(platform, body, headers)
    assert (sent.answer.status, sent.answer.body) == (200, b"")
    assert sent.answer.headers["Content-Length"] == "0"


# --------------------------------------------------------------------------------------------
# Refusals
# --------------------------------------------------------------------------------------------


@PARAMS
async def test_a_wrong_secret_is_401_and_nothing_is_produced(platform: Platform) -> None:
    body, headers = platform.delivery(secret="not-the-secret-at-all")
    sent = await send(platform, body, headers)
    assert_refused(sent, 401, "unauthorized")


@PARAMS
async def test_a_missing_signature_is_401_and_nothing_is_produced(platform: Platform) -> None:
    body, headers = platform.delivery()
    del headers[platform.signature_header]
    sent = await send(platform, body, headers)
    assert_refused(sent, 401, "unauthorized")


@PARAMS
async def test_a_signature_of_other_bytes_is_401(platform: Platform) -> None:
    body, headers = platform.delivery()
    tampered = body + b" "  # still JSON, still the same shop
    sent = await send(platform, tampered, headers)
    assert_refused(sent, 401, "unauthorized")


@PARAMS
async def test_an_unknown_shop_is_404(platform: Platform) -> None:
    other = "other-shop.example.com" if platform.name in ("shopify", "woocommerce") else "999001"
    body, headers = platform.delivery(shop=other)
    sent = await send(platform, body, headers)
    assert_refused(sent, 404, "not_found")
    assert platform.name in sent.answer.json()["detail"]


@PARAMS
async def test_a_delivery_naming_no_shop_is_400_before_any_lookup(platform: Platform) -> None:
    body, headers = platform.delivery(shop=None)
    sent = await send(platform, body, headers)
    assert_refused(sent, 400, "bad_request")
    assert sent.lookups == 0


@PARAMS
async def test_a_shop_another_platform_knows_is_unknown_here(platform: Platform) -> None:
    """Channels are per platform: the same shop id under another platform does not verify."""
    body, headers = platform.delivery()
    other = next(p for p in PLATFORMS.values() if p.name != platform.name)
    row = platform.row() | {"platform": other.name}
    sent = await send(platform, body, headers, resources(row))
    assert_refused(sent, 404, "not_found")


# --------------------------------------------------------------------------------------------
# Rotation
# --------------------------------------------------------------------------------------------


@PARAMS
@pytest.mark.parametrize("signed_with", ["new", "old", "third"])
async def test_during_a_rotation_old_and_new_secrets_verify(
    platform: Platform, signed_with: str
) -> None:
    secret = {"new": NEW_SECRET, "old": platform.secret, "third": THIRD_SECRET}[signed_with]
    body, headers = platform.delivery(secret=secret)
    sent = await send(
        platform, body, headers, resources(platform.row((NEW_SECRET, platform.secret)))
    )
    if signed_with == "third":
        assert_refused(sent, 401, "unauthorized")
    else:
        assert sent.answer.status == 200, sent.answer
        assert len(sent.produced) == 1


@PARAMS
async def test_after_a_rotation_the_old_secret_no_longer_verifies(platform: Platform) -> None:
    body, headers = platform.delivery()
    sent = await send(platform, body, headers, resources(platform.row((NEW_SECRET,))))
    assert_refused(sent, 401, "unauthorized")


# --------------------------------------------------------------------------------------------
# Platform specifics
# --------------------------------------------------------------------------------------------


async def test_shopee_is_verified_over_the_registered_callback_url() -> None:
    platform = PLATFORMS["shopee"]
    body, _ = platform.delivery()
    # Signed over the URL the request arrives on behind a proxy, not the one registered.
    headers = shopee.delivery_headers(
        SHOPEE_PARTNER_KEY, body, callback_url="http://ingress:8080/webhooks/shopee"
    )
    assert_refused(await send(platform, body, headers), 401, "unauthorized")
    # The same delivery is accepted when the channel's app registered that URL.
    row = platform.row(callback_url="http://ingress:8080/webhooks/shopee")
    sent = await send(platform, body, headers, resources(row))
    assert sent.answer.status == 200
    assert len(sent.produced) == 1


async def test_shopee_without_a_registered_callback_url_verifies_nothing() -> None:
    platform = PLATFORMS["shopee"]
    body, headers = platform.delivery()
    row = platform.row() | {"callback_url": None}
    assert_refused(await send(platform, body, headers, resources(row)), 401, "unauthorized")


async def test_shopee_without_msg_id_gets_a_content_delivery_id_stable_across_resends() -> None:
    platform = PLATFORMS["shopee"]
    body = with_field(platform.delivery()[0], "msg_id", None)
    headers = shopee.delivery_headers(SHOPEE_PARTNER_KEY, body, callback_url=SHOPEE_CALLBACK)
    first = await send(platform, body, headers)
    again = await send(platform, body, headers)
    assert CONTENT_ID.match(first.envelope().delivery_id)
    assert first.envelope().delivery_id == again.envelope().delivery_id


@pytest.mark.parametrize("platform", APP_PLATFORMS, ids=[p.name for p in APP_PLATFORMS])
async def test_app_platforms_accept_the_apps_secret_for_any_of_its_shops(
    platform: Platform,
) -> None:
    """One app secret signs every shop: a second shop of the same app verifies with it."""
    second = "880077" if platform.name != "tiktok" else "7494049642642449999"
    body, headers = platform.delivery(shop=second)
    row = platform.row() | {"shop_id": second}
    sent = await send(platform, body, headers, resources(platform.row(), row))
    assert sent.answer.status == 200, sent.answer
    assert sent.envelope().shop_id == second


@pytest.mark.parametrize("name", ["lazada", "tiktok"])
async def test_lazada_and_tiktok_sign_with_the_app_key(name: str) -> None:
    platform = PLATFORMS[name]
    body, headers = platform.delivery()
    # Same secret, but the channel belongs to an app with another key: the signature differs.
    row = platform.row(app_key="another_app_key")
    assert_refused(await send(platform, body, headers, resources(row)), 401, "unauthorized")
    # A channel with no app at all verifies nothing.
    bare = platform.row() | {"app_key": None, "app_secret": None}
    assert_refused(await send(platform, body, headers, resources(bare)), 401, "unauthorized")


async def test_the_woocommerce_ping_is_200_ok_produces_nothing_and_looks_nothing_up() -> None:
    platform = PLATFORMS["woocommerce"]
    body = b"webhook_id=42"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    sent = await send(platform, body, headers)
    assert sent.answer.status == 200
    assert sent.answer.json() == {"status": "ok"}
    assert sent.produced == []
    assert sent.lookups == 0


async def test_a_ping_shaped_body_with_woocommerce_headers_is_a_delivery() -> None:
    """Only the unsigned ping is a handshake: a signed form body is verified like any other."""
    platform = PLATFORMS["woocommerce"]
    body = b"webhook_id=42"
    headers = woocommerce.delivery_headers(
        "wrong-secret", body, source=f"https://{WOO_SHOP}/", topic="order.updated"
    )
    sent = await send(platform, body, headers)
    assert_refused(sent, 401, "unauthorized")
    assert sent.lookups == 1


async def test_woocommerce_resends_with_new_delivery_ids_share_one_delivery_id() -> None:
    platform = PLATFORMS["woocommerce"]
    body, first_headers = platform.delivery()
    second_headers = first_headers | {
        woocommerce.DELIVERY_ID_HEADER: "9d0f3c1e7b2a4d6f8e0c2b4a6d8f0e13"
    }
    first = await send(platform, body, first_headers)
    second = await send(platform, body, second_headers)
    one, two = first.envelope(), second.envelope()
    assert CONTENT_ID.match(one.delivery_id)
    assert one.delivery_id == two.delivery_id
    assert one.entity_key == two.entity_key == platform.entity_key
    # The ids WooCommerce sent are kept as event ids; they are not the dedupe key.
    assert one.event_id == first_headers[woocommerce.DELIVERY_ID_HEADER]
    assert two.event_id == "9d0f3c1e7b2a4d6f8e0c2b4a6d8f0e13"
    assert first.answer.json()["delivery_id"] == second.answer.json()["delivery_id"]


async def test_a_woocommerce_change_gets_a_new_delivery_id() -> None:
    platform = PLATFORMS["woocommerce"]
    body, headers = platform.delivery()
    changed = with_field(body, "date_modified_gmt", "2026-11-20T10:05:00")
    changed_headers = woocommerce.delivery_headers(
        WOO_SECRET, changed, source=f"https://{WOO_SHOP}/", topic="order.updated"
    )
    first = await send(platform, body, headers)
    second = await send(platform, changed, changed_headers)
    assert first.envelope().delivery_id != second.envelope().delivery_id
    assert first.envelope().entity_key == second.envelope().entity_key


async def test_woocommerce_shop_is_the_store_url_lowercased_without_scheme() -> None:
    platform = PLATFORMS["woocommerce"]
    body, headers = platform.delivery()
    headers[woocommerce.SOURCE_HEADER] = "https://SHOP.Example.com/"
    sent = await send(platform, body, headers)
    assert sent.answer.status == 200
    assert sent.envelope().shop_id == WOO_SHOP


async def test_lazada_resends_share_a_content_delivery_id_and_a_new_status_does_not() -> None:
    platform = PLATFORMS["lazada"]
    body, headers = platform.delivery()
    payload = orjson.loads(body)
    payload["data"] = {
        **payload["data"],
        "order_status": "pending",
        "status_update_time": 1603699000,
    }
    shipped = orjson.dumps(payload)
    first = await send(platform, body, headers)
    again = await send(platform, body, headers)
    moved = await send(
        platform, shipped, lazada.delivery_headers(LAZADA_SECRET, LAZADA_APP_KEY, shipped)
    )
    assert first.envelope().delivery_id == again.envelope().delivery_id
    assert moved.envelope().delivery_id != first.envelope().delivery_id
    # Every line and status of one order goes to one Kafka key, so they stay in order.
    assert moved.produced[0][2] == first.produced[0][2] == platform.entity_key.encode()


async def test_tiktok_without_a_notification_id_is_400_after_verification() -> None:
    platform = PLATFORMS["tiktok"]
    body = with_field(platform.delivery()[0], "tts_notification_id", None)
    headers = tiktok.delivery_headers(TIKTOK_SECRET, body, app_key=TIKTOK_APP_KEY)
    sent = await send(platform, body, headers)
    assert_refused(sent, 400, "bad_request")
    assert "tts_notification_id" in sent.answer.json()["detail"]


@pytest.mark.parametrize("name", ["shopee", "lazada", "tiktok"])
async def test_a_body_platform_refuses_a_body_that_is_not_json_with_400(name: str) -> None:
    platform = PLATFORMS[name]
    body = b"shop_id=123456"
    headers = platform.delivery()[1]
    sent = await send(platform, body, headers)
    assert_refused(sent, 400, "bad_request")
    assert sent.lookups == 0
