"""The Postgres sink: a batch of outcomes becomes rows in one transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace

import asyncpg

from pipeline import sql
from pipeline.outcomes import AuditRecord, Outcome
from pipeline.postgres import Connection
from schemas.events import to_json
from schemas.orders import Order, OrderEvent


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
            chosen = _newest_per_order(events)
            applied = await _upsert_orders(conn, chosen)
            await _replace_lines(conn, [e.order for e in chosen if e.order.row_id in applied])
            stale = {e.order.row_id for e in chosen} - applied
            audits = _final_audits(outcomes, new_ids, stale)
            inserted = await _insert_audits(conn, audits)
            await _insert_dead_letters(conn, [o for o in outcomes if o.dead_letter is not None])
        statuses: dict[str, int] = {}
        for status in inserted:
            statuses[status] = statuses.get(status, 0) + 1
        return WriteResult(
            statuses=statuses, new_events=len(new_ids), already_recorded=len(audits) - len(inserted)
        )


def _first_claims(outcomes: Sequence[Outcome]) -> list[OrderEvent]:
    """Each event id once per batch, claimed by the first delivery that carries it."""
    seen: set[uuid.UUID] = set()
    claims = []
    for outcome in outcomes:
        for event in outcome.events:
            if event.event_id not in seen:
                seen.add(event.event_id)
                claims.append(event)
    return claims


async def _insert_events(conn: Connection, events: list[OrderEvent]) -> set[uuid.UUID]:
    if not events:
        return set()
    rows = await conn.fetch(
        sql.INSERT_EVENTS,
        [e.event_id for e in events],
        [e.type for e in events],
        [e.order.platform for e in events],
        [e.order.shop_id for e in events],
        ["order"] * len(events),
        [e.order.external_id for e in events],
        [e.source.delivery_id for e in events],
        [to_json(e).decode("utf-8") for e in events],
        [e.occurred_at for e in events],
    )
    return {r["event_id"] for r in rows}


def _newest_per_order(events: list[OrderEvent]) -> list[OrderEvent]:
    """One snapshot per order (an upsert may touch a row once): the newest, later one on ties."""
    newest: dict[uuid.UUID, OrderEvent] = {}
    for event in events:
        key = event.order.row_id
        held = newest.get(key)
        if held is None or _version(event.order) >= _version(held.order):
            newest[key] = event
    return list(newest.values())


def _version(order: Order) -> float:
    return order.source_updated_at.timestamp() if order.source_updated_at else float("-inf")


async def _upsert_orders(conn: Connection, chosen: list[OrderEvent]) -> set[uuid.UUID]:
    """Offer each order's newest snapshot; returns the orders whose row took it."""
    if not chosen:
        return set()
    orders = [e.order for e in chosen]
    rows = await conn.fetch(
        sql.UPSERT_ORDERS,
        [o.row_id for o in orders],
        [o.platform for o in orders],
        [o.shop_id for o in orders],
        [o.external_id for o in orders],
        [o.order_number for o in orders],
        [o.status for o in orders],
        [o.financial_status for o in orders],
        [o.fulfillment_status for o in orders],
        [o.currency for o in orders],
        [o.total_amount for o in orders],
        [o.subtotal_amount for o in orders],
        [o.total_tax for o in orders],
        [o.customer_email for o in orders],
        [o.placed_at for o in orders],
        [o.cancelled_at for o in orders],
        [o.source_updated_at for o in orders],
        [e.event_id for e in chosen],
    )
    return {r["id"] for r in rows}


async def _replace_lines(conn: Connection, orders: list[Order]) -> None:
    if not orders:
        return
    await conn.execute(sql.DELETE_ORDER_LINES, [o.row_id for o in orders])
    lines = [(order.row_id, line) for order in orders for line in order.lines]
    if not lines:
        return
    await conn.execute(
        sql.INSERT_ORDER_LINES,
        [oid for oid, _ in lines],
        [ln.external_line_id for _, ln in lines],
        [ln.variant_id for _, ln in lines],
        [ln.product_id for _, ln in lines],
        [ln.sku for _, ln in lines],
        [ln.title for _, ln in lines],
        [ln.quantity for _, ln in lines],
        [ln.unit_price for _, ln in lines],
    )


def _final_audits(
    outcomes: Sequence[Outcome], new_ids: set[uuid.UUID], stale: set[uuid.UUID]
) -> list[AuditRecord]:
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
            elif all(e.order.row_id in stale for e in outcome.events):
                audit = replace(audit, status="STALE", error="a newer version is already stored")
        audits.append(audit)
    return audits


async def _insert_audits(conn: Connection, audits: list[AuditRecord]) -> list[str]:
    """Insert audit rows; returns the statuses of the rows that were new."""
    if not audits:
        return []
    rows = await conn.fetch(
        sql.INSERT_WEBHOOK_EVENTS,
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
