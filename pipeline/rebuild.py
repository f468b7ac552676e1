"""Preparing a database for `pipeline rebuild`: migrated, holding no processed deliveries, and
with the operators' configuration (credentials, channels, warehouses, location mappings), which
the raw topic does not carry, copied from the live database."""

from __future__ import annotations

import asyncpg

from pipeline.migrations import migrate

# Configuration tables, parents first; what the raw topic cannot rebuild.
CONFIG_TABLES = ("app_credentials", "channels", "warehouses", "channel_locations")
# Tables that must be empty before a rebuild starts (processed deliveries and their results).
RESULT_TABLES = ("webhook_events", "commerce_events", "orders", "products", "dead_letters")
# bigserial ids copied with the rows; their sequences move past them.
_SERIALS = (("channels", "id"), ("warehouses", "id"))


class RebuildError(RuntimeError):
    """The target database is not fit for a rebuild; the message says why."""


async def prepare(target: asyncpg.Pool) -> list[str]:
    """Migrate the target; returns the migrations applied."""
    async with target.acquire() as conn:
        return await migrate(conn)


async def ensure_empty(target: asyncpg.Pool) -> None:
    """Refuse a target that already holds processed deliveries: a rebuild starts from nothing."""
    for table in RESULT_TABLES:
        # Table names are constants above, never input.
        if await target.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"):  # noqa: S608
            raise RebuildError(
                f"the target database already holds {table} rows; rebuild into an empty database "
                "(or resume an interrupted rebuild with --resume RUN)"
            )


async def copy_config(live: asyncpg.Pool, target: asyncpg.Pool) -> dict[str, int]:
    """Copy every configuration table the target lacks rows of; returns rows copied per table."""
    copied: dict[str, int] = {}
    async with target.acquire() as conn, conn.transaction():
        for table in CONFIG_TABLES:
            if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"):  # noqa: S608
                continue
            rows = await live.fetch(f"SELECT * FROM {table}")  # noqa: S608
            if rows:
                await conn.copy_records_to_table(
                    table, records=[tuple(r.values()) for r in rows], columns=list(rows[0].keys())
                )
            copied[table] = len(rows)
        for table, column in _SERIALS:
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"  # noqa: S608
                f" coalesce((SELECT max({column}) FROM {table}), 0) + 1, false)"
            )
    return copied


async def channel_count(target: asyncpg.Pool) -> int:
    return int(await target.fetchval("SELECT count(*) FROM channels"))
