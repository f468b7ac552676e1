"""What processing one raw-topic message produced: an audit record, events, maybe a retry or a
dead letter."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from pipeline.envelope import Envelope
from schemas.catalogue import AnyEvent

Status = Literal["COMPLETED", "DUPLICATE", "STALE", "IGNORED", "FAILED", "DEAD_LETTERED"]


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
    attempts: int = 1
    # A replayed delivery may also move on from IGNORED (a reader gap fixed since).
    replay: bool = False


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that will not be processed as it is, with the reason and its history."""

    source: RawMessage
    error_class: str
    error: str
    failed_at: datetime
    attempts: int = 1
    first_failed_at: datetime | None = None

    @property
    def first_failure(self) -> datetime:
        return self.first_failed_at or self.failed_at


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of processing one message; `dedupe_key` is None when it could not be read.

    `retry` is the envelope of the next attempt, when this one failed for a reason that may pass.
    """

    source: RawMessage
    dedupe_key: str | None
    audit: AuditRecord | None
    events: tuple[AnyEvent, ...] = field(default_factory=tuple)
    dead_letter: DeadLetter | None = None
    retry: Envelope | None = None

    def dead_lettered(
        self,
        error_class: str,
        error: str,
        at: datetime,
        *,
        attempts: int = 1,
        first_failed_at: datetime | None = None,
    ) -> Outcome:
        """The same delivery, turned into a dead letter."""
        audit = self.audit
        if audit is not None:
            audit = replace(audit, status="DEAD_LETTERED", error=error, attempts=attempts)
        letter = DeadLetter(self.source, error_class, error, at, attempts, first_failed_at)
        return replace(self, audit=audit, events=(), dead_letter=letter, retry=None)
