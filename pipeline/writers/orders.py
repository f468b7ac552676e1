"""Orders: full snapshots (newest `updated_at` wins, lines replaced) and thin status changes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from pipeline import sql
from pipeline.postgres import Connection
from pipeline.writers import Newest
from schemas.orders import Order, OrderEvent, OrderStatus, OrderStatusEvent


@dataclass(slots=True)
class OrderWrites:
    """What the order writers did: superseded events, and each changed order's status now."""

    stale: set[uuid.UUID] = field(default_factory=set)
    statuses: dict[uuid.UUID, OrderStatus] = field(default_factory=dict)


def snapshots(events: Sequence[OrderEvent]) -> Newest[OrderEvent, uuid.UUID]:
    """One snapshot per order (an upsert may touch a row once): the newest, later one on ties."""
    return Newest(events, lambda e: e.order.row_id, lambda e: e.order.source_updated_at)


async def apply_snapshots(
    conn: Connection, events: Sequence[OrderEvent], writes: OrderWrites
) -> None:
    """Upsert each order's newest snapshot and replace its lines."""
    if not events:
        return
    newest = snapshots(events)
    chosen = newest.sorted()
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
        [o.platform_status for o in orders],
    )
    applied = {r["id"] for r in rows}
    await _replace_lines(conn, [o for o in orders if o.row_id in applied])
    writes.stale |= newest.stale(applied)
    writes.statuses.update({o.row_id: o.status for o in orders if o.row_id in applied})


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


async def apply_status_changes(
    conn: Connection, events: Sequence[OrderStatusEvent], writes: OrderWrites
) -> None:
    """Set each order's status from its newest push, creating a minimal row (no amounts, no
    lines) for an order not seen yet. Runs after the snapshots: its status is the final one."""
    if not events:
        return
    newest = Newest(events, lambda e: e.order.row_id, lambda e: e.order.source_updated_at)
    chosen = newest.sorted()
    rows = await conn.fetch(
        sql.UPSERT_ORDER_STATUSES,
        [e.order.row_id for e in chosen],
        [e.order.platform for e in chosen],
        [e.order.shop_id for e in chosen],
        [e.order.external_id for e in chosen],
        [e.order.status for e in chosen],
        [e.order.platform_status for e in chosen],
        [e.order.source_updated_at for e in chosen],
        [e.event_id for e in chosen],
    )
    applied = {r["id"] for r in rows}
    writes.stale |= newest.stale(applied)
    writes.statuses.update(
        {e.order.row_id: e.order.status for e in chosen if e.order.row_id in applied}
    )
