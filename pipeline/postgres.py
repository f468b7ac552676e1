"""Postgres: the connection pool."""

from __future__ import annotations

from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from pipeline.settings import Settings

Connection: TypeAlias = asyncpg.Connection | PoolConnectionProxy


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
