"""Canonical product and price events (topic `commerce.products`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Final, Literal

from schemas.events import Source, deterministic_id, entity_key

ProductEventType = Literal["product.created", "product.updated", "product.deleted"]
PRODUCT_EVENT_TYPES: Final = ("product.created", "product.updated", "product.deleted")


def product_row_id(platform: str, shop_id: str, external_id: str) -> uuid.UUID:
    """The `products.id` of a product, derived from its identity."""
    return deterministic_id("product", platform, shop_id, external_id)


def variant_row_id(platform: str, shop_id: str, external_variant_id: str) -> uuid.UUID:
    """The `product_variants.id` of a variant, derived from its identity."""
    return deterministic_id("variant", platform, shop_id, external_variant_id)


@dataclass(frozen=True, slots=True)
class ProductVariant:
    """One sellable variant. `inventory_item_id` is the platform's stock item (Shopify's
    inventory item; elsewhere the variant id itself), which stock levels refer to."""

    external_variant_id: str
    sku: str | None = None
    title: str | None = None
    price: Decimal | None = None
    currency: str | None = None
    inventory_item_id: str | None = None
    source_updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Product:
    """A product as one event describes it. A thin push (Lazada) carries only the id: then
    `title` and `variants` are empty and the stored values are kept."""

    platform: str
    shop_id: str
    external_id: str
    title: str | None = None
    status: str | None = None
    deleted: bool = False
    source_updated_at: datetime | None = None
    variants: tuple[ProductVariant, ...] = field(default_factory=tuple)
    # True when `variants` is the complete list (a full snapshot): variants not in it are gone.
    complete: bool = True

    @property
    def row_id(self) -> uuid.UUID:
        return product_row_id(self.platform, self.shop_id, self.external_id)


@dataclass(frozen=True, slots=True)
class ProductEvent:
    """A product was created, changed or deleted; `product` is its state right after."""

    event_id: uuid.UUID
    type: ProductEventType
    occurred_at: datetime
    product: Product
    source: Source
    schema: str = "commerce.product/v1"

    stream = "products"
    entity_type = "product"

    @property
    def entity_id(self) -> str:
        return self.product.external_id

    @property
    def entity_key(self) -> str:
        p = self.product
        return entity_key(p.platform, p.shop_id, "product", p.external_id)


@dataclass(frozen=True, slots=True)
class PriceChange:
    """A variant's new price (Shopee code 22). `original_price` is the price before discounts."""

    platform: str
    shop_id: str
    external_product_id: str
    external_variant_id: str
    price: Decimal
    currency: str | None = None
    original_price: Decimal | None = None
    source_updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PriceEvent:
    """A variant's price changed."""

    event_id: uuid.UUID
    type: Literal["price.updated"]
    occurred_at: datetime
    price: PriceChange
    source: Source
    schema: str = "commerce.price/v1"

    stream = "products"
    entity_type = "product"

    @property
    def entity_id(self) -> str:
        return self.price.external_product_id

    @property
    def entity_key(self) -> str:
        p = self.price
        return entity_key(p.platform, p.shop_id, "product", p.external_product_id)


def product_event_id(product: Product, event_type: str, version: str) -> uuid.UUID:
    """Same product, same event type, same source version: same id."""
    return deterministic_id(
        "product-event", product.platform, product.shop_id, product.external_id, event_type, version
    )


def price_event_id(change: PriceChange, version: str) -> uuid.UUID:
    """Same variant, same price, same source version: same id."""
    return deterministic_id(
        "price-event",
        change.platform,
        change.shop_id,
        change.external_variant_id,
        str(change.price),
        version,
    )
