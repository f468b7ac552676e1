"""One refresh of the exchange rates: fetch from the configured providers, store the
snapshot in Postgres under the refresh lock's fence, then cache it in Redis. However many
refreshers run, one refreshes at a time; the others find the lock held and skip."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import aiohttp
import asyncpg
from redis.asyncio import Redis

from pipeline.fencing import check_fence
from pipeline.fx import cache, store
from pipeline.fx.ecb import EcbProvider
from pipeline.fx.oxr import OxrProvider
from pipeline.fx.providers import HttpClient, RateProvider, latest_rates
from pipeline.fx.rates import RateSet
from pipeline.locks import with_lock
from pipeline.redis_keys import ROOT
from pipeline.settings import Settings

LOCK = "fx-refresh"
LOCK_TTL_S = 30.0


def configured_providers(settings: Settings, session: aiohttp.ClientSession) -> list[RateProvider]:
    """FX_PROVIDERS, in order, sharing one HTTP client."""
    http = HttpClient(session, timeout_s=settings.fx_http_timeout_s)
    made: dict[str, RateProvider] = {
        "ecb": EcbProvider(http),
        "oxr": OxrProvider(http, settings.oxr_app_id),
    }
    return [made[name] for name in settings.fx_provider_names]


async def refresh(
    settings: Settings,
    pool: asyncpg.Pool,
    redis: Redis,
    providers: Sequence[RateProvider],
    today: date,
    *,
    root: str = ROOT,
    lock: str = LOCK,
) -> RateSet:
    """Fetch, store and cache the newest rates; LockNotAcquired if another refresh holds the
    lock, StaleFence if this one lost it before storing, FxError if no provider answered."""
    async with with_lock(redis, lock, LOCK_TTL_S, wait_s=0) as lease:
        rates = await latest_rates(providers, today, settings.fx_max_age_days)
        async with pool.acquire() as conn, conn.transaction():
            await check_fence(conn, lease.name, lease.fence)
            await store.save(conn, rates)
        await cache.put_latest(redis, rates, settings.fx_cache_ttl_s, root=root)
    return rates
