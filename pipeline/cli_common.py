"""What every CLI command shares: the user-facing error and a database connection."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg

from pipeline.errors import DependencyError
from pipeline.postgres import create_pool
from pipeline.settings import Settings


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


async def with_db(settings: Settings, action: Callable[[asyncpg.Pool], Awaitable[int]]) -> int:
    """Run `action` with a pool; an unreachable database is a CliError naming it."""
    try:
        pool = await create_pool(settings)
    except DependencyError as exc:
        raise CliError(str(exc)) from None
    try:
        return await action(pool)
    finally:
        await pool.close()
