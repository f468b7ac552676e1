"""Per-entity writers the sink calls inside its transaction. Each takes the batch's events of its
kind and returns the ids of the events whose change was superseded by newer state (STALE)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable, Iterable, Sequence
from datetime import datetime
from typing import Generic, Protocol, TypeVar


class _Event(Protocol):
    @property
    def event_id(self) -> uuid.UUID: ...


E = TypeVar("E", bound=_Event)
K = TypeVar("K", bound=Hashable)


def version(moment: datetime | None) -> float:
    """An entity's version as a number; an undated one is older than any dated one."""
    return moment.timestamp() if moment else float("-inf")


class Newest(Generic[E, K]):
    """The newest event per entity in a batch (an upsert may touch a row only once), and which
    events were superseded, within the batch or by the stored state."""

    def __init__(
        self, events: Sequence[E], key: Callable[[E], K], when: Callable[[E], datetime | None]
    ) -> None:
        self._events = events
        self._key = key
        self._when = when
        self.chosen: dict[K, E] = {}
        for event in events:
            held = self.chosen.get(key(event))
            if held is None or version(when(event)) >= version(when(held)):
                self.chosen[key(event)] = event

    def sorted(self) -> list[E]:
        """The chosen events in key order, so concurrent workers lock rows in one order."""
        return [self.chosen[k] for k in sorted(self.chosen, key=repr)]

    def stale(self, applied: Iterable[K]) -> set[uuid.UUID]:
        """Events whose entity kept newer stored state, or that an event in the batch beat."""
        took = set(applied)
        out = set()
        for event in self._events:
            key = self._key(event)
            newest = self.chosen[key]
            if key not in took or version(self._when(event)) < version(self._when(newest)):
                out.add(event.event_id)
        return out
