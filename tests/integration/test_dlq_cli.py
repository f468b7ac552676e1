"""`pipeline dlq list | show` against dead letters stored in the real Postgres, run as a
subprocess the way an operator runs it."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from bench.sandbox import settings_env
from pipeline import envelope as envelopes
from pipeline.envelope import Envelope
from pipeline.settings import Settings
from tests.integration.conftest import run_cli

# A compact Shopify body as sent: `\/` escapes, a non-ASCII character, customer data.
BODY = '{"id":6100001,"email":"buyer@example.com","note":"caf\u00e9 \\/ gift"}'.encode()
ERROR = (
    "data.line_items[2].quantity 'two' is not a whole number\n"
    "while normalizing orders/create for shop dlq-cli.myshopify.com; the delivery will not be "
    "retried because no later attempt can read it differently"
)


@pytest.fixture
async def pool(base_settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(base_settings.database_dsn, min_size=1, max_size=2)
    yield pool
    await pool.close()


def run_cli_bytes(settings: Settings, *args: str) -> subprocess.CompletedProcess[bytes]:
    """`run_cli`, keeping stdout as bytes, to compare a body byte for byte."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        env=settings_env(settings, LOG_FORMAT="text"),
        capture_output=True,
        timeout=120,
        check=False,
    )


async def _dead_letter(
    pool: asyncpg.Pool, shop: str, payload: bytes, error: str, delivery_id: str = "d-1"
) -> int:
    now = datetime.now(UTC)
    letter_id: int = await pool.fetchval(
        "INSERT INTO dead_letters (platform, shop_id, topic, delivery_id, error_class, error, "
        "attempts, first_failed_at, last_failed_at, source_topic, source_partition, "
        "source_offset, message_key, payload) VALUES ('shopify', $1, 'orders/create', $2, "
        "'InvalidPayload', $3, 1, $4, $4, 'webhooks.raw', 0, $5, NULL, $6) RETURNING id",
        shop,
        delivery_id,
        error,
        now,
        uuid.uuid4().int % 10**12,
        payload,
    )
    return letter_id


def _envelope(shop: str) -> Envelope:
    return Envelope(
        platform="shopify",
        shop_id=shop,
        topic="orders/create",
        delivery_id=str(uuid.uuid4()),
        received_at_ms=int(time.time() * 1000),
        entity_key=f"shopify:{shop}:order:6100001",
        body=BODY,
        api_version="2025-10",
    )


async def test_list_shows_the_error_message_on_one_line(
    base_settings: Settings, pool: asyncpg.Pool
) -> None:
    shop = f"dlq-{uuid.uuid4().hex[:8]}.myshopify.com"
    letter = await _dead_letter(pool, shop, envelopes.encode(_envelope(shop)), ERROR)

    listed = run_cli(base_settings, "dlq", "list", "--platform", "shopify", "--shop", shop)
    assert listed.returncode == 0, listed.stderr
    header, line = listed.stdout.splitlines()
    assert header.split() == [
        *("ID", "DEAD-LETTERED", "PLATFORM", "SHOP", "ERROR", "ATTEMPTS", "REPLAYED"),
        *("SOURCE", "MESSAGE"),
    ]
    assert line.split()[:3] == [str(letter), line.split()[1], "shopify"]
    message = line[header.index("MESSAGE") :]
    assert message == (
        "data.line_items[2].quantity 'two' is not a whole number while normalizing ord..."
    )
    assert len(message) == 80
    assert line.split()[4] == "InvalidPayload"


async def test_show_prints_the_envelope_but_never_the_body_by_default(
    base_settings: Settings, pool: asyncpg.Pool
) -> None:
    shop = f"dlq-{uuid.uuid4().hex[:8]}.myshopify.com"
    item = _envelope(shop)
    letter = await _dead_letter(pool, shop, envelopes.encode(item), ERROR, item.delivery_id)

    shown = run_cli(base_settings, "dlq", "show", str(letter))
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    fields = dict(line.split(":", 1) for line in lines if not line.startswith(" "))
    assert fields["error"].strip() == ERROR.splitlines()[0]
    assert lines[lines.index(f"error:             {ERROR.splitlines()[0]}") + 1] == (
        " " * 19 + ERROR.splitlines()[1]
    )
    assert fields["delivery_id"].strip() == item.delivery_id
    assert fields["entity_key"].strip() == f"shopify:{shop}:order:6100001"
    assert fields["api_version"].strip() == "2025-10"
    assert fields["body_bytes"].strip() == str(len(BODY))
    assert "buyer@example.com" not in shown.stdout


async def test_show_body_prints_exactly_what_the_marketplace_sent(
    base_settings: Settings, pool: asyncpg.Pool
) -> None:
    shop = f"dlq-{uuid.uuid4().hex[:8]}.myshopify.com"
    stored = envelopes.encode(_envelope(shop))
    letter = await _dead_letter(pool, shop, stored, ERROR)

    body = run_cli_bytes(base_settings, "dlq", "show", str(letter), "--body")
    assert body.returncode == 0, body.stderr
    assert body.stdout == BODY
    raw = run_cli_bytes(base_settings, "dlq", "show", str(letter), "--raw")
    assert raw.returncode == 0, raw.stderr
    assert raw.stdout == stored


async def test_show_body_of_a_letter_that_is_no_envelope_is_one_error_line(
    base_settings: Settings, pool: asyncpg.Pool
) -> None:
    shop = f"dlq-{uuid.uuid4().hex[:8]}.myshopify.com"
    letter = await _dead_letter(pool, shop, b"\x00junk", "envelope is not JSON")

    body = run_cli(base_settings, "dlq", "show", str(letter), "--body")
    assert body.returncode == 2
    assert body.stdout == ""
    assert body.stderr.startswith(f"pipeline: error: dead letter {letter} is not an envelope (")
    assert body.stderr.endswith(f"`pipeline dlq show {letter} --raw` prints it as stored\n")
    assert body.stderr.count("\n") == 1
    assert run_cli_bytes(base_settings, "dlq", "show", str(letter), "--raw").stdout == b"\x00junk"


async def test_list_refuses_an_unknown_platform(base_settings: Settings) -> None:
    result = run_cli(base_settings, "dlq", "list", "--platform", "amazon")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "invalid choice: 'amazon'" in result.stderr
    assert "shopify" in result.stderr
    assert "Traceback" not in result.stderr
