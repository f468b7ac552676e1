"""A lock holder in its own OS process, for tests/integration/test_locks.py.

python -m tests.integration.lock_holder contend REDIS_URL NAME ROUNDS
    takes NAME ROUNDS times (with_lock); while holding, INCRs an occupancy counter, prints
    `<fence> <occupancy>`, sleeps, DECRs: occupancy must always be 1.
python -m tests.integration.lock_holder fenced-write REDIS_URL NAME DSN TTL
    acquires without renewal, prints its fence, waits for a line on stdin (its pause), then
    writes its pid into fenced_test under the fence: prints `written` or `refused`.
python -m tests.integration.lock_holder renewing REDIS_URL NAME TTL
    holds NAME with renewal, prints its fence, then sleeps; prints `lost` on LockLost.
"""

from __future__ import annotations

import asyncio
import os
import sys

import asyncpg
from redis.asyncio import Redis

from pipeline.fencing import StaleFence, check_fence
from pipeline.locks import LockLost, acquire, with_lock


def say(text: str) -> None:
    print(text, flush=True)


async def contend(redis: Redis, name: str, rounds: int) -> None:
    occupancy = f"{name}:occupancy"
    for _ in range(rounds):
        async with with_lock(redis, name, ttl_s=2.0, wait_s=30.0) as lease:
            now = await redis.incr(occupancy)
            say(f"{lease.fence} {now}")
            await asyncio.sleep(0.02)
            await redis.decr(occupancy)


async def fenced_write(redis: Redis, name: str, dsn: str, ttl_s: float) -> None:
    lease = await acquire(redis, name, ttl_s, wait_s=5.0)
    say(str(lease.fence))
    await asyncio.to_thread(sys.stdin.readline)
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await check_fence(conn, name, lease.fence)
            await conn.execute(
                "INSERT INTO fenced_test (name, writer) VALUES ($1, $2) "
                "ON CONFLICT (name) DO UPDATE SET writer = excluded.writer",
                name,
                f"pid {os.getpid()}",
            )
        say("written")
    except StaleFence:
        say("refused")
    finally:
        await conn.close()


async def renewing(redis: Redis, name: str, ttl_s: float) -> None:
    try:
        async with with_lock(redis, name, ttl_s=ttl_s, wait_s=5.0) as lease:
            say(str(lease.fence))
            await asyncio.sleep(60)
    except LockLost:
        say("lost")


async def main(mode: str, url: str, name: str, *rest: str) -> None:
    redis = Redis.from_url(url)
    try:
        if mode == "contend":
            await contend(redis, name, int(rest[0]))
        elif mode == "fenced-write":
            await fenced_write(redis, name, rest[0], float(rest[1]))
        else:
            await renewing(redis, name, float(rest[0]))
    finally:
        await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
