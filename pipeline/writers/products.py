"""Products and their variants (full snapshots, thin pushes, deletes) and price pushes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from pipeline import sql
from pipeline.postgres import Connection
from pipeline.writers import Newest
from schemas.products import PriceEvent, ProductEvent, product_row_id, variant_row_id


async def apply_products(conn: Connection, events: Sequence[ProductEvent]) -> set[uuid.UUID]:
    """Upsert products; for applied ones write their variants and retire variants a complete
    snapshot (or a delete) no longer lists. Returns the stale event ids."""
    if not events:
        return set()
    newest = Newest(events, lambda e: e.product.row_id, lambda e: e.product.source_updated_at)
    chosen = newest.sorted()
    products = [e.product for e in chosen]
    rows = await conn.fetch(
        sql.UPSERT_PRODUCTS,
        [p.row_id for p in products],
        [p.platform for p in products],
        [p.shop_id for p in products],
        [p.external_id for p in products],
        [p.title for p in products],
        [p.status for p in products],
        [e.occurred_at if e.product.deleted else None for e in chosen],
        [p.source_updated_at for p in products],
        [e.event_id for e in chosen],
    )
    applied = {r["id"] for r in rows}
    live = [p for p in products if p.row_id in applied and not p.deleted]
    variants = [(p, v) for p in live for v in p.variants]
    variant_ids: list[uuid.UUID] = []
    if variants:
        variant_ids = [
            variant_row_id(p.platform, p.shop_id, v.external_variant_id) for p, v in variants
        ]
        await conn.execute(
            sql.UPSERT_VARIANTS,
            variant_ids,
            [p.row_id for p, _ in variants],
            [p.platform for p, _ in variants],
            [p.shop_id for p, _ in variants],
            [v.external_variant_id for _, v in variants],
            [v.sku for _, v in variants],
            [v.title for _, v in variants],
            [v.price for _, v in variants],
            [v.currency for _, v in variants],
            [v.inventory_item_id for _, v in variants],
            [v.source_updated_at or p.source_updated_at for p, v in variants],
        )
        await conn.execute(sql.RESOLVE_LEVEL_VARIANTS, variant_ids)
    retiring = [p.row_id for p in products if p.row_id in applied and (p.complete or p.deleted)]
    if retiring:
        await conn.execute(sql.RETIRE_VARIANTS, retiring, variant_ids)
    return newest.stale(applied)


async def apply_prices(conn: Connection, events: Sequence[PriceEvent]) -> set[uuid.UUID]:
    """Set variant prices from price pushes, newest wins; a product or variant not seen yet gets
    a minimal row. Returns the stale event ids."""
    if not events:
        return set()
    newest = Newest(events, _variant_of, lambda e: e.price.source_updated_at)
    chosen = newest.sorted()
    changes = [e.price for e in chosen]
    product_ids = [product_row_id(c.platform, c.shop_id, c.external_product_id) for c in changes]
    await conn.execute(
        sql.ENSURE_PRODUCTS,
        product_ids,
        [c.platform for c in changes],
        [c.shop_id for c in changes],
        [c.external_product_id for c in changes],
        [e.event_id for e in chosen],
    )
    rows = await conn.fetch(
        sql.UPSERT_PRICES,
        [_variant_of(e) for e in chosen],
        product_ids,
        [c.platform for c in changes],
        [c.shop_id for c in changes],
        [c.external_variant_id for c in changes],
        [c.price for c in changes],
        [c.currency for c in changes],
        [c.source_updated_at for c in changes],
    )
    return newest.stale(r["id"] for r in rows)


def _variant_of(event: PriceEvent) -> uuid.UUID:
    p = event.price
    return variant_row_id(p.platform, p.shop_id, p.external_variant_id)
