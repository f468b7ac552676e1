"""Every platform end to end on the real services: a webhook signed as the platform signs it goes
through the ingress, Kafka and a real worker, and ends as rows; a re-send and an older version
are absorbed (deduplicated, or recorded STALE without changing the row)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from pipeline.channels import AppCredential, Channel, ChannelStore
from pipeline.platforms import lazada, shopee, tiktok, woocommerce
from pipeline.resources import Resources
from pipeline.settings import Secret
from tests.integration.conftest import WorkerProcess, eventually

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SECRET = "platform-secret-0123456789"
OLD_SECRET = "platform-secret-being-rotated-out"
CALLBACK = "https://hooks.example.com/webhooks/shopee"


def fixture(platform: str, name: str) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads((FIXTURES / platform / f"{name}.json").read_bytes())
    return data


@dataclass(frozen=True)
class Delivery:
    """One webhook as the platform sends it: path, headers and the exact body bytes."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Case:
    """How one platform is set up, and three versions of one order's state from it."""

    platform: str
    shop: str
    order_id: str
    # (body, version) -> delivery; version 1 is older than version 2.
    deliver: Callable[[str, int, str], Delivery]
    newer_status: str
    empty_ack: bool = False


def _woo(shop: str, version: int, secret: str) -> Delivery:
    payload = fixture("woocommerce", "order_created")
    payload["status"] = "processing" if version == 2 else "pending"
    payload["date_modified_gmt"] = f"2026-11-20T11:0{version}:00"
    body = orjson.dumps(payload)
    headers = woocommerce.delivery_headers(
        secret,
        body,
        source=f"https://{shop}/",
        topic="order.updated",
        delivery_id=uuid.uuid4().hex,  # new on every send, as WooCommerce does
    )
    return Delivery("/webhooks/woocommerce", headers, body)


def _shopee(shop: str, version: int, secret: str) -> Delivery:
    payload = fixture("shopee", "order_status_ready_to_ship")
    payload["shop_id"] = int(shop)
    payload["data"]["status"] = "READY_TO_SHIP" if version == 2 else "UNPAID"
    payload["data"]["update_time"] = 1_732_099_000 + version
    payload["msg_id"] = f"msg-{version}"
    body = orjson.dumps(payload)
    return Delivery(
        "/webhooks/shopee", shopee.delivery_headers(secret, body, callback_url=CALLBACK), body
    )


def _lazada(shop: str, version: int, secret: str) -> Delivery:
    payload = fixture("lazada", "trade_order_unpaid")
    payload["seller_id"] = shop
    payload["data"]["order_status"] = "ready_to_ship" if version == 2 else "unpaid"
    payload["data"]["status_update_time"] = 1_603_698_000 + version
    body = orjson.dumps(payload)
    return Delivery("/webhooks/lazada", lazada.delivery_headers(secret, f"lz-{shop}", body), body)


def _tiktok(shop: str, version: int, secret: str) -> Delivery:
    payload = fixture("tiktok", "order_status_awaiting_shipment")
    payload["shop_id"] = shop
    payload["tts_notification_id"] = f"{shop}-{version}"
    payload["data"]["order_status"] = "AWAITING_SHIPMENT" if version == 2 else "UNPAID"
    payload["data"]["update_time"] = 1_644_413_000 + version
    body = orjson.dumps(payload)
    return Delivery(
        "/webhooks/tiktok", tiktok.delivery_headers(secret, body, app_key=f"tt-{shop}"), body
    )


def _digits() -> str:
    return str(uuid.uuid4().int % 10**12)


CASES = {
    "woocommerce": lambda: Case(
        "woocommerce", f"{uuid.uuid4().hex[:8]}.example.com", "727", _woo, "paid"
    ),
    "shopee": lambda: Case("shopee", _digits(), "241120K7QXP3N5", _shopee, "paid", empty_ack=True),
    "lazada": lambda: Case("lazada", _digits(), "260422900198363", _lazada, "paid"),
    "tiktok": lambda: Case(
        "tiktok", _digits(), "576486316948490001", _tiktok, "paid", empty_ack=True
    ),
}


async def _register(store: ChannelStore, case: Case) -> None:
    """The channel (and app) an operator would add; the shop's secret is mid-rotation."""
    if case.platform == "woocommerce":
        await store.add(Channel(case.platform, case.shop, Secret(OLD_SECRET)))
        assert await store.rotate(case.platform, case.shop, Secret(SECRET))
        return
    key = {"shopee": "partner-1", "lazada": f"lz-{case.shop}", "tiktok": f"tt-{case.shop}"}
    app = AppCredential(
        case.platform,
        key[case.platform],
        Secret(OLD_SECRET),
        callback_url=CALLBACK if case.platform == "shopee" else None,
    )
    await store.add_app(app, replace=True)
    assert await store.rotate_app(case.platform, key[case.platform], Secret(SECRET))
    await store.add(Channel(case.platform, case.shop, app_key=key[case.platform]))


Post = Callable[[Delivery], Awaitable[tuple[int, bytes]]]


@pytest.fixture
def post(ingress: TestClient[Any, Any]) -> Post:
    async def _post(delivery: Delivery) -> tuple[int, bytes]:
        resp = await ingress.post(delivery.path, data=delivery.body, headers=delivery.headers)
        return resp.status, await resp.read()

    return _post


@pytest.mark.parametrize("name", sorted(CASES))
async def test_platform_webhooks_end_as_rows_with_duplicates_and_stale_versions_absorbed(
    name: str, post: Post, worker: WorkerProcess, resources: Resources
) -> None:
    case = CASES[name]()
    await _register(ChannelStore(resources.pool), case)
    newer = case.deliver(case.shop, 2, SECRET)
    status, body = await post(newer)
    assert status == 200, body
    assert (body == b"") is case.empty_ack
    # The same delivery re-sent by the platform, signed with the secret being rotated out.
    assert (await post(case.deliver(case.shop, 2, OLD_SECRET)))[0] == 200
    assert (await post(case.deliver(case.shop, 1, SECRET)))[0] == 200  # an older version
    # A wrong signature is refused and never stored.
    forged = case.deliver(case.shop, 2, "not-the-secret-at-all")
    assert (await post(forged))[0] == 401

    async def audited() -> list[str]:
        rows = await resources.pool.fetch(
            "SELECT status FROM webhook_events WHERE platform = $1 AND shop_id = $2 "
            "ORDER BY status",
            case.platform,
            case.shop,
        )
        return [r["status"] for r in rows]

    async def settled() -> bool:
        return len(await audited()) == 2

    await eventually(settled, what=f"{name} audit rows", worker=worker)
    # Two distinct deliveries: the re-send of the newer one was deduplicated.
    assert await audited() == ["COMPLETED", "STALE"]
    order = await resources.pool.fetchrow(
        "SELECT * FROM orders WHERE platform = $1 AND shop_id = $2", case.platform, case.shop
    )
    assert (order["external_id"], order["status"]) == (case.order_id, case.newer_status)
    events = await resources.pool.fetchval(
        "SELECT count(*) FROM commerce_events WHERE platform = $1 AND shop_id = $2",
        case.platform,
        case.shop,
    )
    assert events == 2  # the stale version is still appended to the event log
