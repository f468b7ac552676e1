"""One order's story: its stored state and every delivery and canonical event that touched it,
read for `pipeline orders show`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
import orjson

from pipeline import sql
from schemas.events import entity_key
from schemas.orders import order_row_id

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class OrderTrail:
    """What Postgres holds about one order; `order` is None when no row was ever written (its
    deliveries may still be there, dead-lettered or ignored)."""

    platform: str
    shop_id: str
    external_id: str
    order: Row | None = None
    lines: list[Row] = field(default_factory=list)
    reservations: list[Row] = field(default_factory=list)
    fulfillments: list[Row] = field(default_factory=list)
    deliveries: list[Row] = field(default_factory=list)
    events: list[Row] = field(default_factory=list)

    @property
    def found(self) -> bool:
        """Whether anything at all names this order."""
        return self.order is not None or any(
            (self.lines, self.reservations, self.fulfillments, self.deliveries, self.events)
        )


async def load_trail(
    pool: asyncpg.Pool, platform: str, shop_id: str, external_id: str
) -> OrderTrail:
    """Read everything about one order in one snapshot (a repeatable-read transaction), so the
    sections agree with each other even while the worker writes."""
    row_id = order_row_id(platform, shop_id, external_id)
    key = (platform, shop_id, external_id)
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        order = await conn.fetchrow(sql.SELECT_ORDER, *key)
        lines = await conn.fetch(sql.SELECT_ORDER_LINES, row_id)
        reservations = await conn.fetch(sql.SELECT_ORDER_RESERVATIONS, row_id)
        fulfillments = await conn.fetch(sql.SELECT_ORDER_FULFILLMENTS, row_id)
        deliveries = await conn.fetch(
            sql.SELECT_ORDER_DELIVERIES, *key, entity_key(platform, shop_id, "order", external_id)
        )
        events = await conn.fetch(sql.SELECT_ORDER_EVENTS, *key)
    return OrderTrail(
        *key,
        order=dict(order) if order is not None else None,
        lines=[dict(r) for r in lines],
        reservations=[dict(r) for r in reservations],
        fulfillments=[dict(r) for r in fulfillments],
        deliveries=[dict(r) for r in deliveries],
        events=[dict(r) for r in events],
    )


def timeline(trail: OrderTrail) -> list[Row]:
    """Deliveries and canonical events in the order the pipeline received them, each event
    right after the delivery that carried it (then by when it occurred)."""
    entries: list[tuple[tuple[datetime, int, datetime, str], Row]] = []
    for d in trail.deliveries:
        sort = (d["received_at"], 0, d["received_at"], f"{d['id']:020d}")
        entries.append((sort, _kind("delivery", d)))
    for e in trail.events:
        sort = (e["received_at"], 1, e["occurred_at"], str(e["event_id"]))
        entries.append((sort, _kind("event", e)))
    entries.sort(key=lambda entry: entry[0])
    return [row for _, row in entries]


def _kind(kind: str, row: Row) -> Row:
    return {"kind": kind, **row}


def reservation_state(row: Row) -> str:
    """`active`, `released` or `consumed` (shipped)."""
    if row["consumed_at"] is not None:
        return "consumed"
    return "released" if row["released_at"] is not None else "active"


def to_json(trail: OrderTrail) -> bytes:
    """The trail for machines: the sections as stored, and the timeline as `orders show`
    prints it. Amounts are decimal strings, times ISO 8601."""
    document = {
        "platform": trail.platform,
        "shop_id": trail.shop_id,
        "external_id": trail.external_id,
        "order": trail.order,
        "lines": trail.lines,
        "reservations": [{**r, "state": reservation_state(r)} for r in trail.reservations],
        "fulfillments": trail.fulfillments,
        "timeline": timeline(trail),
    }
    return orjson.dumps(document, default=_json_default, option=orjson.OPT_INDENT_2)


def _json_default(value: object) -> str:
    # asyncpg's UUID subclasses uuid.UUID, which orjson only encodes exactly.
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    raise TypeError(f"cannot serialize {type(value).__name__}")
