"""Operators' tools: migrations (twice, concurrently), the channels CLI, readiness, Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from pipeline.migrations import Migration, migrate
from pipeline.resources import Resources
from pipeline.settings import Secret, Settings
from tests.integration.conftest import run_cli


async def test_migrate_is_idempotent_and_safe_from_two_connections(settings: Settings) -> None:
    extra = [Migration(9001, "probe_table", "CREATE TABLE probe_9001 (id int)")]
    conns = [await asyncpg.connect(settings.database_dsn) for _ in range(2)]
    try:
        results = await asyncio.gather(*(migrate(c, extra) for c in conns))
        assert sorted(results) == [[], ["9001_probe_table"]]
        assert await migrate(conns[0], extra) == []
    finally:
        await conns[0].execute(
            "DROP TABLE probe_9001; DELETE FROM schema_migrations WHERE version = 9001"
        )
        for c in conns:
            await c.close()


async def test_migrate_cli_reports_up_to_date(settings: Settings) -> None:
    result = run_cli(settings, "migrate")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "database is up to date"


async def test_channels_cli_add_list_remove(settings: Settings) -> None:
    shop = "cli-shop.myshopify.com"
    added = run_cli(
        settings,
        "channels",
        "add",
        "--platform",
        "shopify",
        "--shop",
        shop,
        "--secret",
        "-",
        stdin="cli-secret-abcdef123456\n",
    )
    assert added.returncode == 0, added.stderr
    again = run_cli(
        settings, "channels", "add", "--platform", "shopify", "--shop", shop, "--secret", "x" * 12
    )
    assert again.returncode == 2
    assert "exists" in again.stderr
    listed = run_cli(settings, "channels", "list")
    assert shop in listed.stdout
    assert "cli-secret" not in listed.stdout
    assert "****3456" in listed.stdout
    assert (
        run_cli(settings, "channels", "remove", "--platform", "shopify", "--shop", shop).returncode
        == 0
    )
    gone = run_cli(settings, "channels", "remove", "--platform", "shopify", "--shop", shop)
    assert gone.returncode == 2
    assert "no shopify channel" in gone.stderr


async def test_cli_names_an_unreachable_database(settings: Settings) -> None:
    unreachable = settings.with_overrides(
        database_url=Secret("postgresql://postgres@127.0.0.1:1/pipeline")
    )
    result = run_cli(unreachable, "migrate")
    assert result.returncode == 2
    assert "cannot reach Postgres at postgresql://postgres@127.0.0.1:1/pipeline" in result.stderr


async def test_ingress_ready_when_kafka_answers(ingress: TestClient[Any, Any]) -> None:
    resp = await ingress.get("/readyz")
    assert resp.status == 200
    assert (await resp.json())["status"] == "ready"


async def test_resources_reach_redis(resources: Resources) -> None:
    assert await resources.redis.ping() is True
