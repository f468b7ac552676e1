"""`pipeline rebuild` ends with the live database's state: mixed traffic from all five platforms
(re-sends, content duplicates, out-of-order versions) goes through the real ingress and worker,
then the raw topic is rebuilt into an empty database and every derived table is compared; then
replaying the whole topic into the live database, twice, changes none of them."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from bench.ledger.config import SECRET, SHOP, LedgerConfig
from bench.ledger.marketplaces import CALLBACK_URL, SHOPS, plan_marketplaces, signed_headers
from bench.ledger.traffic import (
    LOCATIONS,
    STOCKED,
    WOO_STOCKED,
    Delivery,
    plan_traffic,
    stock_webhooks,
)
from bench.sandbox import free_port
from pipeline.channels import AppCredential, Channel, ChannelStore
from pipeline.kafka import group_offsets
from pipeline.migrations import migrate
from pipeline.resources import Resources
from pipeline.settings import Secret, Settings
from tests.integration.checksums import checksums_of, differences
from tests.integration.conftest import WorkerProcess, eventually, run_cli

STOCK_LEVELS = len(STOCKED) * len(LOCATIONS) + len(WOO_STOCKED)


def _db_url(settings: Settings, name: str) -> str:
    return f"{settings.database_dsn.rpartition('/')[0]}/{name}"


async def _create_db(settings: Settings, name: str, *, migrated: bool) -> str:
    admin = await asyncpg.connect(_db_url(settings, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = _db_url(settings, name)
    if migrated:
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
    return url


async def _drop_db(settings: Settings, name: str) -> None:
    admin = await asyncpg.connect(_db_url(settings, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def settings(base_settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """This test's own live database (so other tests' rows cannot enter the comparison)."""
    name = f"pipeline_live_{uuid.uuid4().hex[:10]}"
    url = asyncio.run(_create_db(base_settings, name, migrated=True))
    yield base_settings.with_overrides(
        database_url=Secret(url),
        topic_prefix=f"t{uuid.uuid4().hex[:8]}.",
        table_data_dir=str(tmp_path / "tables"),
        worker_web_port=free_port(),
    )
    asyncio.run(_drop_db(base_settings, name))


@pytest.fixture
async def rebuilt(settings: Settings) -> AsyncIterator[str]:
    """An empty database (not even migrated: rebuild does that)."""
    name = f"pipeline_rebuilt_{uuid.uuid4().hex[:10]}"
    url = await _create_db(settings, name, migrated=False)
    yield url
    await _drop_db(settings, name)


async def _register(resources: Resources) -> None:
    store = ChannelStore(resources.pool)
    await store.add(Channel("shopify", SHOP, Secret(SECRET), "USD"), replace=True)
    for platform, shop in SHOPS.items():
        if not shop.app_key:
            await store.add(Channel(platform, shop.shop_id, Secret(shop.secret), shop.currency))
            continue
        callback = CALLBACK_URL if platform == "shopee" else None
        await store.add_app(
            AppCredential(platform, shop.app_key, Secret(shop.secret), callback_url=callback)
        )
        await store.add(
            Channel(platform, shop.shop_id, currency=shop.currency, app_key=shop.app_key)
        )


async def _post(ingress: TestClient[Any, Any], d: Delivery) -> None:
    headers = {
        **signed_headers(d.platform, d.topic, d.body, d.delivery_id),
        "Content-Type": "application/json",
    }
    resp = await ingress.post(f"/webhooks/{d.platform}", data=d.body, headers=headers)
    await resp.read()
    assert resp.status == 200, f"{d.platform} {d.topic} answered {resp.status}"


async def _send_traffic(ingress: TestClient[Any, Any], resources: Resources) -> int:
    """Stock, then ~400 order deliveries of five platforms in shuffled order with re-sends;
    returns how many distinct deliveries the audit trail must end up with."""
    cfg = LedgerConfig(deliveries=400, seed=7)
    stock = stock_webhooks(random.Random(8), True)
    deliveries, schedule = plan_traffic(cfg, plan_marketplaces(cfg))
    for d in stock:
        await _post(ingress, d)

    async def stocked() -> bool:  # products and stock first, so paid orders reserve against them
        count = "SELECT count(*) FROM inventory_levels WHERE variant_id IS NOT NULL"
        return bool(await resources.pool.fetchval(count) >= STOCK_LEVELS)

    await eventually(stocked, timeout_s=30, what="stock levels")
    for start in range(0, len(schedule), 16):
        chunk = schedule[start : start + 16]
        await asyncio.gather(*(_post(ingress, deliveries[idx]) for idx, _ in chunk))
    assert sum(resend for _, resend in schedule) > 10
    return len({(d.platform, d.delivery_id) for d in [*stock, *deliveries]})


async def test_rebuild_matches_the_live_database_and_replays_are_idempotent(
    settings: Settings,
    resources: Resources,
    ingress: TestClient[Any, Any],
    worker: WorkerProcess,
    rebuilt: str,
) -> None:
    await _register(resources)
    expected = await _send_traffic(ingress, resources)

    async def settled() -> bool:
        got = await resources.pool.fetchval("SELECT count(*) FROM webhook_events")
        return bool(got == expected)

    await eventually(settled, timeout_s=45, what=f"{expected} audit rows", worker=worker)
    await asyncio.sleep(1.5)  # the worker commits its offsets within a second
    live = await checksums_of(settings.database_dsn)
    for table in ("orders", "order_lines", "products", "product_variants", "reservations"):
        assert live[table][0] > 0, f"the traffic left no {table}"
    assert live["inventory_levels"][0] > 0
    statuses = {
        r["status"]
        for r in await resources.pool.fetch("SELECT DISTINCT status FROM webhook_events")
    }
    assert {"COMPLETED", "STALE"} <= statuses, statuses  # out-of-order versions were there
    committed = await group_offsets(settings)

    done = run_cli(settings, "rebuild", "--database", rebuilt)
    assert done.returncode == 0, done.stderr
    assert "done" in done.stdout
    assert await checksums_of(rebuilt) == live, await differences(settings.database_dsn, rebuilt)
    twice = run_cli(settings, "rebuild", "--database", rebuilt)
    assert twice.returncode == 2
    assert "already holds webhook_events rows" in twice.stderr

    for _ in range(2):
        again = run_cli(settings, "replay", "--execute")
        assert again.returncode == 0, again.stderr
        assert await checksums_of(settings.database_dsn) == live
    assert await group_offsets(settings) == committed  # the live group's offsets never moved
