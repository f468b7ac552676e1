"""Logs never carry a secret, a signature, a body or a customer's email, phone, address or name.

Requests go through the real ingress app (fake pool and producer) while every log record of every
logger is captured at DEBUG and rendered the way production renders it (JsonFormatter, one JSON
object per line; TextFormatter too).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
import pytest
from aiokafka.errors import KafkaConnectionError

from pipeline.channels import Channel
from pipeline.logs import JsonFormatter, TextFormatter
from pipeline.platforms import shopify
from pipeline.settings import Secret, Settings, load_settings
from tests.unit.factories import SECRET, SHOP
from tests.unit.test_ingress_hostile import (
    OTHER_SECRET,
    FakePool,
    FakeProducer,
    FakeResources,
    raw_request,
    request,
    serve,
    signed_headers,
)

EMAIL = "janet.roesling+orders@example.org"
PHONE = "+1 415-555-0199"
PHONE_DIGITS = "4155550199"
STREET = "1600 Amphitheatre Parkway"
NAME = "Janet Roesling"
WRONG_SECRET = "shpss_not_the_right_one_42"

PII_BODY = orjson.dumps(
    {
        "id": 5550199,
        "name": "#7001",
        "email": EMAIL,
        "phone": PHONE,
        "financial_status": "paid",
        "currency": "USD",
        "total_price": "12.00",
        "updated_at": "2024-03-11T11:05:17-05:00",
        "customer": {
            "id": 77,
            "email": EMAIL,
            "phone": PHONE,
            "first_name": "Janet",
            "last_name": "Roesling",
        },
        "billing_address": {
            "name": NAME,
            "address1": STREET,
            "address2": "Suite 42",
            "city": "Mountain View",
            "zip": "94043",
            "phone": PHONE,
        },
        "shipping_address": {"name": NAME, "address1": STREET, "phone": PHONE},
        "line_items": [{"id": 1, "quantity": 1, "price": "12.00", "title": "Mug"}],
    }
)
NOT_JSON_BODY = f"name={NAME}&email={EMAIL}&phone={PHONE}&street={STREET}".encode()


class Capture(logging.Handler):
    """Keeps every record; renders them as production would."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def json_lines(self) -> list[str]:
        formatter = JsonFormatter()
        return [formatter.format(r) for r in self.records]

    def text_lines(self) -> list[str]:
        formatter = TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        return [formatter.format(r) for r in self.records]


@contextmanager
def captured_logs() -> Iterator[Capture]:
    handler = Capture()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def forbidden(*bodies: bytes) -> dict[str, str]:
    """What must never appear in a log line, by what it is."""
    values = {
        "secret": SECRET,
        "other secret": OTHER_SECRET,
        "wrong secret": WRONG_SECRET,
        "email": EMAIL,
        "phone": PHONE,
        "phone digits": PHONE_DIGITS,
        "street": STREET,
        "name": NAME,
    }
    for i, body in enumerate(bodies):
        values[f"signature {i}"] = shopify.sign(SECRET, body)
        values[f"wrong signature {i}"] = shopify.sign(WRONG_SECRET, body)
        values[f"body {i} base64"] = base64.b64encode(body).decode()
        text = body.decode("utf-8", "replace")
        values[f"body {i}"] = text
        values[f"body {i} json-escaped"] = orjson.dumps(text).decode()[1:-1]
    return {k: v for k, v in values.items() if len(v) >= 8}


def assert_clean(capture: Capture, *bodies: bytes) -> None:
    assert capture.records, "nothing was logged: the capture is not working"
    lines = capture.json_lines()
    for line in lines:
        assert isinstance(orjson.loads(line), dict), line  # one JSON object per line
    text = "\n".join(lines + capture.text_lines())
    leaks = {what: value for what, value in forbidden(*bodies).items() if value in text}
    assert not leaks, f"logs leak {sorted(leaks)}:\n{text}"


def test_the_check_catches_a_leak() -> None:
    with captured_logs() as capture:
        logging.getLogger("pipeline.test").info("order", extra={"customer": {"email": EMAIL}})
    with pytest.raises(AssertionError, match="email"):
        assert_clean(capture)


async def test_accepted_rejected_and_unknown_deliveries_log_no_secret_or_pii() -> None:
    wrong = signed_headers(PII_BODY, secret=WRONG_SECRET)
    with captured_logs() as capture:
        async with serve() as (client, res):
            ok = await request(
                client, "POST", "/webhooks/shopify", body=PII_BODY, headers=signed_headers(PII_BODY)
            )
            not_json = await request(
                client,
                "POST",
                "/webhooks/shopify/orders/create",
                body=NOT_JSON_BODY,
                headers=signed_headers(NOT_JSON_BODY),
            )
            bad_sig = await request(
                client, "POST", "/webhooks/shopify", body=PII_BODY, headers=wrong
            )
            unknown_shop = await request(
                client,
                "POST",
                "/webhooks/shopify",
                body=PII_BODY,
                headers=signed_headers(PII_BODY, shop="nobody.myshopify.com"),
            )
            unknown_platform = await request(
                client, "POST", "/webhooks/etsy", body=PII_BODY, headers=wrong
            )
    assert [a.status for a in (ok, not_json, bad_sig, unknown_shop, unknown_platform)] == [
        200,
        200,
        401,
        404,
        404,
    ]
    assert len(res.producer.sent) == 2
    messages = {r.getMessage() for r in capture.records}
    assert {"webhook accepted", "signature rejected"} <= messages
    assert_clean(capture, PII_BODY, NOT_JSON_BODY)


@pytest.mark.parametrize(
    "resources",
    [
        FakeResources(producer=FakeProducer(error=KafkaConnectionError("broker down"))),
        FakeResources(producer=FakeProducer(hang=True)),
        FakeResources(pool=FakePool(error=ConnectionRefusedError("postgres down"))),
    ],
    ids=["kafka-error", "kafka-hangs", "channel-store-down"],
)
async def test_503s_log_no_secret_or_pii(resources: FakeResources) -> None:
    with captured_logs() as capture:
        async with serve(resources=resources) as (client, _):
            answer = await request(
                client, "POST", "/webhooks/shopify", body=PII_BODY, headers=signed_headers(PII_BODY)
            )
    assert answer.status == 503
    assert any(r.levelno == logging.WARNING for r in capture.records)
    assert_clean(capture, PII_BODY)


async def test_unexpected_faults_log_no_secret_or_pii() -> None:
    """The 500 path logs a traceback; the request it came from must not be in it."""
    headers = [
        (k.encode(), b"\xff\xfe" if k == shopify.API_VERSION_HEADER else v.encode())
        for k, v in signed_headers(PII_BODY).items()
    ]
    with captured_logs() as capture:
        async with serve(resources=FakeResources(pool=FakePool(error=RuntimeError("bug")))) as (
            client,
            _,
        ):
            first = await request(
                client, "POST", "/webhooks/shopify", body=PII_BODY, headers=signed_headers(PII_BODY)
            )
        async with serve() as (client, _):
            second = await raw_request(client, b"/webhooks/shopify", headers, PII_BODY)
    assert first.status == 500
    assert second.status == 200  # the undecodable optional header is dropped, not trusted
    assert_clean(capture, PII_BODY)


# --------------------------------------------------------------------------------------------
# Reprs: settings and channels
# --------------------------------------------------------------------------------------------

DB_PASSWORD = "pg-S3cret-pw"
REDIS_PASSWORD = "redis-S3cret-pw"


def _renderings(obj: object) -> str:
    record = logging.makeLogRecord({"msg": "context %s", "args": (obj,), "thing": obj})
    return "\n".join(
        [
            repr(obj),
            str(obj),
            f"{obj}",
            f"{obj!r}",
            record.getMessage(),
            TextFormatter("%(message)s").format(record),
        ]
    )


def _settings_with_passwords() -> Settings:
    return Settings().with_overrides(
        database_url=Secret(f"postgresql://app:{DB_PASSWORD}@db.internal:5432/pipeline"),
        redis_url=Secret(f"redis://:{REDIS_PASSWORD}@cache.internal:6379/0"),
    )


def test_settings_never_show_the_dsn_passwords() -> None:
    from_env = load_settings(
        {
            "DATABASE_URL": f"postgresql://app:{DB_PASSWORD}@db.internal/pipeline",
            "REDIS_URL": f"redis://:{REDIS_PASSWORD}@cache.internal:6379/0",
        }
    )
    for s in (_settings_with_passwords(), from_env):
        shown = _renderings(s) + "\n" + s.database_url_masked
        assert DB_PASSWORD not in shown
        assert REDIS_PASSWORD not in shown
        assert s.database_dsn.count(DB_PASSWORD) == 1  # the secret is still usable
        assert "db.internal" in s.database_url_masked


def test_channels_never_show_their_secret() -> None:
    channel = Channel("shopify", SHOP, Secret(SECRET), "USD")
    shown = _renderings(channel) + "\n" + channel.masked_secret
    assert SECRET not in shown
    assert SECRET[:-4] not in channel.masked_secret
    assert channel.secrets == (SECRET,)
    for secret in (Secret(SECRET), Secret(DB_PASSWORD)):
        assert secret.value not in _renderings(secret)


@pytest.mark.parametrize(
    ("thing", "hidden"),
    [
        (Secret(SECRET), SECRET),
        (Channel("shopify", SHOP, Secret(SECRET), "USD"), SECRET),
        (_settings_with_passwords(), DB_PASSWORD),
    ],
    ids=["secret", "channel", "settings"],
)
def test_json_log_lines_never_show_a_secret_passed_as_extra(thing: object, hidden: str) -> None:
    record = logging.makeLogRecord({"msg": "context", "args": None, "thing": thing})
    line = JsonFormatter().format(record)
    assert hidden not in line, line
