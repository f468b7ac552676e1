"""Distributed locks in Redis: a lease with a random token and a TTL, released and renewed
only by its holder, and a fencing token that grows with every acquisition.

A lease can end without its holder knowing (a pause longer than the TTL, Redis restarted
without the key). So the holder passes `Lease.fence` to the Postgres writes the lock guards
(`pipeline.fencing`), which refuse a token older than the newest they have seen: a holder that
lost its lease cannot overwrite its successor.

The fence is INCR of a per-lock counter with no TTL, floored at Redis's clock in
microseconds, in the same script as the SET NX PX: acquisition order is fence order, and a
Redis that lost its counter (restarted without persistence) still hands out larger tokens
than before, as long as its clock did not go back.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import RedisError

from pipeline.errors import PipelineError
from pipeline.redis_keys import fence_key, lock_key

log = logging.getLogger("pipeline.locks")

# KEYS: lock, fence counter. ARGV: token, ttl ms. Returns the fence, or nil if held.
_ACQUIRE = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return nil end
local fence = redis.call('INCR', KEYS[2])
local now = redis.call('TIME')
local floor = tonumber(now[1]) * 1000000 + tonumber(now[2])
if fence < floor then
  redis.call('SET', KEYS[2], string.format('%d', floor))
  fence = floor
end
return fence
"""
# KEYS: lock. ARGV: token. 1 if the holder's key was deleted, 0 if it was not (no longer) theirs.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# KEYS: lock. ARGV: token, ttl ms. 1 if the holder's lease was extended, 0 if it is gone.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class LockError(PipelineError):
    """A lock could not be taken or kept."""

    code = "lock_error"


class LockNotAcquired(LockError):
    """Someone else held the lock for all of the wait; it may be free later."""

    code = "lock_not_acquired"
    retriable = True


class LockLost(LockError):
    """The lease ended while its holder still worked under it (expired, taken, or Redis lost
    it); what the holder did since is not protected, which the fence makes harmless."""

    code = "lock_lost"


@dataclass(slots=True)
class Lease:
    """One holding of a lock: `fence` goes with every write the lock guards."""

    name: str
    token: str
    fence: int
    ttl_s: float
    valid_until: float  # time.monotonic() after which the lease may have expired
    lost: asyncio.Event = field(default_factory=asyncio.Event)

    def extended(self, started: float) -> None:
        """A renewal sent at `started` succeeded: the lease holds until started + TTL."""
        self.valid_until = started + self.ttl_s


def ttl_ms(ttl_s: float) -> int:
    """The TTL as Redis's milliseconds; a lease shorter than 10 ms cannot be renewed in time."""
    if not ttl_s >= 0.01:
        raise ValueError(f"a lock's TTL must be at least 0.01 s, not {ttl_s}")
    return round(ttl_s * 1000)


def renew_every(ttl_s: float) -> float:
    """How often a holder renews: three tries per TTL, so one slow round trip is survived."""
    return ttl_s / 3


def poll_delay(attempt: int, remaining_s: float) -> float:
    """How long a waiter sleeps before trying again: 20 ms doubling to 500 ms, jittered, never
    past the deadline."""
    base = min(0.5, 0.02 * 2 ** min(attempt, 10))
    return float(max(0.0, min(remaining_s, base * random.uniform(0.5, 1.0))))


def retry_delay(failures: int, ttl_s: float) -> float:
    """After `failures` failed renewals in a row: 50 ms doubling, at most the renewal interval."""
    return min(renew_every(ttl_s), 0.05 * float(2 ** min(failures - 1, 10)))


async def try_acquire(redis: Redis, name: str, ttl_s: float) -> Lease | None:
    """Take the lock if it is free (one round trip); None if someone holds it."""
    token = secrets.token_hex(16)
    started = time.monotonic()
    fence = await redis.eval(_ACQUIRE, 2, lock_key(name), fence_key(name), token, ttl_ms(ttl_s))
    if fence is None:
        return None
    return Lease(name, token, int(fence), ttl_s, started + ttl_s)


async def acquire(redis: Redis, name: str, ttl_s: float, wait_s: float) -> Lease:
    """Take the lock, waiting up to `wait_s` seconds for its holder; LockNotAcquired after."""
    deadline = time.monotonic() + wait_s
    attempt = 0
    while True:
        lease = await try_acquire(redis, name, ttl_s)
        if lease is not None:
            return lease
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LockNotAcquired(f"lock {name!r} is held by another process (waited {wait_s} s)")
        await asyncio.sleep(poll_delay(attempt, remaining))
        attempt += 1


async def release(redis: Redis, lease: Lease) -> bool:
    """Give the lock back; False if it was no longer ours (expired or taken), which is not an
    error here: only the holder's writes, fenced, needed the lease."""
    done = await redis.eval(_RELEASE, 1, lock_key(lease.name), lease.token)
    return bool(done)


async def renew(redis: Redis, lease: Lease) -> bool:
    """Extend the lease by its TTL if it is still ours; False if it is gone."""
    started = time.monotonic()
    done = await redis.eval(_RENEW, 1, lock_key(lease.name), lease.token, ttl_ms(lease.ttl_s))
    if done:
        lease.extended(started)
    return bool(done)


async def keep_renewed(redis: Redis, lease: Lease) -> None:
    """Renew until cancelled; return (with `lease.lost` set) once the lease is gone: Redis said
    it is not ours, or Redis could not be asked before the lease's time ran out. A failed
    renewal (a dropped connection, Redis restarting) is retried soon, not a full interval on."""
    failures = 0
    while True:
        pause = renew_every(lease.ttl_s) if failures == 0 else retry_delay(failures, lease.ttl_s)
        await asyncio.sleep(max(0.0, min(pause, lease.valid_until - time.monotonic())))
        if time.monotonic() >= lease.valid_until:
            break
        try:
            if not await renew(redis, lease):
                break
            failures = 0
        except (RedisError, OSError) as exc:
            failures += 1
            log.warning(
                "lock renewal failed, will retry", extra={"lock": lease.name, "error": repr(exc)}
            )
    lease.lost.set()


@asynccontextmanager
async def with_lock(redis: Redis, name: str, ttl_s: float, wait_s: float) -> AsyncIterator[Lease]:
    """Hold `name` for the body, renewed in the background. If the lease is lost the body is
    cancelled and LockLost raised in its place, so the holder learns of it at its next await."""
    lease = await acquire(redis, name, ttl_s, wait_s)
    body = asyncio.current_task()
    assert body is not None

    async def watch() -> None:
        await keep_renewed(redis, lease)
        body.cancel()

    watcher = asyncio.create_task(watch(), name=f"renew-lock-{name}")
    try:
        yield lease
    except asyncio.CancelledError:
        # The watcher's cancel, and no one else's: the body is told, as LockLost.
        if lease.lost.is_set() and body.uncancel() == 0:
            raise LockLost(f"lost lock {name!r} (fence {lease.fence}) while holding it") from None
        raise
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        if not lease.lost.is_set():
            try:
                await release(redis, lease)
            except (RedisError, OSError) as exc:  # it expires by itself
                log.warning("lock release failed", extra={"lock": name, "error": repr(exc)})
    if lease.lost.is_set():
        raise LockLost(f"lost lock {name!r} (fence {lease.fence}) while holding it")
