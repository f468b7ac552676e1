"""Fixtures for tests against the real Kafka, Postgres and Redis that `make services` starts.

Each test session gets its own database; each test gets its own topic prefix (so its own topics,
consumer group and changelog), and its worker runs as a real `pipeline worker` subprocess.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestClient, TestServer

from bench.sandbox import free_port, settings_env
from pipeline.channels import Channel, ChannelStore
from pipeline.ingress import create_web_app
from pipeline.kafka import delete_prefixed_topics, ensure_topics
from pipeline.migrations import migrate
from pipeline.platforms.shopify import delivery_headers
from pipeline.resources import Resources, open_resources
from pipeline.settings import Secret, Settings, load_settings

pytestmark = pytest.mark.integration

SHOP = "it-shop.myshopify.com"
SECRET = "it-secret-0123456789"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.integration)


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def base_settings() -> Iterator[Settings]:
    """Settings from the environment, pointed at a fresh database for this test session."""
    env = load_settings()
    name = f"pipeline_test_{uuid.uuid4().hex[:10]}"
    admin_url = _with_database(env.database_dsn, "postgres")

    async def create() -> None:
        try:
            conn = await asyncpg.connect(admin_url, timeout=5)
        except OSError as exc:
            pytest.fail(
                f"Postgres unreachable at {env.database_url_masked}: {exc}; run `make services`"
            )
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        conn = await asyncpg.connect(_with_database(env.database_dsn, name))
        try:
            await migrate(conn)
        finally:
            await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(create())
    yield env.with_overrides(
        database_url=Secret(_with_database(env.database_dsn, name)),
        partitions=3,
        batch_within_s=0.05,
        session_timeout_s=8.0,
        worker_stall_timeout_s=10.0,
        retry_base_delay_s=1.0,
        log_format="json",
    )
    asyncio.run(drop())


@pytest.fixture
def settings(base_settings: Settings, tmp_path: Path) -> Settings:
    """Per-test topics and consumer group, so tests never see each other's messages."""
    return base_settings.with_overrides(
        topic_prefix=f"t{uuid.uuid4().hex[:8]}.",
        table_data_dir=str(tmp_path / "tables"),
        worker_web_port=free_port(),
    )


@pytest.fixture
async def resources(settings: Settings) -> AsyncIterator[Resources]:
    await ensure_topics(settings)
    res = await open_resources(settings)
    store = ChannelStore(res.pool)
    await store.add(Channel("shopify", SHOP, Secret(SECRET), "USD"), replace=True)
    yield res
    await res.close()
    await delete_prefixed_topics(settings)


@pytest.fixture
async def ingress(settings: Settings, resources: Resources) -> AsyncIterator[TestClient[Any, Any]]:
    client = TestClient(TestServer(create_web_app(settings, resources)))
    await client.start_server()
    yield client
    await client.close()


class WorkerProcess:
    """A real `pipeline worker` subprocess for one test's settings."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        return settings_env(self.settings)

    async def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "worker"],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        await self.wait_ready()

    async def wait_ready(self, timeout_s: float = 90.0) -> None:
        url = f"http://127.0.0.1:{self.settings.worker_web_port}/readyz"
        deadline = time.monotonic() + timeout_s
        async with ClientSession() as http:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    pytest.fail(f"worker exited with {self.proc.returncode}:\n{self.tail()}")
                try:
                    async with http.get(url) as resp:
                        if resp.status == 200:
                            return
                except OSError:
                    pass
                await asyncio.sleep(0.25)
        pytest.fail(f"worker not ready after {timeout_s}s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a crashed pod."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        """SIGTERM and wait for a clean exit; returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise

    def tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def run_cli(
    settings: Settings, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `pipeline ARGS...` as an operator would, against this test's settings."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        env=settings_env(settings, LOG_FORMAT="text"),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
async def worker(
    settings: Settings, resources: Resources, tmp_path: Path
) -> AsyncIterator[WorkerProcess]:
    proc = WorkerProcess(settings, tmp_path / "worker.log")
    await proc.start()
    yield proc
    proc.stop()


def order_payload(order_id: int, *, updated_at: str, **fields: Any) -> dict[str, Any]:
    """A Shopify order resource with sensible defaults; keyword arguments override fields."""
    payload: dict[str, Any] = {
        "id": order_id,
        "name": f"#{order_id % 100000}",
        "order_number": order_id % 100000,
        "email": "buyer@example.com",
        "financial_status": "paid",
        "fulfillment_status": None,
        "cancelled_at": None,
        "currency": "USD",
        "total_price": "25.50",
        "subtotal_price": "23.00",
        "total_tax": "2.50",
        "created_at": "2026-11-20T10:00:00-05:00",
        "updated_at": updated_at,
        "line_items": [
            {
                "id": order_id * 10 + 1,
                "variant_id": 111,
                "product_id": 11,
                "sku": "SKU-1",
                "title": "Mug",
                "quantity": 2,
                "price": "10.00",
            },
            {
                "id": order_id * 10 + 2,
                "variant_id": 222,
                "product_id": 22,
                "sku": "SKU-2",
                "title": "Tea",
                "quantity": 1,
                "price": "3.00",
            },
        ],
    }
    payload.update(fields)
    return payload


Sender = Callable[..., Awaitable[int]]


@pytest.fixture
def send(ingress: TestClient[Any, Any]) -> Sender:
    """POST a Shopify webhook signed with the test channel's secret; returns the status."""

    async def _send(
        topic: str,
        payload: dict[str, Any] | bytes,
        *,
        webhook_id: str | None = None,
        secret: str = SECRET,
        shop: str = SHOP,
    ) -> int:
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        headers = {
            **delivery_headers(
                secret, body, shop=shop, topic=topic, webhook_id=webhook_id or str(uuid.uuid4())
            ),
            "Content-Type": "application/json",
        }
        resp = await ingress.post(f"/webhooks/shopify/{topic}", data=body, headers=headers)
        await resp.read()
        return resp.status

    return _send


async def eventually(
    check: Callable[[], Awaitable[bool]],
    *,
    timeout_s: float = 30.0,
    what: str = "condition",
    worker: WorkerProcess | None = None,
) -> None:
    """Poll `check` until true; fail with `what` (and the worker's log tail) after the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    log = f"\nworker log:\n{worker.tail(80)}" if worker else ""
    pytest.fail(f"timed out after {timeout_s}s waiting for {what}{log}")
