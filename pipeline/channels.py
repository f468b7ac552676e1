"""Channels (one shop on one platform with its webhook secret) and a short-lived cache of them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg

from pipeline.settings import Secret

SELECT_CHANNEL = (
    "SELECT platform, shop_id, secret, currency FROM channels WHERE platform = $1 AND shop_id = $2"
)
SELECT_CHANNELS = (
    "SELECT platform, shop_id, secret, currency FROM channels ORDER BY platform, shop_id"
)
INSERT_CHANNEL = """
INSERT INTO channels (platform, shop_id, secret, currency) VALUES ($1, $2, $3, $4)
ON CONFLICT (platform, shop_id) DO NOTHING
RETURNING id
"""
REPLACE_CHANNEL = """
INSERT INTO channels (platform, shop_id, secret, currency) VALUES ($1, $2, $3, $4)
ON CONFLICT (platform, shop_id) DO UPDATE
SET secret = EXCLUDED.secret, currency = EXCLUDED.currency, updated_at = now()
RETURNING id
"""
DELETE_CHANNEL = "DELETE FROM channels WHERE platform = $1 AND shop_id = $2 RETURNING id"


@dataclass(frozen=True, slots=True)
class Channel:
    """A shop on a platform, and what verifies its webhooks."""

    platform: str
    shop_id: str
    secret: Secret = field(repr=False)
    currency: str | None = None

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.secret.value,)

    @property
    def masked_secret(self) -> str:
        tail = self.secret.value[-4:] if len(self.secret.value) >= 12 else ""
        return f"****{tail}"


def _channel(row: asyncpg.Record) -> Channel:
    return Channel(row["platform"], row["shop_id"], Secret(row["secret"]), row["currency"])


class ChannelStore:
    """Channels in Postgres."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get(self, platform: str, shop_id: str) -> Channel | None:
        row = await self._pool.fetchrow(SELECT_CHANNEL, platform, shop_id)
        return None if row is None else _channel(row)

    async def list(self) -> list[Channel]:
        return [_channel(r) for r in await self._pool.fetch(SELECT_CHANNELS)]

    async def add(self, channel: Channel, *, replace: bool = False) -> bool:
        """Store a channel; False when it exists and `replace` was not asked for."""
        query = REPLACE_CHANNEL if replace else INSERT_CHANNEL
        row = await self._pool.fetchrow(
            query, channel.platform, channel.shop_id, channel.secret.value, channel.currency
        )
        return row is not None

    async def remove(self, platform: str, shop_id: str) -> bool:
        return await self._pool.fetchrow(DELETE_CHANNEL, platform, shop_id) is not None


class ChannelCache:
    """Remembers lookups (found and not found) for a short while so each webhook costs no query."""

    def __init__(
        self,
        store: ChannelStore,
        ttl_s: float,
        *,
        miss_ttl_s: float = 5.0,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl = ttl_s
        self._miss_ttl = min(miss_ttl_s, ttl_s)
        self._max = max_entries
        self._clock = clock
        self._entries: dict[tuple[str, str], tuple[float, Channel | None]] = {}

    async def get(self, platform: str, shop_id: str) -> Channel | None:
        key = (platform, shop_id)
        now = self._clock()
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        channel = await self._store.get(platform, shop_id)
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key] = (now + (self._ttl if channel else self._miss_ttl), channel)
        return channel
