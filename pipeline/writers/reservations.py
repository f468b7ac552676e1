"""Reservations follow each order's stored state, not the events that changed it: paid orders
reserve their lines (a line that changed gets a new reservation for its new quantity),
cancelled / refunded / returned ones release, fulfilled / completed ones consume. They are
reconciled for exactly the orders whose row changed in the same transaction, so replaying
events changes nothing, and `inventory_levels.reserved` moves only by the quantities of
reservations that changed state in the very statement that changed them."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Final

from pipeline import sql
from pipeline.postgres import Connection
from schemas.orders import OrderStatus

RESERVING: Final[frozenset[OrderStatus]] = frozenset({"paid", "partially_fulfilled"})
RELEASING: Final[frozenset[OrderStatus]] = frozenset({"cancelled", "refunded", "returned"})
CONSUMING: Final[frozenset[OrderStatus]] = frozenset({"fulfilled", "completed"})


async def reconcile(conn: Connection, statuses: Mapping[uuid.UUID, OrderStatus]) -> None:
    """Bring the reservations of the orders whose row just changed in line with their status.

    Each statement is keyed by order ids alone, so its cost follows the batch, never the size
    of the tables (young tables' statistics once made a join here scan every reservation).
    """
    for statement, wanted in (
        (sql.RELEASE_RESERVATIONS, RELEASING),
        (sql.CONSUME_RESERVATIONS, CONSUMING),
        (sql.RELEASE_CHANGED_LINES, RESERVING),
        (sql.RESERVE_ORDER_LINES, RESERVING),
    ):
        ids = sorted(oid for oid, status in statuses.items() if status in wanted)
        if ids:  # sorted: one lock order for every worker
            await conn.execute(statement, ids)
