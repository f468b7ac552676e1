"""Postgres: the connection pool."""

from __future__ import annotations

from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from pipeline.errors import DependencyError
from pipeline.settings import Settings

Connection: TypeAlias = asyncpg.Connection | PoolConnectionProxy


async def create_pool(settings: Settings, *, min_size: int = 1) -> asyncpg.Pool:
    """Open the pool; fails fast, with a DependencyError naming DATABASE_URL, when Postgres is
    not there or refuses us."""
    try:
        pool = await asyncpg.create_pool(
            dsn=settings.database_dsn,
            min_size=min_size,
            max_size=settings.db_pool_max,
            command_timeout=60,
            timeout=10,
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DependencyError(_refusal(settings, exc), cause=exc) from exc
    assert pool is not None
    return pool


def _refusal(settings: Settings, exc: BaseException) -> str:
    where = settings.database_url_masked
    if isinstance(exc, asyncpg.PostgresError):  # it answered: credentials or database name
        return f"Postgres at {where} refused the connection: {exc}; check DATABASE_URL"
    detail = str(exc) or type(exc).__name__
    return (
        f"cannot reach Postgres at {where} ({detail}); check DATABASE_URL, "
        "or start it with `make services`"
    )
