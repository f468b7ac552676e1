"""`refresh` and `pipeline fx` end to end: the real providers' client against a local server in
their formats, the session's Postgres, and a Redis of the test's own (the cache key is the
real `pipeline:fx:latest`, so never on the shared Redis)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from pipeline.fencing import StaleFence
from pipeline.fx.ecb import EcbProvider
from pipeline.fx.oxr import OxrProvider
from pipeline.fx.providers import AllProvidersFailed, HttpClient
from pipeline.fx.refresh import refresh
from pipeline.redis_keys import fx_latest_key
from pipeline.retry import Backoff
from pipeline.settings import Secret, Settings
from tests.integration.redis_server import OwnRedis
from tests.unit.test_fx_providers import APP_ID, DAILY, Feed, app

TODAY = date(2026, 12, 2)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def feed() -> Feed:
    return Feed()


@pytest.fixture
async def server(feed: Feed) -> AsyncIterator[TestServer]:
    srv = TestServer(app(feed))
    await srv.start_server()
    yield srv
    await srv.close()


@pytest.fixture
async def pool(base_settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    created = await asyncpg.create_pool(base_settings.database_dsn, min_size=1, max_size=4)
    assert created is not None
    await created.execute("DELETE FROM exchange_rates")
    yield created
    await created.close()


@pytest.fixture
async def redis(own_redis: OwnRedis) -> AsyncIterator[Redis]:
    client = Redis.from_url(own_redis.url)
    yield client
    await client.aclose()


@pytest.fixture
async def providers(server: TestServer) -> AsyncIterator[list[EcbProvider | OxrProvider]]:
    async with aiohttp.ClientSession() as session:
        http = HttpClient(session, timeout_s=0.5, attempts=2, backoff=Backoff(0.01, 0.02))
        yield [
            EcbProvider(http, base_url=str(server.make_url("/ecb"))),
            OxrProvider(http, Secret(APP_ID), base_url=str(server.make_url("/oxr"))),
        ]


@pytest.fixture
def lock() -> str:
    return f"fx-refresh-{uuid.uuid4().hex[:8]}"


async def test_refresh_stores_a_snapshot_and_caches_it_for_an_hour(
    base_settings: Settings, pool: asyncpg.Pool, redis: Redis, providers: list, lock: str
) -> None:
    rates = await refresh(base_settings, pool, redis, providers, TODAY, lock=lock)
    assert (rates.provider, rates.as_of) == ("ecb", date(2026, 12, 1))
    rows = await pool.fetch("SELECT provider, base, quote, rate, as_of FROM exchange_rates")
    assert {(r["provider"], r["base"], r["quote"], r["rate"], r["as_of"]) for r in rows} == {
        ("ecb", "EUR", "USD", Decimal("1.0550"), date(2026, 12, 1)),
        ("ecb", "EUR", "JPY", Decimal("158.21"), date(2026, 12, 1)),
        ("ecb", "EUR", "GBP", Decimal("0.83475"), date(2026, 12, 1)),
    }
    assert 3_590_000 < await redis.pttl(fx_latest_key()) <= 3_600_000
    await refresh(base_settings, pool, redis, providers, TODAY, lock=lock)  # same day again
    assert await pool.fetchval("SELECT count(*) FROM exchange_rates") == 3


async def test_one_refresher_at_a_time(
    base_settings: Settings,
    pool: asyncpg.Pool,
    own_redis: OwnRedis,
    providers: list,
    feed: Feed,
    lock: str,
) -> None:
    feed.plan[DAILY] = ["slow-ish"]
    clients = [Redis.from_url(own_redis.url) for _ in range(4)]
    try:
        results = await asyncio.gather(
            *(refresh(base_settings, pool, c, providers, TODAY, lock=lock) for c in clients),
            return_exceptions=True,
        )
    finally:
        for c in clients:
            await c.aclose()
    assert sorted(type(r).__name__ for r in results) == [
        "LockNotAcquired",
        "LockNotAcquired",
        "LockNotAcquired",
        "RateSet",
    ]
    assert feed.hits[DAILY] == 1


async def test_a_refresher_whose_lease_was_superseded_stores_nothing(
    base_settings: Settings, pool: asyncpg.Pool, redis: Redis, providers: list, lock: str
) -> None:
    # A newer holder has written already (as after this one's pause past the TTL).
    await pool.execute("INSERT INTO lock_fences (name, token) VALUES ($1, 9e15)", lock)
    with pytest.raises(StaleFence):
        await refresh(base_settings, pool, redis, providers, TODAY, lock=lock)
    assert await pool.fetchval("SELECT count(*) FROM exchange_rates") == 0
    assert await redis.get(fx_latest_key()) is None


async def test_no_provider_no_snapshot(
    base_settings: Settings,
    pool: asyncpg.Pool,
    redis: Redis,
    providers: list,
    feed: Feed,
    lock: str,
) -> None:
    feed.plan[DAILY] = ["stale"]
    feed.plan["/oxr/latest.json"] = ["503"]
    with pytest.raises(AllProvidersFailed, match=r"ecb: rates as of 2026-10-01.*; oxr: HTTP 503"):
        await refresh(base_settings, pool, redis, providers, TODAY, lock=lock)
    assert await pool.fetchval("SELECT count(*) FROM exchange_rates") == 0
    feed.plan["/oxr/latest.json"] = ["ok"]  # the lock was released: the next refresh runs
    assert (
        await refresh(base_settings, pool, redis, providers, TODAY, lock=lock)
    ).provider == "oxr"


def pipeline(settings: Settings, redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_dsn,
        "REDIS_URL": redis_url,
        "LOG_FORMAT": "text",
        "FX_PROVIDERS": settings.fx_providers,
        "OXR_APP_ID": "",
    }
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_cli_show_and_history(
    base_settings: Settings,
    pool: asyncpg.Pool,
    redis: Redis,
    own_redis: OwnRedis,
    providers: list,
    lock: str,
) -> None:
    none = await asyncio.to_thread(pipeline, base_settings, own_redis.url, "fx", "show")
    assert (none.returncode, none.stdout) == (1, "")
    assert none.stderr.startswith("pipeline: error: no exchange rates stored on or before ")
    await refresh(base_settings, pool, redis, providers, TODAY, lock=lock)

    cached = await asyncio.to_thread(pipeline, base_settings, own_redis.url, "fx", "show")
    assert cached.stdout.splitlines() == [
        "ecb rates as of 2026-12-01 (from the Redis cache): 1 EUR =",
        "  GBP 0.83475",
        "  JPY 158.21",
        "  USD 1.0550",
    ]
    await redis.delete(fx_latest_key())
    stored = await asyncio.to_thread(
        pipeline, base_settings, own_redis.url, "fx", "show", "--base", "usd"
    )
    assert stored.stdout.splitlines() == [
        "ecb rates as of 2026-12-01 (from Postgres): 1 USD =",
        "  EUR 0.9478672986",
        "  GBP 0.7912322275",
        "  JPY 149.9620853",
    ]
    before = await asyncio.to_thread(
        pipeline, base_settings, own_redis.url, "fx", "show", "--at", "2026-11-30"
    )
    assert before.returncode == 1
    assert "no exchange rates stored on or before 2026-11-30" in before.stderr
    history = await asyncio.to_thread(pipeline, base_settings, own_redis.url, "fx", "history")
    [line] = history.stdout.splitlines()
    assert line.startswith("2026-12-01  ecb  EUR    3 quotes  fetched ")


async def test_cli_refresh_without_redis_is_one_line(
    base_settings: Settings, own_redis: OwnRedis
) -> None:
    own_redis.stop()
    done = await asyncio.to_thread(pipeline, base_settings, own_redis.url, "fx", "refresh")
    assert done.returncode == 2
    assert done.stderr.startswith(
        f"pipeline: error: cannot reach Redis at redis://127.0.0.1:{own_redis.port}/0 ("
    )
    assert done.stderr.rstrip().endswith("; check REDIS_URL")
    assert done.stderr.count("\n") == 1


async def test_cli_refresh_with_no_provider_reachable_names_each(
    base_settings: Settings, own_redis: OwnRedis
) -> None:
    env_settings = base_settings.with_overrides(fx_providers="oxr")
    done = await asyncio.to_thread(pipeline, env_settings, own_redis.url, "fx", "refresh")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == "pipeline: error: no provider gave rates: oxr: OXR_APP_ID is not set\n"


async def test_cli_refresh_loop_keeps_trying_every_fx_refresh_minutes(
    base_settings: Settings, own_redis: OwnRedis
) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": base_settings.database_dsn,
        "REDIS_URL": own_redis.url,
        "LOG_FORMAT": "text",
        "FX_PROVIDERS": "oxr",
        "OXR_APP_ID": "",
        "FX_REFRESH_MINUTES": "0.005",  # 0.3 s
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "fx", "refresh", "--loop"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    await asyncio.sleep(4.0)
    proc.send_signal(signal.SIGINT)
    _, err = await asyncio.to_thread(proc.communicate, timeout=10)
    failures = [line for line in err.splitlines() if "fx refresh failed, will try again" in line]
    assert 3 <= len(failures) <= 14, err
    assert proc.returncode == 130
