"""Hostile input against the ingress: documented answers only, no crash, no produce unless signed.

The property tests drive the real aiohttp app (fake Postgres pool and Kafka producer) through a
test client that lives for one test function. Hypothesis calls a sync property once per example,
so each test owns an `asyncio.Runner` and runs one request per example on that runner's loop; no
event loop from pytest-asyncio is involved.

This module also holds the helpers the OpenAPI and log-redaction tests share (fakes, clients,
the published OpenAPI document and its response schemas).
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from pipeline import envelope as envelopes
from pipeline.ingress import create_web_app
from pipeline.platforms import shopify
from pipeline.settings import Settings
from tests.unit.factories import SECRET, SHOP, fixture_bytes, shopify_headers

# --------------------------------------------------------------------------------------------
# Shared harness: fakes, a client per test, answers
# --------------------------------------------------------------------------------------------

LIMIT = 4096
SETTINGS = Settings().with_overrides(
    ingress_max_body_bytes=LIMIT, ingress_produce_timeout_s=0.2, topic_prefix="t."
)
OTHER_SHOP = "second-shop.myshopify.com"
OTHER_SECRET = "shpss_fedcba9876543210"
SHOPS: dict[str, str] = {SHOP: SECRET, OTHER_SHOP: OTHER_SECRET}
BODY = fixture_bytes("order_cancelled")  # a real order, well under LIMIT
WEBHOOK_ID = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
REQUIRED_HEADERS = (
    shopify.HMAC_HEADER,
    shopify.SHOP_HEADER,
    shopify.TOPIC_HEADER,
    shopify.WEBHOOK_ID_HEADER,
)
OPTIONAL_HEADERS = (
    shopify.EVENT_ID_HEADER,
    shopify.API_VERSION_HEADER,
    shopify.TRIGGERED_AT_HEADER,
)
SHOPIFY_HEADERS = REQUIRED_HEADERS + OPTIONAL_HEADERS


def signed_headers(
    body: bytes, *, secret: str = SECRET, shop: str = SHOP, topic: str = "orders/cancelled"
) -> dict[str, str]:
    """Headers of a genuine Shopify delivery of `body`."""
    return shopify_headers(body, secret=secret, shop=shop, topic=topic, webhook_id=WEBHOOK_ID)


class FakePool:
    """The channels table: SHOPS on shopify, or an outage."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.lookups = 0

    async def fetchrow(self, query: str, platform: str, shop_id: str) -> dict[str, Any] | None:
        self.lookups += 1
        if self.error is not None:
            raise self.error
        secret = SHOPS.get(shop_id) if platform == "shopify" else None
        if secret is None:
            return None
        return {"platform": platform, "shop_id": shop_id, "secret": secret, "currency": "USD"}


class FakeKafkaClient:
    def __init__(self, reachable: bool = True) -> None:
        self.reachable = reachable

    async def fetch_all_metadata(self) -> object:
        if not self.reachable:
            raise KafkaConnectionError("no broker")
        return object()


class FakeProducer:
    """Records every delivery Kafka acknowledged; can fail (at once or on the ack) or hang.

    Offers both aiokafka calls: `send` (enqueue, then a future for the acknowledgement) and
    `send_and_wait`.
    """

    healthy = True
    connected = True

    def __init__(
        self,
        *,
        hang: bool = False,
        error: Exception | None = None,
        raise_on_send: bool = False,
        reachable: bool = True,
    ) -> None:
        self.hang = hang
        self.error = error
        self.raise_on_send = raise_on_send
        self.client = FakeKafkaClient(reachable)
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.attempts = 0

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[None]:
        self.attempts += 1
        if self.error is not None and self.raise_on_send:
            raise self.error
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.error is not None:
            ack.set_exception(self.error)
        elif not self.hang:
            self.sent.append((topic, value, key))
            ack.set_result(None)
        return ack

    async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> None:
        await (await self.send(topic, value, key))


@dataclass
class FakeResources:
    pool: FakePool = field(default_factory=FakePool)
    producer: FakeProducer = field(default_factory=FakeProducer)


@dataclass(frozen=True)
class Answer:
    """What the ingress answered, read completely."""

    status: int
    content_type: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


async def start_client(
    settings: Settings = SETTINGS, resources: FakeResources | None = None
) -> TestClient[Any, Any]:
    app = create_web_app(settings, resources=resources or FakeResources())  # type: ignore[arg-type]
    # A fresh connection per request: after some refusals the server closes the connection,
    # and a reused keep-alive connection would turn that into a client-side error.
    client: TestClient[Any, Any] = TestClient(
        TestServer(app), connector=aiohttp.TCPConnector(force_close=True)
    )
    await client.start_server()
    return client


@asynccontextmanager
async def serve(
    settings: Settings = SETTINGS, resources: FakeResources | None = None
) -> AsyncIterator[tuple[TestClient[Any, Any], FakeResources]]:
    res = resources or FakeResources()
    client = await start_client(settings, res)
    try:
        yield client, res
    finally:
        await client.close()


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 1000):
        yield body[start : start + 1000]
    if not body:
        yield b""


async def request(
    client: TestClient[Any, Any],
    method: str,
    path: str,
    *,
    body: bytes = b"",
    headers: list[tuple[str, str]] | Mapping[str, str] | None = None,
    chunked: bool = False,
) -> Answer:
    """Send through aiohttp's client (valid HTTP, any header text that is printable)."""
    data: Any = _chunks(body) if chunked else body
    resp = await client.request(method, path, data=data, headers=headers)
    content = await resp.read()
    return Answer(resp.status, resp.content_type, resp.headers, content)


async def raw_request(
    client: TestClient[Any, Any],
    path: bytes,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    *,
    method: bytes = b"POST",
) -> Answer:
    """Send bytes the client would refuse to (non-UTF-8 header values, control bytes)."""
    server = client.server
    assert server.host is not None
    assert server.port is not None
    reader, writer = await asyncio.open_connection(server.host, server.port)
    head = [method + b" " + path + b" HTTP/1.1", b"Host: ingress", b"Connection: close"]
    head.append(b"Content-Length: " + str(len(body)).encode())
    head += [name + b": " + value for name, value in headers]
    writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    head_bytes, _, content = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head_bytes.decode("latin-1").split("\r\n")
    answer_headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        answer_headers[name.strip().title()] = value.strip()
    content_type = answer_headers.get("Content-Type", "").split(";")[0].strip()
    return Answer(int(status_line.split()[1]), content_type, answer_headers, content)


class LiveApp:
    """The app behind a test client on a private event loop, driven from sync code."""

    def __init__(self, runner: asyncio.Runner, client: TestClient[Any, Any], res: FakeResources):
        self.runner = runner
        self.client = client
        self.resources = res

    def send(self, req: Hostile) -> Answer:
        self.resources.producer.sent.clear()
        if req.needs_raw_bytes:
            raw_headers = [
                (k.encode("utf-8"), v.encode("utf-8", "surrogateescape")) for k, v in req.headers
            ]
            return self.runner.run(
                raw_request(self.client, req.path.encode("ascii"), raw_headers, req.body)
            )
        return self.runner.run(
            request(
                self.client,
                "POST",
                req.path,
                body=req.body,
                headers=req.headers,
                chunked=req.chunked,
            )
        )


@contextmanager
def live_app(
    settings: Settings = SETTINGS, resources: FakeResources | None = None
) -> Iterator[LiveApp]:
    res = resources or FakeResources()
    with asyncio.Runner() as runner:
        client = runner.run(start_client(settings, res))
        try:
            yield LiveApp(runner, client, res)
        finally:
            runner.run(client.close())


# --------------------------------------------------------------------------------------------
# Shared: the published OpenAPI document and checks of answers against it
# --------------------------------------------------------------------------------------------

OPENAPI_FILE = Path(__file__).resolve().parents[2] / "schemas" / "openapi.json"
OPENAPI_URI = "urn:pipeline:ingress-openapi"
# Each known platform has operations of its own; the templated ones are for unknown platforms.
WEBHOOK_PATH = "/webhooks/shopify"
WEBHOOK_TAIL_PATH = "/webhooks/shopify/{tail}"
UNKNOWN_PLATFORM_PATH = "/webhooks/{platform}"
UNKNOWN_PLATFORM_TAIL_PATH = "/webhooks/{platform}/{tail}"


def load_openapi() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(OPENAPI_FILE.read_text(encoding="utf-8"))
    return doc


OPENAPI = load_openapi()


def resolve(node: dict[str, Any], doc: dict[str, Any] = OPENAPI) -> dict[str, Any]:
    """Follow local `$ref`s (`#/components/...`) until a concrete object."""
    seen = 0
    while "$ref" in node:
        ref: str = node["$ref"]
        assert ref.startswith("#/"), f"only local references are used: {ref}"
        target: Any = doc
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
        seen += 1
        assert seen < 20, f"reference loop at {ref}"
    return node


def operation(path: str, method: str, doc: dict[str, Any] = OPENAPI) -> dict[str, Any]:
    op: dict[str, Any] = doc["paths"][path][method.lower()]
    return op


def documented_statuses(path: str, method: str, doc: dict[str, Any] = OPENAPI) -> set[int]:
    return {int(code) for code in operation(path, method, doc)["responses"]}


def webhook_operation(segment: str, tail: str | None, doc: dict[str, Any] = OPENAPI) -> str:
    """The documented path a POST to `/webhooks/<segment>[/<tail>]` answers under: the
    platform's own operation when the (decoded) segment names a documented platform."""
    concrete = f"/webhooks/{unquote(segment)}"
    if concrete in doc["paths"]:
        return concrete if tail is None else concrete + "/{tail}"
    return UNKNOWN_PLATFORM_PATH if tail is None else UNKNOWN_PLATFORM_TAIL_PATH


def _absolute_refs(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {
            k: (OPENAPI_URI + v if k == "$ref" and v.startswith("#") else _absolute_refs(v))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_absolute_refs(v) for v in schema]
    return schema


def schema_validator(schema: dict[str, Any], doc: dict[str, Any] = OPENAPI) -> Any:
    """A JSON Schema 2020-12 validator for a schema taken from the document."""
    registry: Registry[Any] = Registry().with_resource(
        OPENAPI_URI, DRAFT202012.create_resource(doc)
    )
    return Draft202012Validator(_absolute_refs(schema), registry=registry)


def check_documented(path: str, method: str, answer: Answer, doc: dict[str, Any] = OPENAPI) -> None:
    """The status is listed for the operation; body and required headers match the document."""
    responses = operation(path, method, doc)["responses"]
    assert str(answer.status) in responses, (
        f"{method} {path} answered {answer.status}, not documented "
        f"(documented: {sorted(responses)}); body {answer.body[:200]!r}"
    )
    spec = resolve(responses[str(answer.status)], doc)
    if "content" not in spec:  # documented as an empty answer (Shopee's and TikTok's 200)
        assert answer.body == b"", f"{answer.status} documented empty, body {answer.body[:200]!r}"
        assert "Content-Type" not in answer.headers, f"{answer.status} is empty but typed"
    else:
        content = spec["content"]
        assert answer.content_type in content, (
            f"{answer.status} answered {answer.content_type!r}, documented {sorted(content)}"
        )
        schema = content[answer.content_type].get("schema")
        if answer.content_type == "application/json" and schema is not None:
            errors = list(schema_validator(schema, doc).iter_errors(answer.json()))
            assert not errors, f"{answer.status} body {answer.body[:200]!r}: {errors[0].message}"
    for name, header in spec.get("headers", {}).items():
        header = resolve(header, doc)
        if header.get("required"):
            assert name in answer.headers, f"{answer.status} lacks the {name} header"
        if name in answer.headers and "schema" in header:
            errors = list(schema_validator(header["schema"], doc).iter_errors(answer.headers[name]))
            assert not errors, f"{name}: {answer.headers[name]!r}: {errors[0].message}"


def assert_json_error(answer: Answer) -> dict[str, Any]:
    assert answer.content_type == "application/json", (answer.status, answer.body[:200])
    data = answer.json()
    assert isinstance(data, dict)
    assert set(data) == {"error", "detail"}, data
    assert isinstance(data["error"], str)
    assert data["error"]
    assert isinstance(data["detail"], str)
    assert data["detail"]
    return data


# --------------------------------------------------------------------------------------------
# Hostile requests
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hostile:
    """One request: path segment as sent (maybe percent-encoded), header pairs in order, body."""

    segment: str
    tail: str | None
    headers: list[tuple[str, str]]
    body: bytes
    chunked: bool = False

    @property
    def path(self) -> str:
        base = f"/webhooks/{self.segment}"
        return base if self.tail is None else f"{base}/{self.tail}"

    @property
    def needs_raw_bytes(self) -> bool:
        """A header value aiohttp's client refuses: bytes that are not UTF-8 (kept as surrogate
        escapes) or control characters."""
        return any(_has_surrogates(v) or _has_controls(v) for _, v in self.headers)

    def first(self, name: str) -> str | None:
        """The value the server's `headers.get(name)` sees: the first one, case-insensitively."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def validly_signed_for_known_shop(self) -> bool:
        if unquote(self.segment) != "shopify":
            return False
        shop = (self.first(shopify.SHOP_HEADER) or "").strip().lower()
        secret = SHOPS.get(shop)
        given_sig = (self.first(shopify.HMAC_HEADER) or "").strip()
        return secret is not None and given_sig == shopify.sign(secret, self.body)


def _has_surrogates(text: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def _has_controls(text: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, picked in proportion to its weight."""
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(table) - 1).flatmap(lambda i: table[i])


PRINTABLE = st.characters(blacklist_categories=("Cc", "Cs"))
NON_ASCII = st.characters(min_codepoint=0x80, blacklist_categories=("Cc", "Cs"))
TOKEN = st.from_regex(r"[A-Za-z0-9._:/-]{1,200}", fullmatch=True)

# Header values aiohttp's client can send: printable text, possibly non-ASCII, up to a few KiB
# (a header line over 8190 bytes is refused by the HTTP layer; tested separately below).
header_values = st.one_of(
    st.just(""),
    st.text(PRINTABLE, max_size=60),
    st.text(NON_ASCII, min_size=1, max_size=30),
    st.integers(200, 4000).map(lambda n: "a" * n),
    TOKEN,
    st.sampled_from(["orders/create", "orders/create;rm", "../../etc/passwd", "null", "0", " "]),
)

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def _repeat_to(size: int, unit: bytes) -> bytes:
    return (unit * (size // len(unit) + 1))[:size]


bodies = st.one_of(
    st.just(BODY),
    st.just(b""),
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda t: t.encode("utf-8")),
    JSON_VALUES.map(orjson.dumps),
    st.sampled_from(
        [
            b"\xff\xfe\xfd",
            b"\xc3\x28",
            b'{"id": "\xed\xa0\x80"}',
            b"\x80" * 10,
            "café".encode("latin-1"),
            b"\x00" * 64,
            b'{"id": 1',
            b"[]",
            b"null",
        ]
    ),
    # Around the size limit, and well over it.
    st.tuples(st.integers(LIMIT - 3, LIMIT + 3), st.binary(min_size=1, max_size=8)).map(
        lambda t: _repeat_to(*t)
    ),
    st.integers(LIMIT + 1, 4 * LIMIT).map(lambda n: _repeat_to(n, b"{")),
)

platform_segments = weighted(
    (6, st.just("shopify")),
    (
        2,
        st.sampled_from(
            [
                "Shopify",
                "SHOPIFY",
                "etsy",
                "woocommerce",
                "shopify.",
                ".shopify",
                "%73hopify",
                "shop%2Fify",
                "%2F",
                "%2e%2e",
                ".",
                "..",
                "%00",
                "%FF",
                "%C3%A9",
                "shopify%20",
                "shopify;x=1",
                "shopify%3Fa",
                "~",
            ]
        ),
    ),
    (2, st.text(PRINTABLE, min_size=1, max_size=40).map(lambda s: quote(s, safe=""))),
)

tails = st.one_of(
    st.none(),
    st.just("orders/create"),
    st.just(""),
    st.text(PRINTABLE, max_size=40).map(lambda s: quote(s, safe="/")),
)

shops = weighted(
    (6, st.sampled_from([SHOP, OTHER_SHOP, SHOP.upper(), f"  {SHOP}  "])),
    (2, st.from_regex(r"[a-z0-9][a-z0-9.-]{0,40}", fullmatch=True)),
    (2, header_values),
)

content_types = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "application/json; charset=latin-1",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=zzz",
            "application/octet-stream",
            "image/png",
            "*/*",
            "",
        ]
    ),
    st.text(PRINTABLE, max_size=40),
)

# Names of extra headers: anything but those that change HTTP framing or semantics, and those
# aiohttp refuses to see twice (Content-Encoding, Expect and duplicates are tested below).
extra_header_names = st.from_regex(r"X-[A-Za-z0-9-]{1,20}", fullmatch=True) | st.sampled_from(
    ["Accept", "Accept-Language", "Referer", "Cookie", "Authorization", "Origin", "Forwarded"]
)


@st.composite
def signatures(draw: st.DrawFn, body: bytes, secret: str) -> str | None:
    valid = shopify.sign(secret, body)
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    kind = draw(st.integers(0, 15))
    if kind <= 3:
        return valid
    options: list[st.SearchStrategy[str | None]] = [
        st.none(),  # missing
        st.just(""),
        st.binary(min_size=32, max_size=32).map(_b64),  # random, right shape
        st.binary(max_size=64).map(_b64),
        st.integers(0, len(valid) - 1).map(lambda k: valid[:k]),  # truncated
        st.binary(max_size=64).map(lambda other: shopify.sign(secret, other)),  # other body
        st.text(max_size=30).map(lambda wrong: shopify.sign(wrong, body)),  # wrong secret
        st.just(shopify.sign(OTHER_SECRET if secret == SECRET else SECRET, body)),
        st.just(f"  {valid}  "),
        st.just(valid + "é"),
        st.just(valid.lower()),
        st.just(valid + "A"),
        st.just(base64.urlsafe_b64encode(digest).decode()),
        st.just(digest.hex()),
        header_values,
    ]
    return draw(st.one_of(options))


@st.composite
def hostile_requests(draw: st.DrawFn, *, raw_header_bytes: bool = False) -> Hostile:
    body = draw(bodies)
    shop = draw(shops)
    signing_secret = SHOPS.get(shop.strip().lower(), SECRET)
    headers: dict[str, str | None] = dict(signed_headers(body, shop=shop))
    headers[shopify.HMAC_HEADER] = draw(signatures(body, signing_secret))
    for name in SHOPIFY_HEADERS:
        if name in (shopify.HMAC_HEADER, shopify.SHOP_HEADER):
            continue
        action = draw(st.sampled_from(["keep"] * 5 + ["drop", "garbage"]))
        if action == "drop":
            headers[name] = None
        elif action == "garbage":
            headers[name] = draw(header_values)
    pairs = [(k, v) for k, v in headers.items() if v is not None]
    content_type = draw(content_types)
    if content_type is not None:
        pairs.append(("Content-Type", content_type))
    for name, value in draw(st.lists(st.tuples(extra_header_names, header_values), max_size=3)):
        pairs.append((name, value))
    # Duplicated Shopify headers, before or after the original one.
    for name, value, first in draw(
        st.lists(
            st.tuples(st.sampled_from(SHOPIFY_HEADERS), header_values, st.booleans()), max_size=2
        )
    ):
        if first:
            pairs.insert(0, (name, value))
        else:
            pairs.append((name, value))
    if raw_header_bytes:
        # Raw bytes (not UTF-8, control bytes) in one required header, Content-Type or an extra
        # header. The optional Shopify headers are covered by their own test further down.
        target = draw(st.sampled_from([*REQUIRED_HEADERS, "Content-Type", "X-Extra"]))
        original = (Hostile("", None, pairs, b"").first(target) or "").encode()
        high = st.lists(st.integers(0x80, 0xFF), max_size=20).map(bytes)
        raw = draw(
            weighted(
                (3, high.map(lambda b: b or b"\xff")),
                (2, high.map(lambda junk: original + b"\xff" + junk)),
                (1, st.binary(min_size=1, max_size=40)),  # control bytes: the HTTP layer's 400
            ).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"") or b"\xff")
        )
        value = raw.decode("utf-8", "surrogateescape")
        pairs = [(k, v) for k, v in pairs if k.lower() != target.lower()]
        pairs.insert(draw(st.integers(0, len(pairs))), (target, value))
    return Hostile(
        segment=draw(platform_segments),
        tail=draw(tails),
        headers=pairs,
        body=body,
        chunked=draw(st.booleans()) and not raw_header_bytes,
    )


# Every status a hostile request may get; test_openapi checks the document lists each of them.
HOSTILE_STATUSES = {200, 400, 401, 404, 413, 415, 503}

PROPERTY = settings(
    max_examples=200,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the repository
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check_hostile_answer(app: LiveApp, req: Hostile, answer: Answer, *, text_400: bool) -> None:
    """The properties every answer to a hostile POST must have."""
    event(f"status {answer.status}")
    op_path = webhook_operation(req.segment, req.tail)
    assert answer.status != 500, f"500 for input {req!r}: {answer.body[:300]!r}"
    sent = app.resources.producer.sent
    if answer.status == 200:
        assert req.validly_signed_for_known_shop(), f"200 without a valid signature: {req!r}"
        assert len(sent) == 1, f"200 but {len(sent)} produces"
        item = envelopes.decode(sent[0][1])
        assert item.body == req.body
        assert item.shop_id == (req.first(shopify.SHOP_HEADER) or "").strip().lower()
        assert answer.json()["delivery_id"] == item.delivery_id
    else:
        assert sent == [], f"{answer.status} but produced {len(sent)} message(s): {req!r}"
    if text_400 and answer.status == 400 and answer.content_type == "text/plain":
        # Refused by aiohttp's HTTP parser before the app (control bytes in a header value).
        check_documented(op_path, "POST", answer)
        return
    if answer.status != 200:
        assert_json_error(answer)
    check_documented(op_path, "POST", answer)


def test_hostile_webhooks_get_documented_answers_and_produce_only_when_signed() -> None:
    with live_app() as app:
        statuses: set[int] = set()

        @PROPERTY
        @given(req=hostile_requests())
        def check(req: Hostile) -> None:
            answer = app.send(req)
            statuses.add(answer.status)
            check_hostile_answer(app, req, answer, text_400=False)

        check()
    # The strategies reach every documented outcome except the outages (tested below).
    assert {200, 400, 401, 404, 413} <= statuses, statuses
    assert statuses <= HOSTILE_STATUSES


def test_non_utf8_and_control_bytes_in_headers_never_crash() -> None:
    with live_app() as app:

        @PROPERTY
        @given(req=hostile_requests(raw_header_bytes=True))
        def check(req: Hostile) -> None:
            answer = app.send(req)
            assert answer.status in HOSTILE_STATUSES
            check_hostile_answer(app, req, answer, text_400=True)

        check()


def test_only_the_exact_signature_of_the_exact_body_is_accepted() -> None:
    """Forged and truncated signatures on an otherwise perfect delivery: 401, nothing produced."""
    with live_app() as app:

        @PROPERTY
        @given(st.data())
        def check(data: st.DataObject) -> None:
            body = data.draw(bodies.filter(lambda b: len(b) <= LIMIT), label="body")
            valid = shopify.sign(SECRET, body)
            forged = data.draw(
                signatures(body, SECRET).filter(lambda s: (s or "").strip() != valid),
                label="signature",
            )
            headers = signed_headers(body)
            if forged is None:
                del headers[shopify.HMAC_HEADER]
            else:
                headers[shopify.HMAC_HEADER] = forged
            attempts = app.resources.producer.attempts
            answer = app.send(Hostile("shopify", None, list(headers.items()), body))
            assert answer.status == 401, (forged, answer)
            assert assert_json_error(answer)["error"] == "unauthorized"
            assert app.resources.producer.attempts == attempts
            check_documented(WEBHOOK_PATH, "POST", answer)

        check()


# --------------------------------------------------------------------------------------------
# Outages, limits and the HTTP layer
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "producer",
    [
        FakeProducer(error=KafkaConnectionError("broker down"), raise_on_send=True),
        FakeProducer(error=KafkaConnectionError("broker down")),
        FakeProducer(error=KafkaTimeoutError()),
        FakeProducer(hang=True),
    ],
    ids=["send-raises-connection-error", "ack-connection-error", "ack-timeout-error", "hangs"],
)
async def test_kafka_down_gives_503_with_retry_after(producer: FakeProducer) -> None:
    async with serve(resources=FakeResources(producer=producer)) as (client, _):
        answer = await request(
            client, "POST", "/webhooks/shopify", body=BODY, headers=signed_headers(BODY)
        )
    assert answer.status == 503
    assert assert_json_error(answer)["error"] == "unavailable"
    assert answer.headers["Retry-After"] == "5"
    assert producer.sent == []
    check_documented(WEBHOOK_PATH, "POST", answer)


async def test_channel_store_down_gives_503_and_produces_nothing() -> None:
    res = FakeResources(pool=FakePool(error=ConnectionRefusedError("postgres down")))
    async with serve(resources=res) as (client, _):
        answer = await request(
            client,
            "POST",
            "/webhooks/shopify/orders/create",
            body=BODY,
            headers=signed_headers(BODY),
        )
    assert answer.status == 503
    assert "Retry-After" in answer.headers
    assert res.producer.attempts == 0
    check_documented(WEBHOOK_TAIL_PATH, "POST", answer)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize(("size", "status"), [(0, 200), (LIMIT, 200), (LIMIT + 1, 413)])
async def test_size_limit_boundary(size: int, status: int, chunked: bool) -> None:
    body = b" " * size
    async with serve() as (client, res):
        answer = await request(
            client,
            "POST",
            "/webhooks/shopify",
            body=body,
            headers=signed_headers(body),
            chunked=chunked,
        )
    assert answer.status == status
    assert len(res.producer.sent) == (1 if status == 200 else 0)
    check_documented(WEBHOOK_PATH, "POST", answer)


@pytest.mark.parametrize(
    ("where", "headers_extra", "path"),
    [
        ("topic header over 8190 bytes", {shopify.TOPIC_HEADER: "a" * 9000}, "/webhooks/shopify"),
        (
            "signature header over 8190 bytes",
            {shopify.HMAC_HEADER: "A" * 9000},
            "/webhooks/shopify",
        ),
        ("path over 8190 bytes", {}, "/webhooks/shopify/" + "a" * 9000),
        ("duplicate Content-Type", [("Content-Type", "a/b")] * 2, "/webhooks/shopify"),
    ],
)
async def test_http_layer_refusals_are_documented_400s(
    where: str, headers_extra: dict[str, str] | list[tuple[str, str]], path: str
) -> None:
    """aiohttp refuses these before the app runs: a plain-text 400 the document describes."""
    extra = list(headers_extra.items()) if isinstance(headers_extra, dict) else headers_extra
    headers = [*signed_headers(BODY).items(), *extra]
    async with serve() as (client, res):
        answer = await request(client, "POST", path, body=BODY, headers=headers)
    assert answer.status == 400, where
    assert res.producer.attempts == 0
    check_documented(WEBHOOK_PATH, "POST", answer)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "x-anything"])
async def test_a_compressed_body_is_refused_415_and_not_produced(encoding: str) -> None:
    """Signatures are checked on the bytes as sent; nothing is decompressed before that."""
    body = gzip.compress(b'{"id": 7}') if encoding == "gzip" else b'{"id": 1}'
    headers = {**signed_headers(body), "Content-Encoding": encoding}
    async with serve() as (client, res):
        answer = await request(client, "POST", "/webhooks/shopify", body=body, headers=headers)
    assert answer.status == 415, answer
    assert_json_error(answer)
    assert res.producer.attempts == 0


async def test_a_gzip_bomb_is_never_inflated() -> None:
    bomb = gzip.compress(b"a" * (64 * LIMIT))
    headers = {**signed_headers(bomb), "Content-Encoding": "gzip"}
    async with serve() as (client, res):
        answer = await request(client, "POST", "/webhooks/shopify", body=bomb, headers=headers)
    assert answer.status == 415
    assert res.producer.attempts == 0
    check_documented(WEBHOOK_PATH, "POST", answer)


async def test_unknown_expect_header_gets_a_documented_json_answer() -> None:
    headers = {**signed_headers(BODY), "Expect": "something-else"}
    async with serve() as (client, res):
        answer = await request(client, "POST", "/webhooks/shopify", body=BODY, headers=headers)
    assert answer.status in documented_statuses(WEBHOOK_PATH, "POST"), answer
    assert_json_error(answer)
    assert len(res.producer.sent) == (1 if answer.status == 200 else 0)


@pytest.mark.parametrize("name", OPTIONAL_HEADERS)
async def test_non_utf8_optional_header_with_valid_signature_is_not_a_500(name: str) -> None:
    headers = [
        (k.encode(), b"\xff\xfe2024" if k == name else v.encode())
        for k, v in signed_headers(BODY).items()
    ]
    async with serve() as (client, res):
        answer = await raw_request(client, b"/webhooks/shopify", headers, BODY)
    assert answer.status != 500, answer
    assert answer.status in documented_statuses(WEBHOOK_PATH, "POST")
    assert len(res.producer.sent) == (1 if answer.status == 200 else 0)
