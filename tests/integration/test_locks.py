"""Distributed locks on a real Redis, held by real OS processes; fences checked by a real
Postgres. The shared Redis is only used under lock names unique to each test; the tests that
restart or stop Redis use their own redis-server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio import Redis

from pipeline.fencing import StaleFence, check_fence
from pipeline.locks import LockLost, LockNotAcquired, acquire, release, renew, with_lock
from pipeline.redis_keys import fence_key, lock_key
from pipeline.settings import Settings
from tests.integration.redis_server import OwnRedis

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def name() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def redis(base_settings: Settings, name: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(base_settings.redis_url.value)
    yield client
    await client.delete(lock_key(name), fence_key(name), f"{name}:occupancy")
    await client.aclose()


@pytest.fixture
async def db(base_settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(base_settings.database_dsn)
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS fenced_test (name text PRIMARY KEY, writer text NOT NULL)"
    )
    yield conn
    await conn.close()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def holder(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.lock_holder", *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


async def line(proc: subprocess.Popen[str], timeout: float = 15.0) -> str:
    assert proc.stdout is not None
    return (await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout)).strip()


async def guarded_write(conn: asyncpg.Connection, name: str, fence: int, writer: str) -> None:
    async with conn.transaction():
        await check_fence(conn, name, fence)
        await conn.execute(
            "INSERT INTO fenced_test (name, writer) VALUES ($1, $2) "
            "ON CONFLICT (name) DO UPDATE SET writer = excluded.writer",
            name,
            writer,
        )


async def test_one_holder_at_a_time_across_processes(
    redis: Redis, name: str, base_settings: Settings
) -> None:
    url = base_settings.redis_url.value
    procs = [holder("contend", url, name, "15") for _ in range(4)]
    outs = await asyncio.gather(*(asyncio.to_thread(p.communicate, timeout=120) for p in procs))
    assert [p.returncode for p in procs] == [0, 0, 0, 0]
    rows = [tuple(map(int, r.split())) for out, _ in outs for r in out.split("\n") if r]
    assert len(rows) == 60
    assert {occupancy for _, occupancy in rows} == {1}
    fences = sorted(f for f, _ in rows)
    assert len(set(fences)) == 60  # every acquisition had its own fence


async def test_waiting_ends_at_the_deadline(redis: Redis, name: str) -> None:
    lease = await acquire(redis, name, ttl_s=5.0, wait_s=0)
    started = time.monotonic()
    with pytest.raises(LockNotAcquired, match="held by another process"):
        await acquire(redis, name, ttl_s=5.0, wait_s=0.3)
    assert 0.3 <= time.monotonic() - started < 1.0
    assert await release(redis, lease)
    again = await acquire(redis, name, ttl_s=5.0, wait_s=0)
    assert again.fence > lease.fence
    await release(redis, again)


async def test_only_the_holder_releases_or_renews(redis: Redis, name: str) -> None:
    first = await acquire(redis, name, ttl_s=0.2, wait_s=0)
    await asyncio.sleep(0.3)  # expired
    second = await acquire(redis, name, ttl_s=5.0, wait_s=0)
    assert not await renew(redis, first)
    assert not await release(redis, first)
    assert await redis.get(lock_key(name)) == second.token.encode()
    assert await renew(redis, second)
    assert await release(redis, second)
    assert await redis.get(lock_key(name)) is None


async def test_with_lock_renews_past_its_ttl_and_releases(redis: Redis, name: str) -> None:
    async with with_lock(redis, name, ttl_s=0.3, wait_s=0) as lease:
        await asyncio.sleep(1.0)  # three TTLs: only renewal keeps it
        assert await redis.get(lock_key(name)) == lease.token.encode()
    assert await redis.get(lock_key(name)) is None


async def test_a_holder_paused_past_its_ttl_is_refused_by_postgres(
    redis: Redis, db: asyncpg.Connection, name: str, base_settings: Settings
) -> None:
    url = base_settings.redis_url.value
    old = holder("fenced-write", url, name, base_settings.database_dsn, "0.5")
    try:
        old_fence = int(await line(old))
        os.kill(old.pid, signal.SIGSTOP)  # the pause: a GC, a VM migration, a swapped-out page
        await asyncio.sleep(0.8)
        new = await acquire(redis, name, ttl_s=5.0, wait_s=2.0)
        assert new.fence > old_fence
        await guarded_write(db, name, new.fence, "successor")
        os.kill(old.pid, signal.SIGCONT)
        assert old.stdin is not None
        old.stdin.write("go\n")
        old.stdin.flush()
        assert await line(old) == "refused"
    finally:
        os.kill(old.pid, signal.SIGCONT)
        old.kill()
        old.wait()
    assert await db.fetchval("SELECT writer FROM fenced_test WHERE name = $1", name) == "successor"
    with pytest.raises(StaleFence):
        await guarded_write(db, name, old_fence, "late")


async def test_a_renewing_holder_paused_past_its_ttl_learns_it_lost(
    redis: Redis, name: str, base_settings: Settings
) -> None:
    proc = holder("renewing", base_settings.redis_url.value, name, "0.6")
    try:
        await line(proc)
        os.kill(proc.pid, signal.SIGSTOP)
        await asyncio.sleep(1.0)
        successor = await acquire(redis, name, ttl_s=5.0, wait_s=2.0)
        os.kill(proc.pid, signal.SIGCONT)
        assert await line(proc, timeout=3.0) == "lost"
        assert await redis.get(lock_key(name)) == successor.token.encode()  # not released by it
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
        proc.wait()


async def test_redis_restarted_mid_hold_the_holder_learns_it_lost(
    own_redis: OwnRedis, db: asyncpg.Connection, name: str
) -> None:
    """Without persistence a restart loses the key: the next renewal finds it gone, so the body
    is cancelled with LockLost within one renewal interval. The counter is lost too, yet the
    next holder's fence is larger (floored at Redis's clock), so Postgres still orders them."""
    redis = Redis.from_url(own_redis.url)
    fences: list[int] = []

    async def hold() -> None:
        async with with_lock(redis, name, ttl_s=3.0, wait_s=0) as held:
            fences.append(held.fence)
            await guarded_write(db, name, held.fence, "before restart")
            own_redis.stop()
            own_redis.start()
            await asyncio.sleep(10)

    try:
        started = time.monotonic()
        with pytest.raises(LockLost, match="lost lock"):
            await hold()
        # The next renewal (1 s on; the first after a dropped connection fails and is retried
        # 50 ms later) finds the key gone: well before the 3 s TTL.
        assert time.monotonic() - started < 1.6
        [old_fence] = fences
        successor = await acquire(redis, name, ttl_s=5.0, wait_s=0)
        assert successor.fence > old_fence
        await guarded_write(db, name, successor.fence, "after restart")
        with pytest.raises(StaleFence):
            await guarded_write(db, name, old_fence, "old holder")
    finally:
        await redis.aclose()


async def test_redis_down_past_the_ttl_the_holder_learns_it_lost(
    own_redis: OwnRedis, name: str
) -> None:
    """Renewals that cannot reach Redis are retried until the lease's own time runs out; then
    the holder must assume it is gone (Redis may be back, and the key expired, or not)."""
    redis = Redis.from_url(own_redis.url, socket_timeout=0.2, socket_connect_timeout=0.2)

    async def hold() -> None:
        async with with_lock(redis, name, ttl_s=1.0, wait_s=0):
            own_redis.stop()
            await asyncio.sleep(10)

    try:
        stopped = time.monotonic()
        with pytest.raises(LockLost):
            await hold()
        assert 0.9 < time.monotonic() - stopped < 1.8  # the lease's own TTL, no sooner
    finally:
        await redis.aclose()
