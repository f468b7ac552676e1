"""Every canonical event record, in one place: the sink, the publisher and the schema export
dispatch on this list."""

from __future__ import annotations

from typing import Final, TypeAlias

from schemas.fulfillments import FulfillmentEvent
from schemas.inventory import InventoryLevelEvent, ReservedStockEvent, StockStatusEvent
from schemas.orders import OrderEvent, OrderStatusEvent
from schemas.products import PriceEvent, ProductEvent

AnyEvent: TypeAlias = (
    OrderEvent
    | OrderStatusEvent
    | ProductEvent
    | PriceEvent
    | InventoryLevelEvent
    | ReservedStockEvent
    | StockStatusEvent
    | FulfillmentEvent
)

EVENT_RECORDS: Final[tuple[type[AnyEvent], ...]] = (
    OrderEvent,
    OrderStatusEvent,
    ProductEvent,
    PriceEvent,
    InventoryLevelEvent,
    ReservedStockEvent,
    StockStatusEvent,
    FulfillmentEvent,
)
