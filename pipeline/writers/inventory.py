"""Stock levels by platform location. A location with no mapping yet gets its own automatic
warehouse and is listed as unmapped (`pipeline locations list --unmapped`): never dropped."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from pipeline import sql
from pipeline.locations import warehouse_code_for
from pipeline.postgres import Connection
from pipeline.writers import Newest
from schemas.inventory import InventoryLevelEvent

LocationKey = tuple[str, str, str]  # platform, shop, platform location


async def warehouses_for(conn: Connection, locations: set[LocationKey]) -> dict[LocationKey, int]:
    """The warehouse each platform location counts in, creating automatic ones as needed."""
    if not locations:
        return {}
    keys = sorted(locations)
    platforms = [k[0] for k in keys]
    shops = [k[1] for k in keys]
    places = [k[2] for k in keys]
    codes = [warehouse_code_for(*k) for k in keys]
    labels = [place or "default" for place in places]
    await conn.execute(sql.ENSURE_WAREHOUSES, platforms, shops, places, codes, labels)
    await conn.execute(sql.ENSURE_CHANNEL_LOCATIONS, platforms, shops, places, codes)
    rows = await conn.fetch(sql.SELECT_LOCATION_WAREHOUSES, platforms, shops, places)
    return {(r["platform"], r["shop_id"], r["location_id"]): r["warehouse_id"] for r in rows}


async def apply_levels(conn: Connection, events: Sequence[InventoryLevelEvent]) -> set[uuid.UUID]:
    """Upsert the newest level per item and location; returns the stale event ids."""
    if not events:
        return set()
    newest = Newest(events, _level_key, lambda e: e.level.source_updated_at)
    chosen = newest.sorted()
    levels = [e.level for e in chosen]
    warehouses = await warehouses_for(
        conn, {(lv.platform, lv.shop_id, lv.location_id) for lv in levels}
    )
    rows = await conn.fetch(
        sql.UPSERT_INVENTORY_LEVELS,
        [lv.platform for lv in levels],
        [lv.shop_id for lv in levels],
        [lv.inventory_item_id for lv in levels],
        [lv.location_id for lv in levels],
        [warehouses[(lv.platform, lv.shop_id, lv.location_id)] for lv in levels],
        [lv.variant_id for lv in levels],
        [lv.sku for lv in levels],
        [lv.available for lv in levels],
        [e.type != "inventory.level_disconnected" for e in chosen],
        [lv.source_updated_at for lv in levels],
        [e.event_id for e in chosen],
    )
    return newest.stale(
        (r["platform"], r["shop_id"], r["inventory_item_id"], r["location_id"]) for r in rows
    )


def _level_key(event: InventoryLevelEvent) -> tuple[str, str, str, str]:
    lv = event.level
    return (lv.platform, lv.shop_id, lv.inventory_item_id, lv.location_id)
