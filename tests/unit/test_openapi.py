"""The published OpenAPI document (schemas/openapi.json) is valid and tells the truth about the app.

A representative request for every documented status runs through the real app (fake Postgres
pool and Kafka producer); each answer must be listed for its operation, its JSON body must
validate against the documented schema, and documented required headers must be present.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from aiokafka.errors import KafkaConnectionError
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from pipeline.ingress import create_web_app
from pipeline.platforms import lazada, registry, shopee, shopify, tiktok, woocommerce
from pipeline.settings import Settings
from tests.unit.test_ingress_hostile import (
    BODY,
    HOSTILE_STATUSES,
    LIMIT,
    OPENAPI,
    SETTINGS,
    SHOPIFY_HEADERS,
    UNKNOWN_PLATFORM_PATH,
    UNKNOWN_PLATFORM_TAIL_PATH,
    WEBHOOK_PATH,
    WEBHOOK_TAIL_PATH,
    Answer,
    FakePool,
    FakeProducer,
    FakeResources,
    check_documented,
    documented_statuses,
    load_openapi,
    operation,
    request,
    resolve,
    serve,
    signed_headers,
)
from tests.unit.test_ingress_platforms import (
    PLATFORMS,
    Platform,
    register_all,
    resources,
    with_field,
)

OPENAPI_ROUTE = "/openapi.json"
GENERIC_PATHS = (UNKNOWN_PLATFORM_PATH, UNKNOWN_PLATFORM_TAIL_PATH)


def platform_paths(name: str) -> tuple[str, str]:
    """A platform's two documented operations: its path and any path below it."""
    return f"/webhooks/{name}", f"/webhooks/{name}/{{tail}}"


CONCRETE_PATHS = tuple(path for name in PLATFORMS for path in platform_paths(name))


@pytest.fixture(autouse=True)
def all_platforms(monkeypatch: pytest.MonkeyPatch) -> None:
    register_all(monkeypatch)


def test_document_is_valid_openapi_3_1() -> None:
    doc = load_openapi()
    validate(doc)  # raises with the first violation
    assert doc["openapi"].startswith("3.1.")


def test_every_schema_in_the_document_is_valid_json_schema() -> None:
    schemas: list[dict[str, Any]] = list(OPENAPI["components"]["schemas"].values())
    for parameter in OPENAPI["components"]["parameters"].values():
        schemas.append(parameter["schema"])
    for header in OPENAPI["components"]["headers"].values():
        schemas.append(header["schema"])
    for schema in schemas:
        Draft202012Validator.check_schema(schema)


def test_every_reference_resolves() -> None:
    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                resolve(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(OPENAPI)


def _app_routes(app: web.Application) -> set[tuple[str, str]]:
    routes = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue  # aiohttp adds HEAD to every GET
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter", "")
        routes.add((route.method.lower(), path.replace("{tail:.*}", "{tail}")))
    return routes


def test_documented_operations_are_exactly_the_app_routes() -> None:
    """The app routes two templates; the document splits them into one operation pair per
    platform it serves, and keeps the templates for the platforms it does not know."""
    app = create_web_app(SETTINGS, resources=FakeResources())  # type: ignore[arg-type]
    served = _app_routes(app)
    documented = {(m, p) for p, ops in OPENAPI["paths"].items() for m in ops}
    if ("get", OPENAPI_ROUTE) not in served:
        documented.discard(("get", OPENAPI_ROUTE))  # not served yet: see the skipped test below
    concrete = {("post", path) for path in CONCRETE_PATHS}
    assert concrete <= documented
    assert served == documented - concrete
    webhook_paths = {p for p in OPENAPI["paths"] if p.startswith("/webhooks/")}
    assert webhook_paths == set(CONCRETE_PATHS) | set(GENERIC_PATHS)


def test_every_served_platform_is_documented_and_no_other() -> None:
    assert set(registry.ADAPTERS) == set(PLATFORMS)
    platform = resolve({"$ref": "#/components/parameters/Platform"})
    for name in PLATFORMS:
        assert f"`{name}`" in platform["description"]
    assert "etsy" not in registry.ADAPTERS


def _headers_of(path: str) -> dict[str, dict[str, Any]]:
    params = [resolve(p) for p in operation(path, "POST")["parameters"]]
    return {p["name"]: p for p in params if p["in"] == "header"}


def test_documented_shopify_headers_are_the_adapters() -> None:
    for path in (WEBHOOK_PATH, WEBHOOK_TAIL_PATH):
        headers = _headers_of(path)
        assert set(headers) == set(SHOPIFY_HEADERS)
        required = {name for name, p in headers.items() if p["required"]}
        assert required == {
            shopify.HMAC_HEADER,
            shopify.SHOP_HEADER,
            shopify.TOPIC_HEADER,
            shopify.WEBHOOK_ID_HEADER,
        }


@pytest.mark.parametrize("platform", PLATFORMS.values(), ids=PLATFORMS.keys())
def test_documented_headers_are_those_the_platform_sends(platform: Platform) -> None:
    """Exactly the headers the adapter module's builder sends; required only what every
    delivery carries (WooCommerce's ping carries none)."""
    sent = set(platform.delivery()[1]) - {"Content-Type"}
    required = set() if platform.name == "woocommerce" else {platform.signature_header}
    if platform.name == "shopify":
        required |= {shopify.SHOP_HEADER, shopify.TOPIC_HEADER, shopify.WEBHOOK_ID_HEADER}
    for path in platform_paths(platform.name):
        headers = _headers_of(path)
        assert set(headers) == sent, path
        assert {n for n, p in headers.items() if p["required"]} == required, path
        assert platform.signature_header in headers


def test_path_parameters() -> None:
    for name in PLATFORMS:
        bare, tail = platform_paths(name)
        for path, expected in ((bare, set()), (tail, {"tail"})):
            params = [resolve(p) for p in operation(path, "POST").get("parameters", [])]
            assert {p["name"] for p in params if p["in"] == "path"} == expected, path
    for path, expected in zip(GENERIC_PATHS, ({"platform"}, {"platform", "tail"}), strict=True):
        params = [resolve(p) for p in operation(path, "POST")["parameters"]]
        assert {p["name"] for p in params if p["in"] == "path"} == expected


def test_statuses_the_hostile_tests_can_see_are_documented() -> None:
    for path in CONCRETE_PATHS:
        assert documented_statuses(path, "POST") == HOSTILE_STATUSES | {500}, path
    # An unknown platform is refused before anything else runs.
    for path in GENERIC_PATHS:
        assert documented_statuses(path, "POST") == {400, 404}


def test_every_503_documents_retry_after_on_webhooks() -> None:
    for path in CONCRETE_PATHS:
        spec = resolve(operation(path, "POST")["responses"]["503"])
        assert resolve(spec["headers"]["Retry-After"])["required"] is True


@pytest.mark.parametrize("platform", PLATFORMS.values(), ids=PLATFORMS.keys())
def test_the_documented_200_is_empty_exactly_for_empty_ack_platforms(platform: Platform) -> None:
    for path in platform_paths(platform.name):
        spec = resolve(operation(path, "POST")["responses"]["200"])
        assert ("content" not in spec) is platform.adapter().empty_ack, path
        description = operation(path, "POST")["description"]
        assert platform.signature_header in description


# --------------------------------------------------------------------------------------------
# One representative request per documented status
# --------------------------------------------------------------------------------------------

Send = Callable[[TestClient[Any, Any]], Awaitable[Answer]]


@dataclass(frozen=True)
class Case:
    path: str  # the documented path template
    method: str
    status: int
    send: Send
    resources: Callable[[], FakeResources] = FakeResources
    settings: Settings = SETTINGS
    produces: bool | None = None  # None: exactly when the answer is 200


def _post(
    path: str = "/webhooks/shopify",
    body: bytes = BODY,
    *,
    drop: tuple[str, ...] = (),
    **changes: str,
) -> Send:
    headers = signed_headers(body)
    for name in drop:
        del headers[name]
    for name, value in changes.items():
        headers[name.replace("_", "-")] = value

    async def send(client: TestClient[Any, Any]) -> Answer:
        return await request(client, "POST", path, body=body, headers=headers)

    return send


def _get(path: str) -> Send:
    async def send(client: TestClient[Any, Any]) -> Answer:
        return await request(client, "GET", path)

    return send


def _send(path: str, body: bytes, headers: dict[str, str]) -> Send:
    async def send(client: TestClient[Any, Any]) -> Answer:
        return await request(client, "POST", path, body=body, headers=headers)

    return send


def _webhook(
    status: int,
    *,
    platform: str = "shopify",
    resources: Callable[[], FakeResources] = FakeResources,
    body: bytes = BODY,
    drop: tuple[str, ...] = (),
    **changes: str,
) -> dict[str, Case]:
    """The same Shopify request on both of a platform's paths: without and with a tail."""
    send = _post(f"/webhooks/{platform}", body, drop=drop, **changes)
    send_tail = _post(f"/webhooks/{platform}/orders/create", body, drop=drop, **changes)
    documented = platform_paths(platform) if platform in PLATFORMS else GENERIC_PATHS
    return {
        "": Case(documented[0], "POST", status, send, resources),
        "+tail": Case(documented[1], "POST", status, send_tail, resources),
    }


def _platform(
    platform: Platform,
    status: int,
    delivery: tuple[bytes, dict[str, str]] | None = None,
    *,
    res: Callable[[], FakeResources] = resources,
    drop: tuple[str, ...] = (),
    produces: bool | None = None,
    **changes: str,
) -> dict[str, Case]:
    """One delivery (a genuine one unless given) on both of a platform's documented paths."""
    body, headers = delivery or platform.delivery()
    headers = {k: v for k, v in headers.items() if k not in drop}
    headers |= {name.replace("_", "-"): value for name, value in changes.items()}
    bare, tail = platform_paths(platform.name)
    return {
        "": Case(
            bare,
            "POST",
            status,
            _send(f"/webhooks/{platform.name}", body, headers),
            res,
            produces=produces,
        ),
        "+tail": Case(
            tail,
            "POST",
            status,
            _send(f"/webhooks/{platform.name}/push", body, headers),
            res,
            produces=produces,
        ),
    }


def _kafka_down() -> FakeResources:
    return FakeResources(pool=resources().pool, producer=FakeProducer(error=KafkaConnectionError()))


def _platform_cases(platform: Platform) -> dict[str, dict[str, Case]]:
    """Every documented answer of one platform's operations, from its own deliveries."""
    too_large = (b"{" * (LIMIT + 1), platform.delivery()[1])
    cases = {
        "accepted": _platform(platform, 200),
        "bad-signature": _platform(platform, 401, platform.delivery(secret="wrong-secret")),
        "missing-signature": _platform(platform, 401, drop=(platform.signature_header,)),
        "unknown-shop": _platform(platform, 404, platform.delivery(shop="999001")),
        "missing-shop": _platform(platform, 400, platform.delivery(shop=None)),
        "header-line-too-long": _platform(platform, 400, X_Extra="x" * 9000),
        "too-large": _platform(platform, 413, too_large),
        "compressed": _platform(platform, 415, Content_Encoding="gzip"),
        "kafka-down": _platform(platform, 503, res=_kafka_down),
        "channel-store-down": _platform(
            platform, 503, res=lambda: resources(error=ConnectionResetError("pg gone"))
        ),
        "unexpected-fault": _platform(
            platform, 500, res=lambda: resources(error=RuntimeError("a bug"))
        ),
    }
    return {f"{platform.name}-{name}": variants for name, variants in cases.items()}


def _signed(platform: Platform, body: bytes) -> tuple[bytes, dict[str, str]]:
    """`body` with the headers the platform would send with it (for the platform's shop)."""
    if platform.name == "woocommerce":
        source = f"https://{platform.shop_id}/"
        return body, woocommerce.delivery_headers(
            platform.secret, body, source=source, topic="order.updated"
        )
    if platform.name == "shopee":
        url = platform.callback_url or ""
        return body, shopee.delivery_headers(platform.secret, body, callback_url=url)
    if platform.name == "tiktok":
        return body, tiktok.delivery_headers(platform.secret, body, app_key=platform.app_key or "")
    return body, lazada.delivery_headers(platform.secret, platform.app_key or "", body)


WOOCOMMERCE, SHOPEE, LAZADA, TIKTOK = (
    PLATFORMS[n] for n in ("woocommerce", "shopee", "lazada", "tiktok")
)
PING = (b"webhook_id=42", {"Content-Type": "application/x-www-form-urlencoded"})
NOT_JSON = b"<xml>not json</xml>"

WEBHOOK_CASES: dict[str, dict[str, Case]] = {
    "accepted": _webhook(200),
    "accepted-not-json": _webhook(200, body=b"\xff not json"),
    "accepted-empty-body": _webhook(200, body=b""),
    "missing-shop": _webhook(400, drop=(shopify.SHOP_HEADER,)),
    "bad-topic": _webhook(400, X_Shopify_Topic="orders/create;rm"),
    "missing-webhook-id": _webhook(400, drop=(shopify.WEBHOOK_ID_HEADER,)),
    "header-line-too-long": _webhook(400, X_Shopify_Webhook_Id="w" * 9000),
    "bad-signature": _webhook(401, X_Shopify_Hmac_Sha256=shopify.sign("wrong", BODY)),
    "missing-signature": _webhook(401, drop=(shopify.HMAC_HEADER,)),
    "unknown-platform": _webhook(404, platform="etsy"),
    "unknown-platform-header-line-too-long": _webhook(
        400, platform="etsy", X_Shopify_Webhook_Id="w" * 9000
    ),
    "unknown-platform-case-differs": _webhook(404, platform="Shopee"),
    "unknown-shop": _webhook(404, X_Shopify_Shop_Domain="nobody.myshopify.com"),
    "too-large": _webhook(413, body=b"{" * (LIMIT + 1)),
    "compressed": _webhook(415, Content_Encoding="gzip"),
    "kafka-down": _webhook(
        503,
        resources=lambda: FakeResources(producer=FakeProducer(error=KafkaConnectionError())),
    ),
    "kafka-hangs": _webhook(503, resources=lambda: FakeResources(producer=FakeProducer(hang=True))),
    "channel-store-down": _webhook(
        503, resources=lambda: FakeResources(pool=FakePool(error=ConnectionResetError("pg gone")))
    ),
    "unexpected-fault": _webhook(
        500, resources=lambda: FakeResources(pool=FakePool(error=RuntimeError("a bug")))
    ),
}
for _name, _other in PLATFORMS.items():
    if _name != "shopify":  # Shopify's cases above are finer-grained
        WEBHOOK_CASES |= _platform_cases(_other)
WEBHOOK_CASES |= {
    "woocommerce-ping": _platform(WOOCOMMERCE, 200, PING, produces=False),
    "woocommerce-accepted-not-json": _platform(WOOCOMMERCE, 200, _signed(WOOCOMMERCE, NOT_JSON)),
    "woocommerce-bad-topic": _platform(WOOCOMMERCE, 400, X_WC_Webhook_Topic="order;rm"),
    "shopee-not-json": _platform(SHOPEE, 400, _signed(SHOPEE, NOT_JSON)),
    "shopee-no-code": _platform(
        SHOPEE, 400, _signed(SHOPEE, with_field(SHOPEE.delivery()[0], "code", None))
    ),
    "lazada-no-message-type": _platform(
        LAZADA, 400, _signed(LAZADA, with_field(LAZADA.delivery()[0], "message_type", None))
    ),
    "tiktok-no-notification-id": _platform(
        TIKTOK,
        400,
        _signed(TIKTOK, with_field(TIKTOK.delivery()[0], "tts_notification_id", None)),
    ),
}

CASES: dict[str, Case] = {
    name + variant: case
    for name, variants in WEBHOOK_CASES.items()
    for variant, case in variants.items()
} | {
    "healthz": Case("/healthz", "GET", 200, _get("/healthz")),
    "ready": Case("/readyz", "GET", 200, _get("/readyz")),
    "not-ready": Case(
        "/readyz",
        "GET",
        503,
        _get("/readyz"),
        resources=lambda: FakeResources(producer=FakeProducer(reachable=False)),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_representative_answer_matches_the_document(case: Case) -> None:
    res = case.resources()
    async with serve(case.settings, res) as (client, _):
        answer = await case.send(client)
    assert answer.status == case.status, answer
    check_documented(case.path, case.method, answer)
    if case.method == "POST":
        produces = answer.status == 200 if case.produces is None else case.produces
        assert len(res.producer.sent) == (1 if produces else 0)


def test_every_documented_status_has_a_representative_case() -> None:
    covered = {(c.path, c.method.lower(), c.status) for c in CASES.values()}
    for path, ops in OPENAPI["paths"].items():
        if path == OPENAPI_ROUTE:
            continue  # served by a route of its own, tested below
        for method, op in ops.items():
            for status in op["responses"]:
                assert (path, method, int(status)) in covered, (
                    f"no case for {method} {path} {status}"
                )


async def test_openapi_route_serves_this_document() -> None:
    async with serve() as (client, _):
        answer = await request(client, "GET", OPENAPI_ROUTE)
    assert answer.status == 200
    check_documented(OPENAPI_ROUTE, "GET", answer)
    assert answer.json() == load_openapi()


@pytest.mark.parametrize(
    "answer",
    [
        Answer(418, "application/json", {}, b'{"error": "teapot", "detail": "no"}'),
        Answer(401, "application/json", {}, b'{"error": "bad_request", "detail": "x"}'),
        Answer(401, "text/plain", {}, b"unauthorized"),
        Answer(400, "application/json", {}, b'{"error": "bad_request"}'),
        Answer(400, "application/json", {}, b'{"error": "bad_request", "detail": "x", "x": 1}'),
        Answer(503, "application/json", {}, b'{"error": "unavailable", "detail": "later"}'),
        Answer(
            503,
            "application/json",
            {"Retry-After": "soon"},
            b'{"error": "unavailable", "detail": "x"}',
        ),
        Answer(200, "application/json", {}, b'{"status": "ok", "delivery_id": "d-1"}'),
        Answer(200, "application/json", {}, b'{"status": "accepted", "delivery_id": "a b"}'),
    ],
    ids=lambda a: f"{a.status}-{a.content_type}-{a.body[:30]!r}-{sorted(a.headers)}",
)
def test_the_checker_rejects_answers_the_document_does_not_allow(answer: Answer) -> None:
    with pytest.raises(AssertionError):
        check_documented(WEBHOOK_PATH, "POST", answer)


CONTENT_DELIVERY = b'"delivery_id": "c-' + b"0" * 40 + b'"'


@pytest.mark.parametrize(
    ("path", "answer"),
    [
        # Shopee and TikTok must get an empty 200: a JSON acceptance, or a typed empty body, is not.
        (
            "/webhooks/shopee",
            Answer(200, "application/json", {}, b'{"status": "accepted", "delivery_id": "m1"}'),
        ),
        ("/webhooks/tiktok/{tail}", Answer(200, "text/plain", {"Content-Type": "text/plain"}, b"")),
        ("/webhooks/tiktok", Answer(200, "application/octet-stream", {}, b"ok")),
        # Everyone else answers JSON.
        ("/webhooks/shopify", Answer(200, "application/octet-stream", {}, b"")),
        ("/webhooks/lazada", Answer(200, "application/octet-stream", {}, b"")),
        # Only WooCommerce has a ping; content-derived ids have one shape.
        ("/webhooks/lazada", Answer(200, "application/json", {}, b'{"status": "ok"}')),
        ("/webhooks/shopify", Answer(200, "application/json", {}, b'{"status": "ok"}')),
        (
            "/webhooks/woocommerce",
            Answer(200, "application/json", {}, b'{"status": "accepted", "delivery_id": "d-1"}'),
        ),
        (
            "/webhooks/woocommerce",
            Answer(200, "application/json", {}, b'{"status": "ok", ' + CONTENT_DELIVERY + b"}"),
        ),
        # An unknown platform is only ever a 404 (or the HTTP layer's 400).
        ("/webhooks/{platform}", Answer(401, "application/json", {}, b'{"error": "unauthorized"}')),
        (
            "/webhooks/{platform}/{tail}",
            Answer(200, "application/json", {}, b'{"status": "accepted", "delivery_id": "x"}'),
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else f"{v.status}-{v.content_type}-{v.body[:20]!r}",
)
def test_the_checker_rejects_platform_answers_the_document_does_not_allow(
    path: str, answer: Answer
) -> None:
    with pytest.raises(AssertionError):
        check_documented(path, "POST", answer)


@pytest.mark.parametrize(
    ("path", "answer"),
    [
        ("/webhooks/shopee", Answer(200, "application/octet-stream", {}, b"")),
        ("/webhooks/woocommerce/{tail}", Answer(200, "application/json", {}, b'{"status":"ok"}')),
        (
            "/webhooks/lazada",
            Answer(200, "application/json", {}, b'{"status":"accepted",' + CONTENT_DELIVERY + b"}"),
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else f"{v.status}-{v.body[:20]!r}",
)
def test_the_checker_accepts_the_documented_platform_answers(path: str, answer: Answer) -> None:
    check_documented(path, "POST", answer)
