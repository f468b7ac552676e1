"""The webhook ingress: verify the raw bytes, produce to Kafka, answer 200 once Kafka has it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib.resources import files as resources_files

import orjson
from aiohttp import web
from aiokafka.errors import KafkaError

from pipeline import envelope as envelopes
from pipeline.channels import ChannelCache, ChannelStore
from pipeline.envelope import Envelope
from pipeline.errors import is_transient
from pipeline.kafka import topic_names
from pipeline.platforms.base import Rejection
from pipeline.platforms.registry import adapter_for
from pipeline.resources import Resources, open_resources
from pipeline.settings import Settings

log = logging.getLogger("pipeline.ingress")


class InFlight:
    """Bytes handed to the producer and not yet acknowledged or failed: the ingress's memory bound.

    A send we stop waiting for can stay in the producer's buffer until Kafka answers or it
    expires, so bytes come back when the send itself completes, not when we give up on it.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.used = 0

    def take(self, size: int) -> bool:
        if self.used + size > self.max_bytes and self.used > 0:
            return False
        self.used += size
        return True

    def give(self, size: int) -> None:
        self.used -= size


SETTINGS = web.AppKey("settings", Settings)
IN_FLIGHT = web.AppKey("in_flight", InFlight)
RESOURCES = web.AppKey("resources", Resources)
CHANNELS = web.AppKey("channels", ChannelCache)
RETRY_AFTER_S = "5"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, code: str, detail: str, **headers: str) -> web.Response:
    body = orjson.dumps({"error": code, "detail": detail})
    return web.Response(
        status=status, body=body, content_type="application/json", headers=headers or None
    )


_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    413: "payload_too_large",
    415: "unsupported_encoding",
}


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every refusal is a JSON 4xx with a reason; an unexpected fault is logged, never leaked."""
    try:
        return await handler(request)
    except Rejection as rej:
        return _error(rej.status, _CODES.get(rej.status, "rejected"), rej.reason)
    except web.HTTPRequestEntityTooLarge:
        return _error(413, "payload_too_large", "body exceeds the size limit")
    except web.HTTPException as exc:
        return _error(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
    except Exception:
        log.exception("unexpected ingress fault", extra={"path": request.path})
        return _error(500, "internal_error", "unexpected fault; the delivery was not accepted")


async def receive_webhook(request: web.Request) -> web.Response:
    """POST /webhooks/{platform}[/anything]: one delivery from a marketplace."""
    started = time.perf_counter()
    settings = request.app[SETTINGS]
    platform = request.match_info["platform"]
    adapter = adapter_for(platform)
    if adapter is None:
        raise Rejection(404, f"unknown platform {platform[:40]!r}")
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        # Marketplaces sign the body they send uncompressed; verifying anything but the bytes
        # on the wire would mean trusting a decompressor with unauthenticated input.
        raise Rejection(415, "Content-Encoding is not supported; send the body uncompressed")
    if (request.content_length or 0) > settings.ingress_max_body_bytes:
        raise Rejection(413, f"body exceeds {settings.ingress_max_body_bytes} bytes")
    body = await request.read()
    headers = request.headers
    if adapter.handshake(headers, body):
        log.info("handshake answered", extra={"platform": platform})
        return web.json_response({"status": "ok"})
    shop_id = adapter.shop_of(headers, body)
    try:
        channel = await request.app[CHANNELS].get(platform, shop_id)
    except Exception as exc:
        if not is_transient(exc):
            raise
        log.warning("channel lookup failed", extra={"platform": platform, "error": repr(exc)})
        return _error(
            503, "unavailable", "channel store unavailable", **{"Retry-After": RETRY_AFTER_S}
        )
    if channel is None:
        raise Rejection(404, f"unknown {platform} shop")
    if not adapter.verify(channel.credentials, headers, body):
        log.info("signature rejected", extra={"platform": platform, "shop_id": shop_id})
        raise Rejection(401, "signature missing or invalid")
    info = adapter.describe(shop_id, headers, body)
    item = Envelope(
        platform=platform,
        shop_id=shop_id,
        topic=info.topic,
        delivery_id=info.delivery_id,
        received_at_ms=int(time.time() * 1000),
        entity_key=info.entity_key,
        body=body,
        event_id=info.event_id,
        api_version=info.api_version,
        triggered_at=info.triggered_at,
        malformed=info.malformed,
    )
    fields = {
        "delivery_id": item.delivery_id,
        "platform": platform,
        "shop_id": shop_id,
        "topic": item.topic,
    }
    value = envelopes.encode(item)
    budget = request.app[IN_FLIGHT]
    if not budget.take(len(value)):
        log.warning("in-flight budget exhausted", extra={**fields, "in_flight_bytes": budget.used})
        return _error(
            503,
            "unavailable",
            "too many deliveries waiting for Kafka",
            **{"Retry-After": RETRY_AFTER_S},
        )
    try:
        await _produce(request.app, item, value, budget, settings.ingress_produce_timeout_s)
    except (KafkaError, TimeoutError) as exc:
        log.warning("kafka did not acknowledge", extra={**fields, "error": repr(exc)})
        return _error(
            503,
            "unavailable",
            "event log unavailable, retry later",
            **{"Retry-After": RETRY_AFTER_S},
        )
    log.info(
        "webhook accepted",
        extra={
            **fields,
            "malformed": item.malformed,
            "ms": round((time.perf_counter() - started) * 1000, 2),
        },
    )
    if adapter.empty_ack:
        return web.Response(status=200)
    return web.json_response({"status": "accepted", "delivery_id": item.delivery_id})


async def _produce(
    app: web.Application, item: Envelope, value: bytes, budget: InFlight, timeout_s: float
) -> None:
    """Produce and wait for the acknowledgement; the budget is returned when the send ends."""
    producer = app[RESOURCES].producer
    topic = topic_names(app[SETTINGS]).raw
    deadline = asyncio.get_running_loop().time() + timeout_s
    try:
        sent = await asyncio.wait_for(
            producer.send(topic, value, key=item.entity_key.encode("utf-8")), timeout_s
        )
    except BaseException:
        budget.give(len(value))  # never reached the producer's buffer
        raise
    sent.add_done_callback(lambda _: budget.give(len(value)))
    remaining = max(deadline - asyncio.get_running_loop().time(), 0.001)
    await asyncio.wait_for(asyncio.shield(sent), remaining)


async def expect_continue(request: web.Request) -> web.StreamResponse | None:
    """`Expect: 100-continue` is honoured; any other expectation is a JSON 400, not a 417."""
    if request.headers.get("Expect", "").strip().lower() != "100-continue":
        return _error(400, "bad_request", "unsupported Expect header")
    if request.version >= (1, 1):  # as aiohttp's own handler: the interim answer, uncounted
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0
    return None


async def openapi(request: web.Request) -> web.Response:
    """The ingress's OpenAPI 3.1 document."""
    return web.Response(body=_OPENAPI, content_type="application/json")


_OPENAPI = resources_files("schemas").joinpath("openapi.json").read_bytes()


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: Kafka answers a metadata request within two seconds."""
    producer = request.app[RESOURCES].producer
    if not producer.connected:
        return _error(503, "not_ready", "kafka unreachable")
    if not producer.healthy:
        return _error(503, "not_ready", "replacing a Kafka producer that could not recover")
    try:
        ok = await asyncio.wait_for(producer.client.fetch_all_metadata(), 2.0) is not None
    except (KafkaError, TimeoutError, OSError):
        ok = False
    if not ok:
        return _error(503, "not_ready", "kafka unreachable")
    return web.json_response({"status": "ready"})


def create_web_app(settings: Settings, resources: Resources | None = None) -> web.Application:
    """The ingress app; opens its own resources on startup unless given open ones (tests, bench)."""
    app = web.Application(
        client_max_size=settings.ingress_max_body_bytes,
        middlewares=[errors_middleware],
        # Never inflate: the body is verified and kept exactly as sent (415 if it is encoded).
        handler_args={"auto_decompress": False},
    )
    app[SETTINGS] = settings
    app[IN_FLIGHT] = InFlight(settings.ingress_max_in_flight_bytes)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        owned = resources is None
        res = (
            await open_resources(settings, wait_for_kafka=False) if resources is None else resources
        )
        app[RESOURCES] = res
        app[CHANNELS] = ChannelCache(ChannelStore(res.pool), settings.channel_cache_ttl_s)
        yield
        if owned:
            await res.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/webhooks/{platform}", receive_webhook, expect_handler=expect_continue)
    app.router.add_post(
        "/webhooks/{platform}/{tail:.*}", receive_webhook, expect_handler=expect_continue
    )
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app
