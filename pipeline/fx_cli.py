"""`pipeline fx refresh | show | history`: fetch and store exchange rates, and read them back.

Exit status: 0 on success (a refresh skipped because another one holds the lock included),
1 when no rates are to be had (no provider answered, nothing stored), 2 for a mistake in the
arguments or an unreachable Redis or Postgres.
"""

from __future__ import annotations

import argparse
import asyncio
import decimal
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime

import aiohttp
import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from pipeline.cli_common import CliError, with_db
from pipeline.endpoints import masked
from pipeline.fencing import StaleFence
from pipeline.fx import cache, store
from pipeline.fx.providers import AllProvidersFailed, RateProvider
from pipeline.fx.rates import RateSet, UnknownCurrency, is_currency
from pipeline.fx.refresh import LOCK, configured_providers, refresh
from pipeline.locks import LockLost, LockNotAcquired
from pipeline.settings import Settings

log = logging.getLogger("pipeline.fx")
_SHOWN = decimal.Context(prec=10)  # significant digits printed of a (crossed) rate


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `fx` subcommand."""
    fx = sub.add_parser("fx", help="exchange rates: refresh, show, history")
    actions = fx.add_subparsers(dest="action", required=True, metavar="ACTION")
    refresh_cmd = actions.add_parser(
        "refresh", help="fetch the newest rates (FX_PROVIDERS in order), store them"
    )
    refresh_cmd.add_argument(
        "--loop", action="store_true", help="again every FX_REFRESH_MINUTES, until stopped"
    )
    show = actions.add_parser("show", help="the rates in force now, or on a day")
    show.add_argument("--at", help="a day, YYYY-MM-DD (default: the newest rates)")
    show.add_argument("--base", help="express the rates against this currency (e.g. USD)")
    history = actions.add_parser("history", help="the stored snapshots, newest first")
    history.add_argument("--limit", type=int, default=30, help="at most this many (default 30)")


def _day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CliError(f"--at {text!r} is not a date (YYYY-MM-DD)") from None


def _currency(text: str | None) -> str | None:
    if text is not None and not is_currency(text.strip().upper()):
        raise CliError(f"--base {text!r} is not a currency code (three letters, e.g. USD)")
    return None if text is None else text.strip().upper()


async def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run `fx refresh`, `fx show` or `fx history`."""
    if args.action == "show":
        at, base = _day(args.at), _currency(args.base)
        return await _with_redis(settings, lambda redis: _show(settings, redis, at, base))
    if args.action == "history":
        if not 0 < args.limit <= 1000:
            raise CliError(f"--limit {args.limit} must be 1 to 1000")
        return await with_db(settings, lambda pool: _history(pool, args.limit))
    return await _with_redis(settings, lambda redis: _refresh(settings, redis, args.loop))


async def _with_redis(settings: Settings, action: Callable[[Redis], Awaitable[int]]) -> int:
    redis = Redis.from_url(settings.redis_url.value, socket_connect_timeout=5)
    try:
        return await action(redis)
    finally:
        await redis.aclose()


def _redis_unreachable(settings: Settings, exc: BaseException) -> CliError:
    return CliError(
        f"cannot reach Redis at {masked(settings.redis_url.value)} ({exc}); check REDIS_URL"
    )


async def _refresh(settings: Settings, redis: Redis, loop: bool) -> int:
    async def run(pool: asyncpg.Pool) -> int:
        async with aiohttp.ClientSession() as session:
            providers = configured_providers(settings, session)
            if not loop:
                print(await _refresh_once(settings, pool, redis, providers))
                return 0
            while True:  # until SIGINT/SIGTERM
                try:
                    log.info(await _refresh_once(settings, pool, redis, providers))
                except CliError as exc:
                    log.warning("fx refresh failed, will try again", extra={"error": str(exc)})
                await asyncio.sleep(settings.fx_refresh_minutes * 60)

    return await with_db(settings, run)


async def _refresh_once(
    settings: Settings, pool: asyncpg.Pool, redis: Redis, providers: list[RateProvider]
) -> str:
    """One refresh, described in one line; a CliError for what went wrong."""
    try:
        rates = await refresh(settings, pool, redis, providers, datetime.now(UTC).date())
    except LockNotAcquired:
        return f"skipped: another refresh holds the {LOCK!r} lock"
    except AllProvidersFailed as exc:
        raise CliError(str(exc), status=1) from None
    except (LockLost, StaleFence) as exc:
        raise CliError(f"refresh abandoned: {exc}", status=1) from None
    except (RedisError, OSError) as exc:
        raise _redis_unreachable(settings, exc) from None
    return (
        f"stored {len(rates.rates)} {rates.provider} rates against {rates.base} "
        f"as of {rates.as_of.isoformat()}; cached for {settings.fx_cache_ttl_s:g} s"
    )


async def _show(settings: Settings, redis: Redis, at: date | None, base: str | None) -> int:
    rates, source = None, "Postgres"
    if at is None:
        try:
            rates, source = await cache.get_latest(redis), "the Redis cache"
        except (RedisError, OSError):  # a cache only: Postgres has the same
            rates = None
    if rates is None:
        rates, source = await _stored(settings, at or datetime.now(UTC).date()), "Postgres"
    for line in render(rates, base or rates.base, source):
        print(line)
    return 0


async def _stored(settings: Settings, day: date) -> RateSet:
    """The stored rates in force on `day`, or a CliError (exit 1) when none are."""
    found: RateSet | None = None

    async def load(pool: asyncpg.Pool) -> int:
        nonlocal found
        async with pool.acquire() as conn:
            found = await store.load(conn, day, settings.fx_provider_names)
        return 0

    await with_db(settings, load)
    if found is None:
        raise CliError(
            f"no exchange rates stored on or before {day.isoformat()}; run `pipeline fx refresh`",
            status=1,
        )
    return found


def render(rates: RateSet, base: str, source: str) -> list[str]:
    """A header, then `QUOTE RATE` per currency: 1 `base` in each (crossed if needed)."""
    currencies = sorted({rates.base, *rates.rates} - {base})
    try:
        lines = [f"  {q} {_SHOWN.plus(rates.rate(base, q)):f}" for q in currencies]
    except UnknownCurrency as exc:
        raise CliError(str(exc), status=1) from None
    head = f"{rates.provider} rates as of {rates.as_of.isoformat()} (from {source}): 1 {base} ="
    return [head, *lines]


async def _history(pool: asyncpg.Pool, limit: int) -> int:
    async with pool.acquire() as conn:
        found = await store.snapshots(conn, date.max, limit)
    if not found:
        raise CliError("no exchange rates stored yet; run `pipeline fx refresh`", status=1)
    for s in found:
        print(
            f"{s.as_of.isoformat()}  {s.provider:<4} {s.base}  {s.quotes:>3} quotes  "
            f"fetched {s.fetched_at.astimezone(UTC).isoformat(timespec='seconds')}"
        )
    return 0
