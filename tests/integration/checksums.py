"""Per-table checksums of what the pipeline derives from the raw topic, comparable between two
databases: order-independent, and blind to what differs by construction.

Left out, and why:
- serial ids (webhook_events.id, inventory_levels.id, reservations.id, dead_letters.id): each
  database numbers its own rows; references to them are followed to natural keys instead
  (reservations -> the stock level's platform/shop/item/location, warehouses -> their code);
- times we set ourselves: created_at, updated_at, processed_at, recorded_at, and
  reservations.released_at/consumed_at and dead_letters.first/last_failed_at (the moment of
  processing), kept only as "set or not" where that carries meaning;
- dead_letters.replayed_at/replay_count: operator actions, not derived from the topic;
- which stock level holds a reservation, its backordered part and so each level's `reserved`:
  the reservation goes to the level with the most free stock at the moment, which depends on
  how orders of different partitions interleaved (not recorded anywhere, so a rebuild cannot
  reproduce it). What is compared instead: every reservation's order, line, variant, quantity
  and state, and the reserved total per variant (`reserved_by_variant`).
"""

from __future__ import annotations

import asyncpg

# table -> a SELECT of the compared columns, one row per table row.
TABLES: dict[str, str] = {
    "webhook_events": """
        SELECT platform, shop_id, topic, external_event_id, source_event_id, entity_key, status,
               attempts, error, received_at, kafka_topic, kafka_partition, kafka_offset
        FROM webhook_events""",
    "commerce_events": """
        SELECT event_id, type, platform, shop_id, entity_type, entity_id, delivery_id, payload,
               occurred_at
        FROM commerce_events""",
    "orders": """
        SELECT id, platform, shop_id, external_id, order_number, status, financial_status,
               fulfillment_status, currency, total_amount, subtotal_amount, total_tax,
               customer_email, placed_at, cancelled_at, source_updated_at, last_event_id,
               platform_status
        FROM orders""",
    "order_lines": "SELECT * FROM order_lines",
    "products": """
        SELECT id, platform, shop_id, external_id, title, status, deleted_at, source_updated_at,
               last_event_id
        FROM products""",
    "product_variants": """
        SELECT id, product_id, platform, shop_id, external_variant_id, sku, title, price,
               currency, inventory_item_id, deleted_at, source_updated_at
        FROM product_variants""",
    "inventory_levels": """
        SELECT l.platform, l.shop_id, l.inventory_item_id, l.location_id, w.code, l.variant_id,
               l.sku, l.available, l.connected, l.source_updated_at, l.last_event_id
        FROM inventory_levels l JOIN warehouses w ON w.id = l.warehouse_id""",
    "reserved_by_variant": """
        SELECT platform, shop_id, variant_id, sum(reserved) FROM inventory_levels
        GROUP BY platform, shop_id, variant_id""",
    "fulfillments": """
        SELECT id, platform, shop_id, external_id, order_external_id, order_id, status,
               platform_status, carrier, tracking_number, tracking_url, source_updated_at,
               last_event_id
        FROM fulfillments""",
    "fulfillment_lines": "SELECT * FROM fulfillment_lines",
    "reservations": """
        SELECT order_id, external_line_id, variant_id, sku, quantity,
               released_at IS NOT NULL AS released, consumed_at IS NOT NULL AS consumed
        FROM reservations""",
    "dead_letters": """
        SELECT platform, shop_id, topic, delivery_id, error_class, error, attempts,
               source_topic, source_partition, source_offset, message_key, payload
        FROM dead_letters""",
}


async def checksums(conn: asyncpg.Connection) -> dict[str, tuple[int, str]]:
    """table -> (rows, md5 of the sorted md5s of each row's text)."""
    found = {}
    for table, select in TABLES.items():
        row = await conn.fetchrow(
            f"SELECT count(*) AS n, md5(coalesce(string_agg(h, '' ORDER BY h), '')) AS sum"
            f" FROM (SELECT md5(t::text) AS h FROM ({select}) t) hashed"
        )
        assert row is not None
        found[table] = (int(row["n"]), str(row["sum"]))
    return found


async def checksums_of(dsn: str) -> dict[str, tuple[int, str]]:
    conn = await asyncpg.connect(dsn)
    try:
        return await checksums(conn)
    finally:
        await conn.close()


async def differences(dsn_a: str, dsn_b: str, limit: int = 5) -> str:
    """For a failing comparison: per differing table, a few rows only one side has."""
    a, b = await asyncpg.connect(dsn_a), await asyncpg.connect(dsn_b)
    try:
        report = []
        for table, select in TABLES.items():
            rows_a = {str(tuple(r.values())) for r in await a.fetch(select)}
            rows_b = {str(tuple(r.values())) for r in await b.fetch(select)}
            if rows_a == rows_b:
                continue
            report.append(
                f"{table}: {len(rows_a - rows_b)} only in A, {len(rows_b - rows_a)} only in B"
            )
            report += [f"  A {row}" for row in sorted(rows_a - rows_b)[:limit]]
            report += [f"  B {row}" for row in sorted(rows_b - rows_a)[:limit]]
        return "\n".join(report)
    finally:
        await a.close()
        await b.close()
