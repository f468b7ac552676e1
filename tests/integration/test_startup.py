"""Start-up mistakes a new operator makes get one line naming the problem, never a traceback;
an ingress started before Kafka answers 503 until Kafka is there, then accepts."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson
import pytest
from aiohttp import ClientSession

from bench.cluster import KafkaCluster
from bench.sandbox import free_port, settings_env
from pipeline.channels import Channel, ChannelStore
from pipeline.kafka import ensure_topics
from pipeline.platforms.shopify import delivery_headers
from pipeline.settings import Secret, Settings
from tests.integration.conftest import SECRET, SHOP, eventually, order_payload, run_cli


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The error a failed command printed: exactly one line, no traceback."""
    assert result.returncode != 0, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pipeline: error: "), lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("command", "url", "says"),
    [
        (("migrate",), "notaurl", "is not a Postgres URL"),
        (("ingress",), "mysql://root@127.0.0.1:3306/shop", "is not a Postgres URL"),
        (("worker",), "postgresql://postgres@127.0.0.1:port/pipeline", "port 'port' is not a"),
        (("dlq", "list"), "postgresql://postgres@127.0.0.1/pipeline?sslmode=on", "sslmode 'on'"),
        (("topics", "create"), "postgresql://postgres@127.0.0.1:99999/pipeline", "'99999'"),
    ],
)
def test_a_malformed_database_url_is_one_line_in_any_command(
    settings: Settings, command: tuple[str, ...], url: str, says: str
) -> None:
    bad = settings.with_overrides(database_url=Secret(url))
    line = one_line_error(run_cli(bad, *command))
    assert "DATABASE_URL" in line
    assert says in line


def _with(dsn: str, *, user: str | None = None, port: int | None = None) -> Secret:
    """`dsn` with another user or port."""
    parts = urlsplit(dsn)
    host = parts.hostname or "127.0.0.1"
    creds = f"{parts.username}:{parts.password}" if parts.password else str(parts.username)
    netloc = f"{user or creds}@{host}:{port or parts.port or 5432}"
    return Secret(urlunsplit(parts._replace(netloc=netloc)))


def _command(name: str) -> tuple[str, ...]:
    return ("ingress", "--port", str(free_port())) if name == "ingress" else (name,)


@pytest.mark.parametrize("command", ["ingress", "migrate"])  # the worker waits for Postgres
def test_unreachable_postgres_is_one_line(settings: Settings, command: str) -> None:
    down = settings.with_overrides(database_url=_with(settings.database_dsn, port=1))
    line = one_line_error(run_cli(down, *_command(command)))
    assert "cannot reach Postgres at" in line
    assert "DATABASE_URL" in line


@pytest.mark.parametrize("command", ["ingress", "worker", "migrate"])
def test_a_wrong_role_is_one_line(settings: Settings, command: str) -> None:
    wrong = settings.with_overrides(database_url=_with(settings.database_dsn, user="no_such_role"))
    line = one_line_error(run_cli(wrong, *_command(command)))
    assert 'role "no_such_role" does not exist' in line


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_busy_port_is_one_line(settings: Settings, busy_port: int) -> None:
    line = one_line_error(run_cli(settings, "ingress", "--port", str(busy_port)))
    assert f"127.0.0.1:{busy_port}: the port is already in use" in line
    assert "INGRESS_PORT" in line


def test_the_ingress_port_setting_is_checked(settings: Settings) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "ingress"],
        env=settings_env(settings, INGRESS_PORT="70000"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "INGRESS_PORT='70000' is not a TCP port" in one_line_error(result)


# --- an ingress started before Kafka -----------------------------------------------------------


@pytest.fixture
async def channel(settings: Settings) -> None:
    pool = await asyncpg.create_pool(settings.database_dsn, min_size=1, max_size=1)
    try:
        await ChannelStore(pool).add(Channel("shopify", SHOP, Secret(SECRET), "USD"), replace=True)
    finally:
        await pool.close()


@pytest.fixture
async def later_kafka() -> AsyncIterator[KafkaCluster]:
    """A one-broker Kafka whose ports are reserved now and which a test starts when it likes."""
    cluster = KafkaCluster(nodes=1)
    try:
        yield cluster
    finally:
        await cluster.close()


async def _post_order(http: ClientSession, url: str) -> tuple[int, str | None]:
    body = orjson.dumps(order_payload(9_100_000, updated_at="2026-12-01T10:00:00Z"))
    headers = delivery_headers(
        SECRET, body, shop=SHOP, topic="orders/create", webhook_id=str(uuid.uuid4())
    )
    async with http.post(url, data=body, headers=headers) as resp:
        await resp.read()
        return resp.status, resp.headers.get("Retry-After")


async def test_an_ingress_started_without_kafka_answers_503_then_accepts(
    settings: Settings, channel: None, later_kafka: KafkaCluster
) -> None:
    kafka_later = settings.with_overrides(kafka_bootstrap_servers=later_kafka.bootstrap)
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pipeline.cli",
        "ingress",
        "--port",
        str(port),
        env=settings_env(kafka_later),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with ClientSession() as http:

            async def answers() -> bool:
                try:
                    async with http.get(f"{base}/healthz") as resp:
                        return resp.status == 200
                except OSError:
                    return False

            await eventually(answers, timeout_s=30, what="the ingress to answer without Kafka")
            async with http.get(f"{base}/readyz") as resp:
                assert resp.status == 503
                assert (await resp.json())["detail"] == "kafka unreachable"
            assert await _post_order(http, f"{base}/webhooks/shopify") == (503, "5")

            await later_kafka.start()
            await ensure_topics(kafka_later)

            async def accepted() -> bool:
                return (await _post_order(http, f"{base}/webhooks/shopify"))[0] == 200

            await eventually(accepted, timeout_s=60, what="the ingress to accept once Kafka is up")
            async with http.get(f"{base}/readyz") as resp:
                assert resp.status == 200
    finally:
        proc.terminate()
        _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0
    assert b"Traceback" not in stderr
