"""The operator CLI for app credentials, secret rotation and location mapping, run as a
subprocess against the real Postgres."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from pipeline.channels import ChannelStore
from pipeline.locations import warehouse_code_for
from pipeline.platforms.registry import ADAPTERS
from pipeline.settings import Settings
from tests.integration.conftest import run_cli

pytestmark = pytest.mark.skipif(
    "lazada" not in ADAPTERS, reason="needs an app-signed platform (lazada) registered"
)


@pytest.fixture
async def pool(base_settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(base_settings.database_dsn, min_size=1, max_size=2)
    yield pool
    await pool.close()


def ok(settings: Settings, *args: str, stdin: str | None = None) -> str:
    result = run_cli(settings, *args, stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def refused(settings: Settings, *args: str) -> str:
    result = run_cli(settings, *args)
    assert result.returncode == 2, result.stdout
    assert result.stderr.startswith("pipeline: error: ")
    return result.stderr


def row(listing: str, *needles: str) -> list[str]:
    """The columns of the one listed line that contains every needle."""
    lines = [line for line in listing.splitlines() if all(n in line.split() for n in needles)]
    assert len(lines) == 1, listing
    return lines[0].split()


async def test_app_lifecycle_with_a_channel_and_a_rotation(
    base_settings: Settings, pool: asyncpg.Pool
) -> None:
    settings = base_settings
    key = f"app-{uuid.uuid4().hex[:8]}"
    shop = str(uuid.uuid4().int % 10**12)
    old, new = "lazada-secret-old-0001", "lazada-secret-new-0002"
    app = ("--platform", "lazada", "--app-key", key)

    assert ok(settings, "apps", "add", *app, "--secret", "-", stdin=f"{old}\n") == (
        f"saved lazada app {key}\n"
    )
    assert "exists; pass --replace" in refused(settings, "apps", "add", *app, "--secret", old)

    listed = ok(settings, "apps", "list")
    assert old not in listed
    assert row(listed, key) == ["lazada", key, "****0001", "no", "0", "-"]

    missing = refused(
        settings, "channels", "add", "--platform", "lazada", "--shop", shop, "--app-key", "nope"
    )
    assert "no lazada app nope; create it first with `pipeline apps add" in missing
    ok(settings, "channels", "add", "--platform", "lazada", "--shop", shop, "--app-key", key)
    channels = ok(settings, "channels", "list")
    assert row(channels, shop) == ["lazada", shop, "-", "no", "app", key]

    in_use = refused(settings, "apps", "remove", *app)
    assert f"lazada app {key} is used by 1 channel(s); remove them first" in in_use

    store = ChannelStore(pool)
    ok(settings, "apps", "rotate", *app, "--secret", "-", stdin=f"{new}\n")
    assert row(ok(settings, "apps", "list"), key)[2:4] == ["****0002", "yes"]
    assert row(ok(settings, "channels", "list"), shop)[3] == "yes"
    during = await store.get("lazada", shop)
    assert during is not None
    assert during.secrets == (new, old)
    assert during.credentials.app_key == key
    twice = refused(settings, "apps", "rotate", *app, "--secret", "lazada-secret-third-003")
    assert "is under way; finish it first with `pipeline apps rotate" in twice
    still = await store.get("lazada", shop)
    assert still is not None
    assert still.secrets == (new, old)  # the refused rotation dropped nothing

    ok(settings, "apps", "rotate", *app, "--finish")
    after = await store.get("lazada", shop)
    assert after is not None
    assert after.secrets == (new,)
    assert row(ok(settings, "apps", "list"), key)[3] == "no"
    assert refused(settings, "apps", "rotate", *app, "--finish") == (
        f"pipeline: error: no rotation of lazada app {key} is under way; start one with "
        f"`pipeline apps rotate --platform lazada --app-key {key} --secret -`\n"
    )

    assert "apps rotate --platform lazada" in refused(
        settings, "channels", "rotate", "--platform", "lazada", "--shop", shop, "--finish"
    )
    ok(settings, "channels", "remove", "--platform", "lazada", "--shop", shop)
    assert ok(settings, "apps", "remove", *app) == f"removed lazada app {key}\n"
    assert key not in ok(settings, "apps", "list")
    assert f"no lazada app {key}" in refused(settings, "apps", "remove", *app)
    assert f"no lazada app {key}" in refused(settings, "apps", "rotate", *app, "--finish")


@pytest.mark.skipif("shopee" not in ADAPTERS, reason="needs the shopee adapter registered")
async def test_shopee_app_lists_its_callback_url(base_settings: Settings) -> None:
    key = str(uuid.uuid4().int % 10**9)
    url = "https://hooks.example.com/webhooks/shopee"
    ok(
        base_settings,
        *("apps", "add", "--platform", "shopee", "--app-key", key),
        *("--secret", "shopee-partner-key-77", "--callback-url", url),
    )
    assert row(ok(base_settings, "apps", "list"), key) == [
        "shopee",
        key,
        "****y-77",
        "no",
        "0",
        url,
    ]


async def test_shop_secret_rotation(base_settings: Settings, pool: asyncpg.Pool) -> None:
    settings = base_settings
    shop = f"rot-{uuid.uuid4().hex[:8]}.myshopify.com"
    where = ("--platform", "shopify", "--shop", shop)
    old, new = "shop-secret-old-aaaa", "shop-secret-new-bbbb"
    ok(settings, "channels", "add", *where, "--secret", old, "--currency", "eur")
    assert row(ok(settings, "channels", "list"), shop) == ["shopify", shop, "EUR", "no", "****aaaa"]
    not_rotating = (
        f"pipeline: error: no rotation of shopify shop {shop} is under way; start one with "
        f"`pipeline channels rotate --platform shopify --shop {shop} --secret -`\n"
    )
    assert refused(settings, "channels", "rotate", *where, "--finish") == not_rotating

    assert ok(settings, "channels", "rotate", *where, "--secret", "-", stdin=new + "\n") == (
        f"shopify {shop}: rotating, the old and new secrets both verify until --finish\n"
    )
    listed = ok(settings, "channels", "list")
    assert row(listed, shop) == ["shopify", shop, "EUR", "yes", "****bbbb"]
    assert old not in listed
    assert new not in listed
    store = ChannelStore(pool)
    during = await store.get("shopify", shop)
    assert during is not None
    assert during.secrets == (new, old)
    assert during.rotating

    ok(settings, "channels", "rotate", *where, "--finish")
    after = await store.get("shopify", shop)
    assert after is not None
    assert after.secrets == (new,)
    assert row(ok(settings, "channels", "list"), shop)[3] == "no"
    assert refused(settings, "channels", "rotate", *where, "--finish") == not_rotating
    assert (await store.get("shopify", shop)) == after

    gone = ("--platform", "shopify", "--shop", "never-added.myshopify.com")
    assert "no shopify channel for shop never-added.myshopify.com" in refused(
        settings, "channels", "rotate", *gone, "--finish"
    )


async def test_locations_map_moves_stock_and_active_reservations(
    base_settings: Settings, pool: asyncpg.Pool
) -> None:
    settings = base_settings
    tag = uuid.uuid4().hex[:8]
    shop = f"loc-{tag}.myshopify.com"
    code = f"EU-BER-{tag}"
    ok(settings, "channels", "add", "--platform", "shopify", "--shop", shop, "--secret", "s" * 16)
    # What the worker leaves behind for a location it met before anyone mapped it.
    async with pool.acquire() as conn:
        auto = await conn.fetchval(
            "INSERT INTO warehouses (code) VALUES ($1) RETURNING id",
            warehouse_code_for("shopify", shop, "655441491"),
        )
        other = await conn.fetchval(
            "INSERT INTO warehouses (code) VALUES ($1) RETURNING id",
            warehouse_code_for("shopify", shop, ""),
        )
        await conn.executemany(
            "INSERT INTO channel_locations (platform, shop_id, location_id, warehouse_id) "
            "VALUES ('shopify', $1, $2, $3)",
            [(shop, "655441491", auto), (shop, "", other)],
        )
        level = await conn.fetchval(
            "INSERT INTO inventory_levels (platform, shop_id, inventory_item_id, location_id, "
            "warehouse_id, sku, available, reserved) "
            "VALUES ('shopify', $1, '808950810', '655441491', $2, 'SKU-1', 7, 2) RETURNING id",
            shop,
            auto,
        )
        order = uuid.uuid4()
        await conn.execute(
            "INSERT INTO reservations (order_id, external_line_id, inventory_level_id, "
            "warehouse_id, quantity, released_at) VALUES "
            "($1, 'line-1', $2, $3, 2, NULL), ($1, 'line-2', $2, $3, 1, now())",
            order,
            level,
            auto,
        )

    unmapped = ok(settings, "locations", "list", "--unmapped")
    assert row(unmapped, shop, "655441491") == [
        "shopify",
        shop,
        "655441491",
        f"shopify:{shop}:655441491",
        "no",
        "1",
    ]
    assert row(unmapped, shop, "default")[3:] == [f"shopify:{shop}:default", "no", "0"]

    mapped = ok(
        settings,
        *("locations", "map", "--platform", "shopify", "--shop", shop),
        *("--location", "655441491", "--warehouse", code, "--name", "Berlin"),
    )
    assert mapped == (
        f"shopify {shop} location 655441491 -> warehouse {code} (new): moved 1 stock level(s) "
        "and 1 active reservation(s)\n"
    )
    async with pool.acquire() as conn:
        berlin = await conn.fetchrow("SELECT id, name FROM warehouses WHERE code = $1", code)
        assert berlin["name"] == "Berlin"
        assert (
            await conn.fetchval("SELECT warehouse_id FROM inventory_levels WHERE id = $1", level)
            == berlin["id"]
        )
        held = await conn.fetch(
            "SELECT external_line_id, warehouse_id FROM reservations WHERE order_id = $1 "
            "ORDER BY external_line_id",
            order,
        )
        # The active reservation follows its stock; the released one keeps its history.
        assert [(r["external_line_id"], r["warehouse_id"]) for r in held] == [
            ("line-1", berlin["id"]),
            ("line-2", auto),
        ]
        location = await conn.fetchrow(
            "SELECT warehouse_id, mapped FROM channel_locations "
            "WHERE platform = 'shopify' AND shop_id = $1 AND location_id = '655441491'",
            shop,
        )
        assert (location["warehouse_id"], location["mapped"]) == (berlin["id"], True)

    unmapped = ok(settings, "locations", "list", "--unmapped")
    assert [line for line in unmapped.splitlines() if "655441491" in line and shop in line] == []
    assert row(unmapped, shop, "default")[4] == "no"
    everything = ok(settings, "locations", "list")
    assert row(everything, shop, "655441491")[3:] == [code, "yes", "1"]

    # Mapping the default location to the same, now existing, warehouse creates nothing new.
    again = ok(
        settings,
        *("locations", "map", "--platform", "shopify", "--shop", shop),
        *("--location", "default", "--warehouse", code),
    )
    assert again.endswith(f"warehouse {code}: moved 0 stock level(s) and 0 active reservation(s)\n")
    assert row(ok(settings, "locations", "list"), shop, "default")[3:] == [code, "yes", "0"]

    nobody = ("--shop", "nobody.myshopify.com", "--location", "1", "--warehouse", code)
    assert "no shopify channel for shop nobody.myshopify.com" in refused(
        settings, "locations", "map", "--platform", "shopify", *nobody
    )
