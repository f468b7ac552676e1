"""Reservations follow each order's stored state, not the events that changed it: paid orders
reserve their lines, cancelled / refunded / returned ones release, fulfilled / completed ones
consume. So replaying any events changes nothing, and `inventory_levels.reserved` moves only by
the quantities of reservations that changed state in this very statement."""

from __future__ import annotations

import uuid
from collections.abc import Collection

from pipeline import sql
from pipeline.postgres import Connection


async def reconcile(conn: Connection, order_ids: Collection[uuid.UUID]) -> None:
    """Bring the reservations of these orders in line with their stored status and lines."""
    if not order_ids:
        return
    ids = sorted(order_ids)  # one lock order for every worker
    await conn.execute(sql.RELEASE_RESERVATIONS, ids)
    await conn.execute(sql.CONSUME_RESERVATIONS, ids)
    await conn.execute(sql.RESERVE_ORDER_LINES, ids)
