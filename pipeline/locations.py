"""Which warehouse a platform location's stock counts in: the operator's mapping, and the
automatic warehouse an unmapped location gets until someone maps it.

A location id '' is the channel's default location (platforms without locations). The worker
creates `channel_locations` rows with `mapped = false` and a warehouse coded by
`warehouse_code_for`; `LocationStore.map` points a location at a real warehouse and moves the
stock (and the active reservations against it) that was already counted there.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

SELECT_CHANNEL_EXISTS = "SELECT 1 FROM channels WHERE platform = $1 AND shop_id = $2"
UPSERT_WAREHOUSE = """
INSERT INTO warehouses (code, name) VALUES ($1, $2)
ON CONFLICT (code) DO UPDATE SET name = COALESCE(EXCLUDED.name, warehouses.name)
RETURNING id, (xmax = 0) AS created
"""
UPSERT_CHANNEL_LOCATION = """
INSERT INTO channel_locations (platform, shop_id, location_id, warehouse_id, mapped)
VALUES ($1, $2, $3, $4, true)
ON CONFLICT (platform, shop_id, location_id) DO UPDATE
SET warehouse_id = EXCLUDED.warehouse_id, mapped = true, updated_at = now()
"""
MOVE_LEVELS = """
UPDATE inventory_levels SET warehouse_id = $4, updated_at = now()
WHERE platform = $1 AND shop_id = $2 AND location_id = $3 AND warehouse_id <> $4
"""
MOVE_RESERVATIONS = """
UPDATE reservations SET warehouse_id = $4
WHERE inventory_level_id IN (
    SELECT id FROM inventory_levels WHERE platform = $1 AND shop_id = $2 AND location_id = $3
)
AND released_at IS NULL AND consumed_at IS NULL
AND warehouse_id IS DISTINCT FROM $4
"""
SELECT_LOCATIONS = """
SELECT l.platform, l.shop_id, l.location_id, w.code AS warehouse_code, w.name AS warehouse_name,
       l.mapped,
       (SELECT count(*) FROM inventory_levels i
        WHERE i.platform = l.platform AND i.shop_id = l.shop_id AND i.location_id = l.location_id
       ) AS levels
FROM channel_locations l
JOIN warehouses w ON w.id = l.warehouse_id
WHERE NOT ($1::boolean AND l.mapped)
ORDER BY l.platform, l.shop_id, l.location_id
"""


def warehouse_code_for(platform: str, shop_id: str, location_id: str) -> str:
    """The code of the warehouse created automatically for an unmapped location.

    The worker and the CLI share this one rule. A platform location literally named "default"
    would share the code of the default location ''; no platform we know uses that id.
    """
    return f"{platform}:{shop_id}:{location_id or 'default'}"


@dataclass(frozen=True, slots=True)
class MapResult:
    """What `LocationStore.map` did: the warehouse, and how much existing stock it moved."""

    warehouse_id: int
    warehouse_created: bool
    levels_moved: int
    reservations_moved: int


@dataclass(frozen=True, slots=True)
class ChannelLocation:
    """One platform location, the warehouse it counts in and how many stock rows it holds."""

    platform: str
    shop_id: str
    location_id: str
    warehouse_code: str
    warehouse_name: str | None
    mapped: bool
    levels: int

    @property
    def location(self) -> str:
        """The location as an operator types it: 'default' for the channel's default ('')."""
        return self.location_id or "default"


def _count(status: str) -> int:
    """Rows touched, from asyncpg's command status ("UPDATE 3")."""
    return int(status.rsplit(" ", 1)[-1])


class LocationStore:
    """Location-to-warehouse mappings in Postgres."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def map(
        self,
        platform: str,
        shop_id: str,
        location_id: str,
        warehouse_code: str,
        name: str | None = None,
    ) -> MapResult | None:
        """Count a location's stock in the warehouse `warehouse_code` (created if new), moving
        its existing stock rows and their active reservations. None when there is no channel."""
        async with self._pool.acquire() as conn, conn.transaction():
            if await conn.fetchrow(SELECT_CHANNEL_EXISTS, platform, shop_id) is None:
                return None
            warehouse = await conn.fetchrow(UPSERT_WAREHOUSE, warehouse_code, name)
            assert warehouse is not None  # INSERT ... ON CONFLICT DO UPDATE always returns
            wid: int = warehouse["id"]
            # Upserting the location row first locks it, so a writer that reads the mapping
            # FOR SHARE waits for this transaction and then sees the new warehouse.
            await conn.execute(UPSERT_CHANNEL_LOCATION, platform, shop_id, location_id, wid)
            levels = await conn.execute(MOVE_LEVELS, platform, shop_id, location_id, wid)
            held = await conn.execute(MOVE_RESERVATIONS, platform, shop_id, location_id, wid)
        return MapResult(wid, bool(warehouse["created"]), _count(levels), _count(held))

    async def list(self, unmapped_only: bool = False) -> list[ChannelLocation]:
        return [
            ChannelLocation(
                r["platform"],
                r["shop_id"],
                r["location_id"],
                r["warehouse_code"],
                r["warehouse_name"],
                r["mapped"],
                r["levels"],
            )
            for r in await self._pool.fetch(SELECT_LOCATIONS, unmapped_only)
        ]
