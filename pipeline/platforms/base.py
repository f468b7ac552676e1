"""The interface every marketplace adapter implements, and what it returns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from pipeline.envelope import Envelope
from schemas.catalogue import AnyEvent


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

    events: Sequence[AnyEvent]
    ignored: str | None = None


@dataclass(frozen=True, slots=True)
class Credentials:
    """What verifies a shop's deliveries: one secret, or two while a rotation is under way.

    `app_key` is the app's public key (Lazada and TikTok Shop sign it with the body);
    `callback_url` is the URL registered with the platform (Shopee signs it).
    """

    secrets: tuple[str, ...]
    app_key: str | None = None
    callback_url: str | None = None

    def __repr__(self) -> str:
        return f"Credentials(secrets=<{len(self.secrets)} hidden>, app_key={self.app_key!r})"


class PlatformAdapter(Protocol):
    """A marketplace: how to find the shop, check the signature and read the payload."""

    name: str
    # "shop": each shop has its own secret (Shopify, WooCommerce); "app": one app secret signs
    # every shop's deliveries and the shop is named in the body (Shopee, Lazada, TikTok Shop).
    credential_scope: Literal["shop", "app"]
    # The platform wants a 2xx with an empty body (Shopee); otherwise the JSON acceptance.
    empty_ack: bool

    def handshake(self, headers: Mapping[str, str], body: bytes) -> bool:
        """True for an unsigned handshake the platform sends (WooCommerce's ping): answer 200
        and produce nothing."""
        ...

    # What a shop id looks like on this platform, for operators' error messages.
    shop_hint: str

    def canonical_shop(self, text: str) -> str | None:
        """A shop id as an operator typed it, in the form `shop_of` yields; None if it cannot
        be one. The CLI registers channels with it, so they match what deliveries name."""
        ...

    def shop_of(self, headers: Mapping[str, str], body: bytes) -> str:
        """The shop the delivery claims to be for; Rejection when it names none."""
        ...

    def verify(self, credentials: Credentials, headers: Mapping[str, str], body: bytes) -> bool:
        """True when one of the secrets signed exactly these bytes."""
        ...

    def describe(self, shop_id: str, headers: Mapping[str, str], body: bytes) -> DeliveryInfo:
        """Delivery id, topic and entity key of a verified delivery."""
        ...

    def normalize(self, envelope: Envelope) -> Normalized:
        """Canonical events for one delivery; InvalidPayload when it can never be processed."""
        ...
