"""The newest rate set in Redis under `pipeline:fx:latest`, expiring after FX_CACHE_TTL_S:
a cache only; Postgres holds the snapshots."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import orjson
from redis.asyncio import Redis

from pipeline.fx.rates import RateSet
from pipeline.redis_keys import ROOT, fx_latest_key


def encode(rates: RateSet) -> bytes:
    """JSON with rates as decimal strings, so no digit is lost to floats."""
    return orjson.dumps(
        {
            "provider": rates.provider,
            "base": rates.base,
            "as_of": rates.as_of.isoformat(),
            "rates": {q: str(r) for q, r in sorted(rates.rates.items())},
        }
    )


def decode(raw: bytes | str) -> RateSet | None:
    """The rate set `encode` wrote; None for anything else (treated as a cache miss)."""
    try:
        doc = orjson.loads(raw)
        return RateSet(
            doc["provider"],
            doc["base"],
            date.fromisoformat(doc["as_of"]),
            {q: Decimal(r) for q, r in doc["rates"].items()},
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, ArithmeticError):
        return None


async def put_latest(redis: Redis, rates: RateSet, ttl_s: float, root: str = ROOT) -> None:
    """Cache `rates` as the newest for `ttl_s` seconds."""
    await redis.set(fx_latest_key(root), encode(rates), px=round(ttl_s * 1000))


async def get_latest(redis: Redis, root: str = ROOT) -> RateSet | None:
    """The cached newest rates, or None when expired, never set or unreadable."""
    raw = await redis.get(fx_latest_key(root))
    return None if raw is None else decode(raw)
