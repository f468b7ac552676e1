"""Channels (one shop on one platform), the app credentials some platforms sign with, and a
short-lived cache of channel lookups.

Shopify and WooCommerce sign each shop's deliveries with the shop's own secret; Shopee, Lazada
and TikTok Shop sign every shop's with one app secret. A channel holds either a secret or the key
of its app. During a rotation a channel or app holds two secrets, and either verifies.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg

from pipeline.platforms.base import Credentials
from pipeline.settings import Secret

_CHANNEL_COLUMNS = """
    c.platform, c.shop_id, c.secret, c.previous_secret, c.currency, c.app_key,
    a.secret AS app_secret, a.previous_secret AS app_previous_secret, a.callback_url
FROM channels c
LEFT JOIN app_credentials a ON a.platform = c.platform AND a.app_key = c.app_key
"""
SELECT_CHANNEL = f"SELECT {_CHANNEL_COLUMNS} WHERE c.platform = $1 AND c.shop_id = $2"
SELECT_CHANNELS = f"SELECT {_CHANNEL_COLUMNS} ORDER BY c.platform, c.shop_id"
UPSERT_CHANNEL = """
INSERT INTO channels (platform, shop_id, secret, app_key, currency) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (platform, shop_id) DO UPDATE
SET secret = EXCLUDED.secret, previous_secret = NULL, app_key = EXCLUDED.app_key,
    currency = EXCLUDED.currency, updated_at = now()
WHERE $6
RETURNING id
"""
DELETE_CHANNEL = "DELETE FROM channels WHERE platform = $1 AND shop_id = $2 RETURNING id"
ROTATE_CHANNEL = """
UPDATE channels SET previous_secret = secret, secret = $3, updated_at = now()
WHERE platform = $1 AND shop_id = $2 AND secret IS NOT NULL AND previous_secret IS NULL
RETURNING id
"""
FINISH_CHANNEL_ROTATION = """
UPDATE channels SET previous_secret = NULL, updated_at = now()
WHERE platform = $1 AND shop_id = $2 AND secret IS NOT NULL AND previous_secret IS NOT NULL
RETURNING id
"""

SELECT_APPS = (
    "SELECT platform, app_key, secret, previous_secret, callback_url, "
    "(SELECT count(*) FROM channels c WHERE c.platform = a.platform AND c.app_key = a.app_key) "
    "AS channels FROM app_credentials a ORDER BY platform, app_key"
)
SELECT_APP = "SELECT 1 FROM app_credentials WHERE platform = $1 AND app_key = $2"
UPSERT_APP = """
INSERT INTO app_credentials (platform, app_key, secret, callback_url) VALUES ($1, $2, $3, $4)
ON CONFLICT (platform, app_key) DO UPDATE
SET secret = EXCLUDED.secret, previous_secret = NULL, callback_url = EXCLUDED.callback_url,
    updated_at = now()
WHERE $5
RETURNING platform
"""
DELETE_APP = """
DELETE FROM app_credentials a WHERE platform = $1 AND app_key = $2
AND NOT EXISTS (SELECT 1 FROM channels c WHERE c.platform = a.platform AND c.app_key = a.app_key)
RETURNING platform
"""
ROTATE_APP = """
UPDATE app_credentials SET previous_secret = secret, secret = $3, updated_at = now()
WHERE platform = $1 AND app_key = $2 AND previous_secret IS NULL
RETURNING platform
"""
FINISH_APP_ROTATION = """
UPDATE app_credentials SET previous_secret = NULL, updated_at = now()
WHERE platform = $1 AND app_key = $2 AND previous_secret IS NOT NULL
RETURNING platform
"""


def mask(secret: str | None) -> str:
    """A secret as the CLI shows it: its last four characters, and only when it is long."""
    if secret is None:
        return "-"
    tail = secret[-4:] if len(secret) >= 12 else ""
    return f"****{tail}"


@dataclass(frozen=True, slots=True)
class Channel:
    """A shop on a platform, and what verifies its webhooks (its own secret or its app's)."""

    platform: str
    shop_id: str
    secret: Secret | None = field(default=None, repr=False)
    currency: str | None = None
    app_key: str | None = None
    previous_secret: Secret | None = field(default=None, repr=False)
    app_secrets: tuple[Secret, ...] = field(default=(), repr=False)
    callback_url: str | None = None

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret that verifies this shop's deliveries, the current one first."""
        own = tuple(s.value for s in (self.secret, self.previous_secret) if s is not None)
        return own or tuple(s.value for s in self.app_secrets)

    @property
    def credentials(self) -> Credentials:
        return Credentials(self.secrets, app_key=self.app_key, callback_url=self.callback_url)

    @property
    def rotating(self) -> bool:
        return self.previous_secret is not None or len(self.app_secrets) > 1

    @property
    def masked_secret(self) -> str:
        return mask(self.secret.value) if self.secret else f"app {self.app_key}"


@dataclass(frozen=True, slots=True)
class AppCredential:
    """An app registered with a platform that signs every shop's deliveries (Shopee, Lazada,
    TikTok Shop). `callback_url` is the URL as registered (Shopee signs it)."""

    platform: str
    app_key: str
    secret: Secret = field(repr=False)
    callback_url: str | None = None
    previous_secret: Secret | None = field(default=None, repr=False)
    channels: int = 0


def _secret(value: str | None) -> Secret | None:
    return None if value is None else Secret(value)


def _channel(row: asyncpg.Record) -> Channel:
    # The app columns are NULL (or absent, in rows built by hand) for shop-secret channels.
    app = tuple(Secret(str(v)) for k in ("app_secret", "app_previous_secret") if (v := row.get(k)))
    return Channel(
        platform=row["platform"],
        shop_id=row["shop_id"],
        secret=_secret(row["secret"]),
        currency=row["currency"],
        app_key=row.get("app_key"),
        previous_secret=_secret(row.get("previous_secret")),
        app_secrets=app,
        callback_url=row.get("callback_url"),
    )


class ChannelStore:
    """Channels and app credentials in Postgres."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get(self, platform: str, shop_id: str) -> Channel | None:
        row = await self._pool.fetchrow(SELECT_CHANNEL, platform, shop_id)
        return None if row is None else _channel(row)

    async def list(self) -> list[Channel]:
        return [_channel(r) for r in await self._pool.fetch(SELECT_CHANNELS)]

    async def add(self, channel: Channel, *, replace: bool = False) -> bool:
        """Store a channel; False when it exists and `replace` was not asked for."""
        row = await self._pool.fetchrow(
            UPSERT_CHANNEL,
            channel.platform,
            channel.shop_id,
            channel.secret.value if channel.secret else None,
            channel.app_key,
            channel.currency,
            replace,
        )
        return row is not None

    async def remove(self, platform: str, shop_id: str) -> bool:
        return await self._pool.fetchrow(DELETE_CHANNEL, platform, shop_id) is not None

    async def rotate(self, platform: str, shop_id: str, new_secret: Secret | None) -> bool:
        """Start a rotation (the current secret stays valid beside `new_secret`), or finish one
        (`new_secret` None: only the current secret stays). False when no such shop secret, when
        finishing one that is not under way, or when starting one while another is under way
        (it would drop a secret still in use)."""
        if new_secret is None:
            row = await self._pool.fetchrow(FINISH_CHANNEL_ROTATION, platform, shop_id)
        else:
            row = await self._pool.fetchrow(ROTATE_CHANNEL, platform, shop_id, new_secret.value)
        return row is not None

    async def app_exists(self, platform: str, app_key: str) -> bool:
        return await self._pool.fetchrow(SELECT_APP, platform, app_key) is not None

    async def list_apps(self) -> builtins.list[AppCredential]:
        return [
            AppCredential(
                r["platform"],
                r["app_key"],
                Secret(r["secret"]),
                r["callback_url"],
                _secret(r["previous_secret"]),
                r["channels"],
            )
            for r in await self._pool.fetch(SELECT_APPS)
        ]

    async def add_app(self, app: AppCredential, *, replace: bool = False) -> bool:
        row = await self._pool.fetchrow(
            UPSERT_APP, app.platform, app.app_key, app.secret.value, app.callback_url, replace
        )
        return row is not None

    async def remove_app(self, platform: str, app_key: str) -> bool:
        """False when the app does not exist or channels still use it."""
        return await self._pool.fetchrow(DELETE_APP, platform, app_key) is not None

    async def rotate_app(self, platform: str, app_key: str, new_secret: Secret | None) -> bool:
        """As `rotate`, for an app's secret: False when no such app, when finishing a rotation
        that is not under way, or when starting one while another is."""
        if new_secret is None:
            row = await self._pool.fetchrow(FINISH_APP_ROTATION, platform, app_key)
        else:
            row = await self._pool.fetchrow(ROTATE_APP, platform, app_key, new_secret.value)
        return row is not None


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
