"""The proof: wait for the drain, then check Postgres against what was acknowledged."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import asyncpg

from bench.ledger.config import SHOP
from bench.ledger.marketplaces import SHOPS as MARKETPLACE_SHOPS
from bench.ledger.state import Run
from bench.ledger.traffic import Delivery, count_reordered
from bench.sandbox import retrying
from pipeline.kafka import topic_names

SHOPS = [SHOP, *(shop.shop_id for shop in MARKETPLACE_SHOPS.values())]  # the ledger's shops


async def stored_ids(run: Run, conn: asyncpg.Connection) -> set[str]:
    """The delivery ids of the traffic's stored deliveries."""
    return set(await stored_platforms(run, conn))


async def stored_platforms(run: Run, conn: asyncpg.Connection) -> dict[str, str]:
    """Delivery id -> platform of each stored delivery of the traffic (of its topics, so not
    the stock set up before it)."""
    rows = await conn.fetch(
        "SELECT platform, external_event_id FROM webhook_events WHERE kafka_topic = $1"
        " AND topic = ANY($2::text[])",
        topic_names(run.settings).raw,
        sorted({d.topic for d in run.deliveries}),
    )
    return {r["external_event_id"]: r["platform"] for r in rows}


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
    """Every check, into the run's result."""
    r = run.result
    tried = {d.delivery_id for d, t in zip(run.deliveries, run.tried, strict=True) if t}
    acked = run.acked_ids()
    stored_by = await stored_platforms(run, conn)
    stored = set(stored_by)
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
    if run.bad_answers:
        r.problems.append(
            f"{len(run.bad_answers)} answers of 200 were not what the platform expects, "
            f"e.g. {run.bad_answers[0]}"
        )
    _tally(run, stored)
    await count_duplicates(run, conn, stored_by)
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM webhook_events WHERE kafka_topic = $1 GROUP BY status",
        topic_names(run.settings).raw,
    )
    r.statuses = {row["status"]: int(row["n"]) for row in rows}
    bad = {k: v for k, v in r.statuses.items() if k not in ("COMPLETED", "STALE", "DUPLICATE")}
    if bad:
        r.problems.append(f"valid deliveries recorded as {bad}")
    await check_state(run, conn, stored)
    await check_reservations(run, conn)


def _tally(run: Run, stored: set[str]) -> None:
    """Each platform's deliveries sent, acknowledged, stored and missing, and its orders."""
    tallies = run.result.platforms
    orders: dict[str, set[str]] = {}
    for d, ok, tried in zip(run.deliveries, run.acked, run.tried, strict=True):
        tally = tallies.setdefault(d.platform, Counter())
        orders.setdefault(d.platform, set()).add(d.order_id)
        tally["sent"] += tried
        tally["acknowledged"] += ok
        tally["stored"] += ok and d.delivery_id in stored
    for platform, tally in tallies.items():
        tally["missing"] = tally["acknowledged"] - tally["stored"]
        tally["orders"] = len(orders[platform])


# Duplicates per platform, computed rather than trusted to the unique constraints.
DUPLICATES = {
    "webhook_events": "SELECT platform, count(*) - count(DISTINCT external_event_id) AS n"
    " FROM webhook_events GROUP BY 1",
    "orders": "SELECT platform, count(*) - count(DISTINCT (shop_id, external_id)) AS n"
    " FROM orders GROUP BY 1",
    "order_lines": "SELECT o.platform, count(*) - count(DISTINCT (l.order_id, l.external_line_id))"
    " AS n FROM order_lines l JOIN orders o ON o.id = l.order_id GROUP BY 1",
    "commerce_events": "SELECT platform, count(*) - count(DISTINCT event_id) AS n"
    " FROM commerce_events GROUP BY 1",
    # Same change twice under different event ids would mean the ids are not stable.
    "commerce_events_content": "SELECT platform, count(*) - count(DISTINCT"
    " (shop_id, entity_id, type, occurred_at)) AS n FROM commerce_events"
    " WHERE entity_type = 'order' GROUP BY 1",  # a stock event's entity is item and location
}


async def count_duplicates(run: Run, conn: asyncpg.Connection, stored_by: dict[str, str]) -> None:
    """Rows stored twice, by table and by platform; and deliveries stored under an id no
    planned delivery has (a delivery the pipeline identified otherwise on some send)."""
    r = run.result
    found: list[tuple[str, int]] = []
    for name, query in DUPLICATES.items():
        rows = [(row["platform"], int(row["n"])) for row in await conn.fetch(query)]
        r.duplicated_by[name] = sum(n for _, n in rows)
        found += rows
    planned = {d.delivery_id for d in run.deliveries}
    unplanned = [(platform, 1) for i, platform in stored_by.items() if i not in planned]
    r.duplicated_by["webhook_events_unplanned_ids"] = len(unplanned)
    for platform, n in found + unplanned:
        r.platforms.setdefault(platform, Counter())["duplicated"] += n
    r.duplicated = sum(r.duplicated_by.values())


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
        "SELECT o.platform, o.external_id, o.status,"
        " (SELECT array_agg(l.external_line_id || ':' || l.quantity ORDER BY 1)"
        "  FROM order_lines l WHERE l.order_id = o.id AND l.quantity > 0) AS lines,"
        " (SELECT array_agg(v.external_line_id || ':' || v.quantity ORDER BY 1)"
        "  FROM reservations v WHERE v.order_id = o.id"
        "  AND v.released_at IS NULL AND v.consumed_at IS NULL) AS active"
        " FROM orders o WHERE o.shop_id = ANY($1::text[])",
        SHOPS,
    )
    for row in rows:
        want = row["lines"] if row["status"] in ("paid", "partially_fulfilled") else None
        if sorted(want or []) != sorted(row["active"] or []):
            wrong.append(
                f"{row['platform']} order {row['external_id']} ({row['status']}): active"
                f" reservations {row['active']}, lines {row['lines']}"
            )
    reserved = await conn.fetchval("SELECT COALESCE(sum(reserved), 0) FROM inventory_levels")
    if not levels or not reserved:
        wrong.append("no stock was ever reserved: the check would prove nothing")
    r.wrong_reservations = len(wrong)
    r.wrong_examples += wrong[:10]


async def check_state(run: Run, conn: asyncpg.Connection, stored: set[str]) -> None:
    """Each order holds its newest acknowledged version: time, status, platform status and
    lines (none for a thin push's order)."""
    r = run.result
    by_order: dict[tuple[str, str], list[tuple[Delivery, bool]]] = {}
    for d, ok, tried in zip(run.deliveries, run.acked, run.tried, strict=True):
        if tried:
            by_order.setdefault(d.order_key, []).append((d, ok))
    rows = await conn.fetch(
        "SELECT o.platform, o.external_id, o.status, o.platform_status, o.source_updated_at,"
        " array_agg(l.external_line_id || ':' || l.quantity)"
        " FILTER (WHERE l.order_id IS NOT NULL) AS lines"
        " FROM orders o LEFT JOIN order_lines l ON l.order_id = o.id"
        " WHERE o.shop_id = ANY($1::text[]) GROUP BY o.id",
        SHOPS,
    )
    held = {(row["platform"], row["external_id"]): row for row in rows}
    wrong: list[tuple[str, str]] = []
    for (platform, order_id), versions in by_order.items():
        problem = _order_problem(versions, held.pop((platform, order_id), None), stored)
        if problem is not None:
            wrong.append((platform, f"{platform} order {order_id}: {problem}"))
    wrong += [(p, f"{p} order {oid}: stored but never sent") for p, oid in held]
    r.wrong_state = len(wrong)
    for platform, _ in wrong:
        r.platforms.setdefault(platform, Counter())["wrong_state"] += 1
    # A few examples of each platform's, so one platform's many cannot hide another's.
    examples: dict[str, list[str]] = {}
    for platform, text in wrong:
        examples.setdefault(platform, []).append(text)
    r.wrong_examples = [text for texts in examples.values() for text in texts[:4]]


def _order_problem(
    versions: list[tuple[Delivery, bool]], row: asyncpg.Record | None, stored: set[str]
) -> str | None:
    """What is wrong with one order's row, given its deliveries; None when it is right."""
    acked = [d for d, ok in versions if ok]
    if not acked:
        return None
    want = max(acked, key=lambda d: d.updated_at)
    if row is None:
        return f"no orders row (want {want.updated_at})"
    # A delivery that never got its 200 may still have reached Kafka: newer is fine then.
    newer = [
        d
        for d, ok in versions
        if not ok and d.updated_at > want.updated_at and d.delivery_id in stored
    ]
    lines = frozenset((k, int(q)) for k, _, q in (x.rpartition(":") for x in row["lines"] or []))
    got = (row["source_updated_at"], row["status"], row["platform_status"], lines)
    if any(got == (d.updated_at, d.status, d.platform_status, d.lines) for d in (want, *newer)):
        return None
    return (
        f"holds {got[0]} {got[1]} {got[2]} {sorted(lines)}; newest acknowledged is"
        f" {want.updated_at} {want.status} {want.platform_status} {sorted(want.lines)}"
        f" ({want.topic} {want.delivery_id})"
    )
