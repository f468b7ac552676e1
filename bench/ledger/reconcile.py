"""The proof: wait for the drain, then check Postgres against what was acknowledged."""

from __future__ import annotations

import asyncio
import time

import asyncpg

from bench.ledger.config import SHOP
from bench.ledger.state import Run
from bench.ledger.traffic import Delivery, count_reordered
from bench.sandbox import retrying
from pipeline.kafka import topic_names


async def stored_ids(run: Run, conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch(
        "SELECT external_event_id FROM webhook_events WHERE kafka_topic = $1"
        " AND topic LIKE 'orders/%'",  # not the stock set up before the traffic
        topic_names(run.settings).raw,
    )
    return {r["external_event_id"] for r in rows}


async def drain(run: Run, conn: asyncpg.Connection) -> None:
    cfg = run.cfg
    acked = run.acked_ids()
    timeout = cfg.drain_timeout_s or 120 + cfg.deliveries / 500
    began = time.monotonic()
    last_rows, stable_since, last_note = -1, time.monotonic(), 0.0
    while True:
        ids = await retrying(lambda: stored_ids(run, conn))
        rows = int(await conn.fetchval("SELECT count(*) FROM webhook_events"))
        now = time.monotonic()
        if rows != last_rows:
            last_rows, stable_since = rows, now
        have = len(ids & acked)
        if have == len(acked) and now - stable_since >= 2.0:
            run.result.drained = True
            break
        if now - began > timeout:
            run.say(f"drain timed out after {timeout:.0f} s: {have}/{len(acked)} stored")
            break
        if now - last_note > 10:
            run.say(f"draining: {have}/{len(acked)} acknowledged deliveries stored")
            last_note = now
        await asyncio.sleep(0.5)
    run.result.drain_s = time.monotonic() - began


async def reconcile(run: Run, conn: asyncpg.Connection) -> None:
    r = run.result
    raw = topic_names(run.settings).raw
    tried = {d.delivery_id for d, t in zip(run.deliveries, run.tried, strict=True) if t}
    acked = run.acked_ids()
    stored = await stored_ids(run, conn)
    r.sent, r.acknowledged = len(tried), len(acked)
    r.stored = len(acked & stored)
    r.missing = r.acknowledged - r.stored
    r.stored_unacknowledged = len(stored - acked)
    r.attempts = sum(run.outcomes.values())
    r.attempt_outcomes = dict(run.outcomes)
    r.posts = len(run.schedule)
    r.reordered = count_reordered(run.deliveries, run.schedule)
    if r.acknowledged < r.sent:
        r.problems.append(f"{r.sent - r.acknowledged} deliveries never got a 200")

    # Duplicates, computed rather than trusted to the unique constraints.
    checks = {
        "webhook_events": "SELECT count(*) - count(DISTINCT (platform, external_event_id))"
        " FROM webhook_events",
        "orders": "SELECT count(*) - count(DISTINCT (platform, shop_id, external_id)) FROM orders",
        "order_lines": "SELECT count(*) - count(DISTINCT (order_id, external_line_id))"
        " FROM order_lines",
        "commerce_events": "SELECT count(*) - count(DISTINCT event_id) FROM commerce_events",
        # Same change twice under different event ids would mean the ids are not stable.
        "commerce_events_content": "SELECT count(*) - count(DISTINCT"
        " (platform, shop_id, entity_id, type, occurred_at)) FROM commerce_events"
        " WHERE entity_type = 'order'",  # a stock event's entity is item and location
    }
    for name, query in checks.items():
        r.duplicated_by[name] = int(await conn.fetchval(query))
    r.duplicated = sum(r.duplicated_by.values())

    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM webhook_events WHERE kafka_topic = $1 GROUP BY status",
        raw,
    )
    r.statuses = {row["status"]: int(row["n"]) for row in rows}
    bad = {k: v for k, v in r.statuses.items() if k not in ("COMPLETED", "STALE", "DUPLICATE")}
    if bad:
        r.problems.append(f"valid deliveries recorded as {bad}")
    await check_state(run, conn, stored)
    await check_reservations(run, conn)


async def check_reservations(run: Run, conn: asyncpg.Connection) -> None:
    """Every stock level's reserved is the sum of its active reservations, and each order's
    active reservations are exactly its stored lines when it is paid, and none otherwise."""
    r = run.result
    levels = await conn.fetch(
        "SELECT l.id, l.reserved, COALESCE(sum(v.quantity), 0) AS active"
        " FROM inventory_levels l LEFT JOIN reservations v ON v.inventory_level_id = l.id"
        " AND v.released_at IS NULL AND v.consumed_at IS NULL GROUP BY l.id"
    )
    wrong = [
        f"level {row['id']}: reserved {row['reserved']}, active reservations {row['active']}"
        for row in levels
        if row["reserved"] != row["active"]
    ]
    rows = await conn.fetch(
        "SELECT o.external_id, o.status,"
        " (SELECT array_agg(l.external_line_id || ':' || l.quantity ORDER BY 1)"
        "  FROM order_lines l WHERE l.order_id = o.id AND l.quantity > 0) AS lines,"
        " (SELECT array_agg(v.external_line_id || ':' || v.quantity ORDER BY 1)"
        "  FROM reservations v WHERE v.order_id = o.id"
        "  AND v.released_at IS NULL AND v.consumed_at IS NULL) AS active"
        " FROM orders o WHERE o.platform = 'shopify' AND o.shop_id = $1",
        SHOP,
    )
    for row in rows:
        want = row["lines"] if row["status"] in ("paid", "partially_fulfilled") else None
        if sorted(want or []) != sorted(row["active"] or []):
            wrong.append(
                f"order {row['external_id']} ({row['status']}): active reservations "
                f"{row['active']}, lines {row['lines']}"
            )
    reserved = await conn.fetchval("SELECT COALESCE(sum(reserved), 0) FROM inventory_levels")
    if not levels or not reserved:
        wrong.append("no stock was ever reserved: the check would prove nothing")
    r.wrong_reservations = len(wrong)
    r.wrong_examples += wrong[:10]


async def check_state(run: Run, conn: asyncpg.Connection, stored: set[str]) -> None:
    """Each order holds its newest acknowledged version: time, status and lines."""
    r = run.result
    by_order: dict[int, list[tuple[Delivery, bool]]] = {}
    for d, ok, tried in zip(run.deliveries, run.acked, run.tried, strict=True):
        if tried:
            by_order.setdefault(d.order_id, []).append((d, ok))
    rows = await conn.fetch(
        "SELECT o.external_id, o.status, o.source_updated_at,"
        " array_agg(l.external_line_id || ':' || l.quantity)"
        " FILTER (WHERE l.order_id IS NOT NULL) AS lines"
        " FROM orders o LEFT JOIN order_lines l ON l.order_id = o.id"
        " WHERE o.platform = 'shopify' AND o.shop_id = $1 GROUP BY o.id",
        SHOP,
    )
    held = {int(row["external_id"]): row for row in rows}
    wrong: list[str] = []
    for order_id, versions in by_order.items():
        acked = [d for d, ok in versions if ok]
        if not acked:
            continue
        want = max(acked, key=lambda d: d.updated_at)
        # A delivery that never got its 200 may still have reached Kafka: newer is fine then.
        newer = [
            d
            for d, ok in versions
            if not ok and d.updated_at > want.updated_at and d.delivery_id in stored
        ]
        row = held.pop(order_id, None)
        if row is None:
            wrong.append(f"order {order_id}: no orders row (want {want.updated_at})")
            continue
        lines = frozenset(
            (k, int(q)) for k, _, q in (x.rpartition(":") for x in row["lines"] or [])
        )
        got = (row["source_updated_at"], row["status"], lines)
        if any(got == (d.updated_at, d.status, d.lines) for d in (want, *newer)):
            continue
        wrong.append(
            f"order {order_id}: holds {got[0]} {got[1]} {sorted(lines)}; newest acknowledged"
            f" is {want.updated_at} {want.status} {sorted(want.lines)} ({want.topic})"
        )
    wrong += [f"order {oid}: stored but never sent" for oid in held]
    r.wrong_state = len(wrong)
    r.wrong_examples = wrong[:10]
