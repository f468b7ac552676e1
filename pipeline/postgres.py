"""Postgres: the connection pool and which of its errors mean "wait and try again"."""

from __future__ import annotations

from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from pipeline.settings import Settings

Connection: TypeAlias = asyncpg.Connection | PoolConnectionProxy

# Connection-level failures (Postgres down, restarting, out of connections) and transaction
# rollbacks (deadlock, serialization failure) that succeed when tried again.
_RETRIABLE_SQLSTATE_CLASSES = ("08", "40", "53", "57", "58")


async def create_pool(settings: Settings, *, min_size: int = 1) -> asyncpg.Pool:
    """Open the pool; fails fast when Postgres is not there."""
    pool = await asyncpg.create_pool(
        dsn=settings.database_dsn,
        min_size=min_size,
        max_size=settings.db_pool_max,
        command_timeout=60,
        timeout=10,
    )
    assert pool is not None
    return pool


def is_retriable(exc: BaseException) -> bool:
    """True for outages and restarts (retry without committing), False for bad data."""
    if isinstance(exc, OSError | TimeoutError | asyncpg.InterfaceError):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = getattr(exc, "sqlstate", None) or ""
        return sqlstate[:2] in _RETRIABLE_SQLSTATE_CLASSES
    return False
