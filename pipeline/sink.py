"""The Postgres sink: a batch of outcomes becomes rows in one transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

import asyncpg

from pipeline import sql
from pipeline.outcomes import AuditRecord, Outcome
from pipeline.postgres import Connection
from pipeline.writers import fulfillments, inventory, orders, products, reservations
from schemas.catalogue import AnyEvent
from schemas.events import to_json
from schemas.fulfillments import FulfillmentEvent
from schemas.inventory import InventoryLevelEvent
from schemas.orders import OrderEvent, OrderStatusEvent
from schemas.products import PriceEvent, ProductEvent

E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What the transaction did: new audit rows per status, new events, redelivered deliveries."""

    statuses: dict[str, int]
    new_events: int
    already_recorded: int = 0


class PostgresSink:
    """Writes outcomes idempotently: replaying a batch changes nothing."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def write(self, outcomes: Sequence[Outcome]) -> WriteResult:
        """One transaction for the whole batch; raises on any database error (nothing written)."""
        async with self._pool.acquire() as conn, conn.transaction():
            events = _first_claims(outcomes)
            new_ids = await _insert_events(conn, events)
            stale = await _apply(conn, events)
            audits = _final_audits(outcomes, new_ids, stale)
            inserted = await _insert_audits(conn, audits)
            await _insert_dead_letters(conn, [o for o in outcomes if o.dead_letter is not None])
        statuses: dict[str, int] = {}
        for status in inserted:
            statuses[status] = statuses.get(status, 0) + 1
        return WriteResult(
            statuses=statuses, new_events=len(new_ids), already_recorded=len(audits) - len(inserted)
        )


async def _apply(conn: Connection, events: list[AnyEvent]) -> set[uuid.UUID]:
    """Bring entity tables up to date; returns the ids of events newer state superseded.

    Products come first so stock levels and reservations can resolve their variants; orders
    before fulfilments and reservations, which follow the order's stored state.
    """
    stale: set[uuid.UUID] = set()
    stale |= await products.apply_products(conn, _of(events, ProductEvent))
    stale |= await products.apply_prices(conn, _of(events, PriceEvent))
    stale |= await inventory.apply_levels(conn, _of(events, InventoryLevelEvent))
    written = orders.OrderWrites()
    await orders.apply_snapshots(conn, _of(events, OrderEvent), written)
    await orders.apply_status_changes(conn, _of(events, OrderStatusEvent), written)
    stale |= written.stale
    stale |= await fulfillments.apply_fulfillments(conn, _of(events, FulfillmentEvent))
    await reservations.reconcile(conn, written.statuses)
    return stale


def _of(events: list[AnyEvent], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


def _first_claims(outcomes: Sequence[Outcome]) -> list[AnyEvent]:
    """Each event id once per batch, claimed by the first delivery that carries it."""
    seen: set[uuid.UUID] = set()
    claims = []
    for outcome in outcomes:
        for event in outcome.events:
            if event.event_id not in seen:
                seen.add(event.event_id)
                claims.append(event)
    return claims


async def _insert_events(conn: Connection, events: list[AnyEvent]) -> set[uuid.UUID]:
    if not events:
        return set()
    rows = await conn.fetch(
        sql.INSERT_EVENTS,
        [e.event_id for e in events],
        [e.type for e in events],
        [e.source.platform for e in events],
        [e.source.shop_id for e in events],
        [e.entity_type for e in events],
        [e.entity_id for e in events],
        [e.source.delivery_id for e in events],
        [to_json(e).decode("utf-8") for e in events],
        [e.occurred_at for e in events],
    )
    return {r["event_id"] for r in rows}


def _final_audits(
    outcomes: Sequence[Outcome], new_ids: set[uuid.UUID], stale: set[uuid.UUID]
) -> list[AuditRecord]:
    """`stale` holds event ids: a delivery all of whose events were superseded is STALE."""
    """COMPLETED unless every event was known (DUPLICATE) or the stored state is newer (STALE)."""
    audits = []
    unclaimed = set(new_ids)  # an event new to Postgres counts for the first delivery carrying it
    for outcome in outcomes:
        audit = outcome.audit
        if audit is None:
            continue
        if audit.status == "COMPLETED" and outcome.events:
            claimed = {e.event_id for e in outcome.events} & unclaimed
            unclaimed -= claimed
            if not claimed:
                audit = replace(audit, status="DUPLICATE")
            elif all(e.event_id in stale for e in outcome.events):
                audit = replace(audit, status="STALE", error="a newer version is already stored")
        audits.append(audit)
    return audits


async def _insert_audits(conn: Connection, audits: list[AuditRecord]) -> list[str]:
    """Insert audit rows; returns the statuses of the rows that were new (or moved on).

    Replayed deliveries take their own statement, which may also move an IGNORED or
    dead-lettered row on once today's code handles the delivery differently.
    """
    live = await _upsert_audits(
        conn, sql.INSERT_WEBHOOK_EVENTS, [a for a in audits if not a.replay]
    )
    replayed = [a for a in audits if a.replay]
    return live + await _upsert_audits(conn, sql.UPSERT_REPLAYED_WEBHOOK_EVENTS, replayed)


async def _upsert_audits(conn: Connection, statement: str, audits: list[AuditRecord]) -> list[str]:
    if not audits:
        return []
    rows = await conn.fetch(
        statement,
        [a.platform for a in audits],
        [a.shop_id for a in audits],
        [a.topic for a in audits],
        [a.delivery_id for a in audits],
        [a.source_event_id for a in audits],
        [a.entity_key for a in audits],
        [a.status for a in audits],
        [a.error for a in audits],
        [a.received_at for a in audits],
        [a.source.topic for a in audits],
        [a.source.partition for a in audits],
        [a.source.offset for a in audits],
        [a.attempts for a in audits],
    )
    return [r["status"] for r in rows]


async def _insert_dead_letters(conn: Connection, outcomes: list[Outcome]) -> None:
    letters = [(o.audit, o.dead_letter) for o in outcomes if o.dead_letter is not None]
    if not letters:
        return
    await conn.execute(
        sql.INSERT_DEAD_LETTERS,
        [a.platform if a else None for a, _ in letters],
        [a.shop_id if a else None for a, _ in letters],
        [a.topic if a else None for a, _ in letters],
        [a.delivery_id if a else None for a, _ in letters],
        [d.error_class for _, d in letters],
        [d.error for _, d in letters],
        [d.attempts for _, d in letters],
        [d.first_failure for _, d in letters],
        [d.failed_at for _, d in letters],
        [d.source.topic for _, d in letters],
        [d.source.partition for _, d in letters],
        [d.source.offset for _, d in letters],
        [d.source.key for _, d in letters],
        [d.source.value for _, d in letters],
    )
