from __future__ import annotations

from typing import Any

from pipeline.channels import SELECT_CHANNEL, Channel, ChannelCache, ChannelStore
from pipeline.settings import Secret
from tests.unit.factories import SECRET, SHOP

DEMO = Channel("shopify", SHOP, Secret(SECRET), "USD")


class FakeStore:
    def __init__(self, channels: dict[tuple[str, str], Channel]) -> None:
        self.channels = channels
        self.calls: list[tuple[str, str]] = []

    async def get(self, platform: str, shop_id: str) -> Channel | None:
        self.calls.append((platform, shop_id))
        return self.channels.get((platform, shop_id))


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def make(**kwargs: Any) -> tuple[ChannelCache, FakeStore, Clock]:
    store, clock = FakeStore({("shopify", SHOP): DEMO}), Clock()
    cache = ChannelCache(store, 30.0, clock=clock, **kwargs)  # type: ignore[arg-type]
    return cache, store, clock


async def test_hit_within_ttl_makes_no_second_store_call() -> None:
    cache, store, clock = make()
    assert await cache.get("shopify", SHOP) == DEMO
    clock.now += 29.9
    assert await cache.get("shopify", SHOP) == DEMO
    assert len(store.calls) == 1


async def test_entry_expires_after_the_ttl() -> None:
    cache, store, clock = make()
    await cache.get("shopify", SHOP)
    clock.now += 30.0
    await cache.get("shopify", SHOP)
    assert len(store.calls) == 2


async def test_expired_entry_picks_up_a_changed_secret() -> None:
    cache, store, clock = make()
    await cache.get("shopify", SHOP)
    store.channels[("shopify", SHOP)] = Channel("shopify", SHOP, Secret("rotated-secret"))
    clock.now += 31
    channel = await cache.get("shopify", SHOP)
    assert channel is not None
    assert channel.secrets == ("rotated-secret",)


async def test_misses_are_cached_for_the_shorter_ttl() -> None:
    cache, store, clock = make(miss_ttl_s=5.0)
    assert await cache.get("shopify", "nobody.myshopify.com") is None
    clock.now += 4.9
    assert await cache.get("shopify", "nobody.myshopify.com") is None
    assert len(store.calls) == 1
    clock.now += 0.1
    await cache.get("shopify", "nobody.myshopify.com")
    assert len(store.calls) == 2


async def test_miss_ttl_never_exceeds_the_ttl() -> None:
    store, clock = FakeStore({}), Clock()
    cache = ChannelCache(store, 1.0, miss_ttl_s=60.0, clock=clock)  # type: ignore[arg-type]
    await cache.get("shopify", "x")
    clock.now += 1.0
    await cache.get("shopify", "x")
    assert len(store.calls) == 2


async def test_keys_are_platform_and_shop() -> None:
    cache, store, _ = make()
    await cache.get("shopify", SHOP)
    await cache.get("woocommerce", SHOP)
    assert store.calls == [("shopify", SHOP), ("woocommerce", SHOP)]


async def test_cache_is_cleared_when_full() -> None:
    cache, store, _ = make(max_entries=2)
    for shop in ("a", "b", "c", "a"):
        await cache.get("shopify", shop)
    assert [shop for _, shop in store.calls] == ["a", "b", "c", "a"]


def test_channel_repr_and_mask_hide_the_secret() -> None:
    assert SECRET not in repr(DEMO)
    assert DEMO.masked_secret == "****cdef"
    assert Channel("shopify", SHOP, Secret("short")).masked_secret == "****"


class FakePool:
    def __init__(self, row: dict[str, Any] | None) -> None:
        self.row = row
        self.queries: list[tuple[str, tuple[Any, ...]]] = []

    async def fetchrow(self, query: str, *args: Any) -> dict[str, Any] | None:
        self.queries.append((query, args))
        return self.row


async def test_store_get_reads_one_row_into_a_channel() -> None:
    row = {"platform": "shopify", "shop_id": SHOP, "secret": SECRET, "currency": None}
    pool = FakePool(row)
    channel = await ChannelStore(pool).get("shopify", SHOP)  # type: ignore[arg-type]
    assert channel == Channel("shopify", SHOP, Secret(SECRET), None)
    assert pool.queries == [(SELECT_CHANNEL, ("shopify", SHOP))]


async def test_store_get_returns_none_for_no_row() -> None:
    assert await ChannelStore(FakePool(None)).get("shopify", SHOP) is None  # type: ignore[arg-type]
