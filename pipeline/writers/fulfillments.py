"""Fulfilments (shipments, packages) and the order fulfillment_status that follows them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from pipeline import sql
from pipeline.postgres import Connection
from pipeline.writers import Newest
from schemas.fulfillments import FulfillmentEvent
from schemas.orders import order_row_id


async def apply_fulfillments(
    conn: Connection, events: Sequence[FulfillmentEvent]
) -> set[uuid.UUID]:
    """Upsert the newest state per fulfilment, replace the lines of applied ones that list
    lines, and let their orders' fulfillment_status follow. Returns the stale event ids."""
    if not events:
        return set()
    newest = Newest(
        events, lambda e: e.fulfillment.row_id, lambda e: e.fulfillment.source_updated_at
    )
    chosen = newest.sorted()
    items = [e.fulfillment for e in chosen]
    order_ids = [order_row_id(f.platform, f.shop_id, f.order_external_id) for f in items]
    rows = await conn.fetch(
        sql.UPSERT_FULFILLMENTS,
        [f.row_id for f in items],
        [f.platform for f in items],
        [f.shop_id for f in items],
        [f.external_id for f in items],
        [f.order_external_id for f in items],
        order_ids,
        [f.status for f in items],
        [f.platform_status for f in items],
        [f.carrier for f in items],
        [f.tracking_number for f in items],
        [f.tracking_url for f in items],
        [f.source_updated_at for f in items],
        [e.event_id for e in chosen],
    )
    applied = {r["id"] for r in rows}
    with_lines = [f for f in items if f.row_id in applied and f.lines]
    if with_lines:
        await conn.execute(sql.DELETE_FULFILLMENT_LINES, [f.row_id for f in with_lines])
        lines = [(f.row_id, line) for f in with_lines for line in f.lines]
        await conn.execute(
            sql.INSERT_FULFILLMENT_LINES,
            [fid for fid, _ in lines],
            [ln.external_line_id for _, ln in lines],
            [ln.quantity for _, ln in lines],
        )
    touched = sorted({oid for f, oid in zip(items, order_ids, strict=True) if f.row_id in applied})
    if touched:
        await conn.execute(sql.FOLLOW_FULFILLMENT_STATUS, touched)
    return newest.stale(applied)
