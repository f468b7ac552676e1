"""The interface every marketplace adapter implements, and what it returns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from pipeline.envelope import Envelope
from schemas.orders import OrderEvent


class Rejection(Exception):
    """An HTTP answer for input the ingress refuses; `reason` is safe to show the sender."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class DeliveryInfo:
    """What the ingress learns about a verified delivery before it produces it."""

    topic: str
    delivery_id: str
    entity_key: str
    event_id: str | None = None
    api_version: str | None = None
    triggered_at: str | None = None
    malformed: bool = False


@dataclass(frozen=True, slots=True)
class Normalized:
    """Canonical events made from one delivery; no events plus `ignored` means a known no-op."""

    events: Sequence[OrderEvent]
    ignored: str | None = None


class PlatformAdapter(Protocol):
    """A marketplace: how to find the shop, check the signature and read the payload."""

    name: str

    def shop_of(self, headers: Mapping[str, str], body: bytes) -> str:
        """The shop the delivery claims to be for; Rejection when it names none."""
        ...

    def verify(self, secrets: Sequence[str], headers: Mapping[str, str], body: bytes) -> bool:
        """True when one of the secrets signed exactly these bytes."""
        ...

    def describe(self, shop_id: str, headers: Mapping[str, str], body: bytes) -> DeliveryInfo:
        """Delivery id, topic and entity key of a verified delivery."""
        ...

    def normalize(self, envelope: Envelope) -> Normalized:
        """Canonical events for one delivery; InvalidPayload when it can never be processed."""
        ...
