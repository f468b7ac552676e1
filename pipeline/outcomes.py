"""What processing one raw-topic message produced: an audit record, events, maybe a dead letter."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from schemas.orders import OrderEvent

Status = Literal["COMPLETED", "DUPLICATE", "STALE", "IGNORED", "FAILED"]


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One message from the raw topic, with where it came from."""

    value: bytes
    key: bytes | None
    topic: str
    partition: int
    offset: int
    # The stream framework's own event, for whoever needs to act in its context (table writes).
    handle: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One `webhook_events` row."""

    platform: str
    shop_id: str
    topic: str
    delivery_id: str
    source_event_id: str | None
    entity_key: str
    received_at: datetime
    status: Status
    error: str | None
    source: RawMessage


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that can never be processed as it is, with the reason."""

    source: RawMessage
    error_class: str
    error: str
    failed_at: datetime
    attempts: int = 1


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of processing one message; `dedupe_key` is None when it could not be read."""

    source: RawMessage
    dedupe_key: str | None
    audit: AuditRecord | None
    events: tuple[OrderEvent, ...] = field(default_factory=tuple)
    dead_letter: DeadLetter | None = None

    def failed(self, error_class: str, error: str, at: datetime) -> Outcome:
        """The same delivery, turned into a dead letter (used when the sink cannot store it)."""
        audit = None if self.audit is None else replace(self.audit, status="FAILED", error=error)
        letter = DeadLetter(self.source, error_class, error, at)
        return replace(self, audit=audit, events=(), dead_letter=letter)
