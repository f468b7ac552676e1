from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from aiokafka.errors import KafkaTimeoutError

from pipeline import envelope as envelopes
from pipeline.ingress import create_web_app
from pipeline.platforms.shopify import HMAC_HEADER, SHOP_HEADER
from pipeline.settings import Settings
from tests.unit.factories import SECRET, SHOP, fixture_bytes, shopify_headers

SETTINGS = Settings().with_overrides(ingress_produce_timeout_s=0.2, topic_prefix="t.")
BODY = fixture_bytes("order_paid")


class FakePool:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    async def fetchrow(self, query: str, platform: str, shop_id: str) -> dict[str, Any] | None:
        if self.error is not None:
            raise self.error
        if (platform, shop_id) != ("shopify", SHOP):
            return None
        return {"platform": platform, "shop_id": shop_id, "secret": SECRET, "currency": "USD"}


class FakeProducer:
    healthy = True
    connected = True

    def __init__(self, *, hang: bool = False, error: Exception | None = None) -> None:
        self.hang = hang
        self.error = error
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[None]:
        """Like aiokafka: enqueue, then a future that resolves when Kafka acknowledged."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.error is not None:
            done.set_exception(self.error)
        elif not self.hang:
            self.sent.append((topic, value, key))
            done.set_result(None)
        return done


@dataclass
class FakeResources:
    pool: FakePool = field(default_factory=FakePool)
    producer: FakeProducer = field(default_factory=FakeProducer)


@asynccontextmanager
async def serve(
    settings: Settings = SETTINGS, resources: FakeResources | None = None
) -> AsyncIterator[tuple[TestClient[Any, Any], FakeResources]]:
    res = resources or FakeResources()
    app = create_web_app(settings, resources=res)  # type: ignore[arg-type]
    async with TestClient(TestServer(app)) as client:
        yield client, res


async def post(
    client: TestClient[Any, Any], body: bytes = BODY, path: str = "/webhooks/shopify", **kw: Any
) -> ClientResponse:
    headers = shopify_headers(body)
    headers.update(kw.pop("headers", {}))
    return await client.post(path, data=body, headers=headers, **kw)


async def assert_error(resp: ClientResponse, status: int, code: str) -> dict[str, Any]:
    assert resp.status == status
    assert resp.content_type == "application/json"
    data: dict[str, Any] = await resp.json()
    assert data["error"] == code
    assert data["detail"]
    return data


async def test_valid_delivery_is_produced_once_and_answered_200() -> None:
    async with serve() as (client, res):
        resp = await post(client)
        assert resp.status == 200
        assert (await resp.json())["status"] == "accepted"
    ((topic, _, key),) = res.producer.sent
    assert topic == "t.webhooks.raw"
    assert key == f"shopify:{SHOP}:order:450789469".encode()


async def test_produced_envelope_holds_the_exact_bytes() -> None:
    async with serve() as (client, res):
        await post(client)
    item = envelopes.decode(res.producer.sent[0][1])
    assert item.body == BODY
    assert (item.platform, item.shop_id, item.topic) == ("shopify", SHOP, "orders/create")
    assert item.malformed is False
    assert item.api_version == "2024-01"


async def test_extra_path_segments_are_accepted() -> None:
    async with serve() as (client, res):
        resp = await post(client, path="/webhooks/shopify/orders/create")
        assert resp.status == 200
    assert len(res.producer.sent) == 1


@pytest.mark.parametrize("signature", ["", "bm90IGEgc2lnbmF0dXJl", None])
async def test_bad_or_missing_signature_is_401_and_produces_nothing(signature: str | None) -> None:
    headers = shopify_headers(BODY)
    if signature is None:
        del headers[HMAC_HEADER]
    else:
        headers[HMAC_HEADER] = signature
    async with serve() as (client, res):
        resp = await client.post("/webhooks/shopify", data=BODY, headers=headers)
        await assert_error(resp, 401, "unauthorized")
    assert res.producer.sent == []


async def test_signature_with_another_shops_secret_is_401() -> None:
    headers = shopify_headers(BODY, secret="someone-elses-secret")
    async with serve() as (client, res):
        await assert_error(
            await client.post("/webhooks/shopify", data=BODY, headers=headers), 401, "unauthorized"
        )
    assert res.producer.sent == []


async def test_unknown_shop_is_404() -> None:
    async with serve() as (client, res):
        resp = await post(client, headers={SHOP_HEADER: "other.myshopify.com"})
        data = await assert_error(resp, 404, "not_found")
    assert "shop" in data["detail"]
    assert res.producer.sent == []


async def test_unknown_platform_is_404() -> None:
    async with serve() as (client, res):
        data = await assert_error(await post(client, path="/webhooks/etsy"), 404, "not_found")
    assert "etsy" in data["detail"]
    assert res.producer.sent == []


async def test_body_over_the_limit_is_413() -> None:
    settings = SETTINGS.with_overrides(ingress_max_body_bytes=64)
    async with serve(settings) as (client, res):
        await assert_error(await post(client), 413, "payload_too_large")
    assert res.producer.sent == []


async def test_chunked_body_over_the_limit_is_413() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * 32

    settings = SETTINGS.with_overrides(ingress_max_body_bytes=64)
    async with serve(settings) as (client, res):
        resp = await client.post("/webhooks/shopify", data=chunks(), headers=shopify_headers(BODY))
        await assert_error(resp, 413, "payload_too_large")
    assert res.producer.sent == []


async def test_missing_shop_header_is_400() -> None:
    headers = shopify_headers(BODY)
    del headers[SHOP_HEADER]
    async with serve() as (client, _):
        resp = await client.post("/webhooks/shopify", data=BODY, headers=headers)
        data = await assert_error(resp, 400, "bad_request")
    assert SHOP_HEADER in data["detail"]


async def test_odd_topic_header_after_a_valid_signature_is_400() -> None:
    async with serve() as (client, res):
        resp = await post(client, headers={"X-Shopify-Topic": "orders/create;rm"})
        await assert_error(resp, 400, "bad_request")
    assert res.producer.sent == []


async def test_valid_signature_on_non_json_body_is_accepted_as_malformed() -> None:
    body = b"<xml>definitely not json</xml>"
    async with serve() as (client, res):
        assert (await post(client, body=body)).status == 200
    item = envelopes.decode(res.producer.sent[0][1])
    assert item.malformed is True
    assert item.body == body


async def test_producer_that_hangs_gives_503_with_retry_after() -> None:
    async with serve(resources=FakeResources(producer=FakeProducer(hang=True))) as (client, _):
        resp = await post(client)
        await assert_error(resp, 503, "unavailable")
    assert resp.headers["Retry-After"] == "5"


async def test_kafka_error_gives_503() -> None:
    producer = FakeProducer(error=KafkaTimeoutError())
    async with serve(resources=FakeResources(producer=producer)) as (client, _):
        resp = await post(client)
        await assert_error(resp, 503, "unavailable")
    assert "Retry-After" in resp.headers


async def test_channel_store_outage_gives_503() -> None:
    pool = FakePool(error=ConnectionRefusedError("postgres down"))
    async with serve(resources=FakeResources(pool=pool)) as (client, res):
        resp = await post(client)
        await assert_error(resp, 503, "unavailable")
    assert resp.headers["Retry-After"] == "5"
    assert res.producer.sent == []


async def test_wrong_method_and_unknown_path_answer_json() -> None:
    async with serve() as (client, _):
        await assert_error(await client.get("/webhooks/shopify"), 405, "method_not_allowed")
        await assert_error(await client.get("/nowhere"), 404, "not_found")


async def test_unexpected_fault_is_a_json_500() -> None:
    pool = FakePool(error=RuntimeError("boom"))
    async with serve(resources=FakeResources(pool=pool)) as (client, _):
        resp = await post(client)
        assert (resp.status, resp.content_type) == (500, "application/json")
        data = await resp.json()
    assert {"error", "detail"} <= set(data)
    assert "boom" not in data["detail"]


async def test_healthz_is_200() -> None:
    async with serve() as (client, _):
        resp = await client.get("/healthz")
        assert resp.status == 200
        assert await resp.json() == {"status": "ok"}


async def test_bytes_waiting_for_kafka_are_bounded() -> None:
    # One hung delivery fills a budget the size of one envelope; the next is refused at once.
    settings = SETTINGS.with_overrides(ingress_max_in_flight_bytes=len(BODY) + 1)
    resources = FakeResources(producer=FakeProducer(hang=True))
    async with serve(settings, resources) as (client, _):
        first = await post(client)
        await assert_error(first, 503, "unavailable")
        second = await post(client)
        detail = await assert_error(second, 503, "unavailable")
    assert "too many deliveries waiting" in detail["detail"]


async def test_the_budget_comes_back_when_kafka_answers() -> None:
    settings = SETTINGS.with_overrides(ingress_max_in_flight_bytes=len(BODY) + 1)
    async with serve(settings) as (client, res):
        assert (await post(client)).status == 200
        assert (await post(client)).status == 200
    assert len(res.producer.sent) == 2
