"""Durable exchange-rate snapshots in Postgres (`exchange_rates`), one per provider and day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from pipeline.fx.rates import RateSet
from pipeline.postgres import Connection
from pipeline.sql import INSERT_EXCHANGE_RATES, SELECT_EXCHANGE_RATE_DAYS, SELECT_EXCHANGE_RATES


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One stored rate set, without its rates: what `pipeline fx history` lists."""

    provider: str
    base: str
    as_of: date
    quotes: int
    fetched_at: datetime


async def save(conn: Connection, rates: RateSet) -> None:
    """Store `rates` (in the caller's transaction, if any)."""
    quotes = sorted(rates.rates)
    await conn.execute(
        INSERT_EXCHANGE_RATES,
        rates.provider,
        rates.base,
        rates.as_of,
        quotes,
        [rates.rates[q] for q in quotes],
    )


async def snapshots(conn: Connection, on_or_before: date, limit: int = 30) -> list[Snapshot]:
    """Stored snapshots of `on_or_before` or earlier, newest first."""
    rows = await conn.fetch(SELECT_EXCHANGE_RATE_DAYS, on_or_before, limit)
    return [Snapshot(**dict(row)) for row in rows]


async def load(conn: Connection, on_or_before: date, providers: tuple[str, ...]) -> RateSet | None:
    """The rates in force on `on_or_before`: the newest stored day, and on it the first of
    `providers` (the configured order) that has a snapshot; None if nothing is stored."""
    found = [s for s in await snapshots(conn, on_or_before, 50) if s.provider in providers]
    if not found:
        return None
    newest = found[0].as_of
    best = min((s for s in found if s.as_of == newest), key=lambda s: providers.index(s.provider))
    rows = await conn.fetch(SELECT_EXCHANGE_RATES, best.provider, best.base, best.as_of)
    return RateSet(best.provider, best.base, best.as_of, {r["quote"]: r["rate"] for r in rows})
