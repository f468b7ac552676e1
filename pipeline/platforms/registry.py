"""Which adapter serves which `/webhooks/<platform>` path: adding a platform is one line here."""

from __future__ import annotations

from typing import Final

from pipeline.platforms.base import PlatformAdapter
from pipeline.platforms.lazada import LazadaAdapter
from pipeline.platforms.shopee import ShopeeAdapter
from pipeline.platforms.shopify import ShopifyAdapter
from pipeline.platforms.tiktok import TikTokAdapter
from pipeline.platforms.woocommerce import WooCommerceAdapter

ADAPTERS: Final[dict[str, PlatformAdapter]] = {
    "shopify": ShopifyAdapter(),
    "woocommerce": WooCommerceAdapter(),
    "shopee": ShopeeAdapter(),
    "lazada": LazadaAdapter(),
    "tiktok": TikTokAdapter(),
}


def adapter_for(platform: str) -> PlatformAdapter | None:
    """The adapter for a platform name, or None when the pipeline does not know it."""
    return ADAPTERS.get(platform)
