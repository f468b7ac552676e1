"""What a replay reads: the selection an operator asked for, resolved into offset ranges per
partition of the raw topic, with what retention already deleted. Pure, given an offsets source."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pipeline.envelope import Envelope

_AGE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_RANGE = re.compile(r"^(\d+):(\d*)-(\d*)$")
# Audit statuses `--status` may name (webhook_events.status).
STATUSES = ("COMPLETED", "DUPLICATE", "STALE", "IGNORED", "FAILED", "DEAD_LETTERED")


class PlanError(ValueError):
    """A selection that cannot be planned; the CLI shows it as one line."""


def parse_when(text: str, now: datetime) -> datetime:
    """ISO 8601 (naive means UTC) or an age before `now` such as 90s, 30m, 6h, 7d."""
    match = _AGE.match(text.strip())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise PlanError(
            f"{text!r} is not a time: use ISO 8601 (2026-11-25T10:00) or an age (30m, 6h, 7d)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_offsets(texts: Sequence[str]) -> dict[int, tuple[int | None, int | None]]:
    """`P:FROM-TO` items (TO exclusive; either end may be left out) as partition -> range."""
    ranges: dict[int, tuple[int | None, int | None]] = {}
    for text in texts:
        for item in filter(None, (part.strip() for part in text.split(","))):
            match = _RANGE.match(item)
            if not match:
                raise PlanError(f"--offsets {item!r} is not PARTITION:FROM-TO (e.g. 0:100-250)")
            partition = int(match.group(1))
            start = int(match.group(2)) if match.group(2) else None
            stop = int(match.group(3)) if match.group(3) else None
            if start is not None and stop is not None and stop < start:
                raise PlanError(f"--offsets {item!r} ends before it starts")
            if partition in ranges:
                raise PlanError(f"--offsets names partition {partition} twice")
            ranges[partition] = (start, stop)
    return ranges


@dataclass(frozen=True, slots=True)
class Filters:
    """Which deliveries in the ranges to replay; an empty tuple means any."""

    platforms: tuple[str, ...] = ()
    shops: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    entities: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()

    def matches(self, item: Envelope) -> bool:
        """Whether the envelope passes every filter but `statuses` (which Postgres knows)."""
        return (
            _any(self.platforms, item.platform)
            and _any(self.shops, item.shop_id)
            and _any(self.topics, item.topic)
            and (not self.entities or any(e in _entity_ids(item) for e in self.entities))
        )

    @property
    def narrows(self) -> bool:
        return any((self.platforms, self.shops, self.topics, self.entities, self.statuses))


def _any(allowed: tuple[str, ...], value: str) -> bool:
    return not allowed or value in allowed


def _entity_ids(item: Envelope) -> set[str]:
    """An entity key (`order:123`, or `shop|order|123`) and the id at its end."""
    key = item.entity_key
    return {key, re.split(r"[:|/]", key)[-1]}


@dataclass(frozen=True, slots=True)
class Selection:
    """What the operator asked for, before it meets the topic."""

    start: datetime | None = None
    end: datetime | None = None
    offsets: Mapping[int, tuple[int | None, int | None]] | None = None
    filters: Filters = field(default_factory=Filters)


class OffsetsSource(Protocol):
    """What planning needs to know about the raw topic (pipeline/replay.py reads Kafka)."""

    async def partitions(self) -> list[int]: ...

    async def beginning(self, partitions: list[int]) -> dict[int, int]: ...

    async def end(self, partitions: list[int]) -> dict[int, int]: ...

    async def for_time(self, partitions: list[int], ms: int) -> dict[int, int | None]:
        """The first offset at or after `ms` per partition; None where there is none."""
        ...


@dataclass(frozen=True, slots=True)
class PartitionRange:
    """Offsets [start, stop) of one partition; `lost` is [a, b) that retention deleted."""

    partition: int
    start: int
    stop: int
    lost: tuple[int, int] | None = None

    @property
    def size(self) -> int:
        return max(0, self.stop - self.start)


@dataclass(frozen=True, slots=True)
class Plan:
    """The ranges to read and the filters to apply: stored with a run, so resuming reads the
    same ranges even though the topic has grown since."""

    topic: str
    ranges: tuple[PartitionRange, ...]
    filters: Filters = field(default_factory=Filters)

    @property
    def messages(self) -> int:
        return sum(r.size for r in self.ranges)

    @property
    def lost(self) -> list[PartitionRange]:
        return [r for r in self.ranges if r.lost is not None]

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "ranges": [[r.partition, r.start, r.stop, r.lost] for r in self.ranges],
            "filters": {
                name: list(getattr(self.filters, name))
                for name in ("platforms", "shops", "topics", "entities", "statuses")
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Plan:
        ranges = tuple(
            PartitionRange(int(p), int(a), int(b), (int(lost[0]), int(lost[1])) if lost else None)
            for p, a, b, lost in data["ranges"]
        )
        filters = Filters(**{k: tuple(v) for k, v in data["filters"].items()})
        return cls(topic=str(data["topic"]), ranges=ranges, filters=filters)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def make_plan(source: OffsetsSource, topic: str, selection: Selection) -> Plan:
    """Resolve the selection against the topic as it is now; the end is fixed here, so live
    traffic arriving during the run is not chased."""
    if selection.offsets is not None and (selection.start or selection.end):
        raise PlanError("give either --offsets or --from/--to, not both")
    if selection.start and selection.end and selection.end <= selection.start:
        raise PlanError("--to must be later than --from")
    existing = await source.partitions()
    wanted = sorted(selection.offsets) if selection.offsets is not None else existing
    unknown = [p for p in wanted if p not in existing]
    if unknown:
        raise PlanError(
            f"{topic} has no partition {unknown[0]} (it has {len(existing)}: 0-{len(existing) - 1})"
        )
    first = await source.beginning(wanted)
    last = await source.end(wanted)
    starts = await _bound(source, wanted, selection.start, first)
    stops = await _bound(source, wanted, selection.end, last)
    ranges = []
    for p in wanted:
        start, stop = starts[p], stops[p]
        if selection.offsets is not None:
            asked_start, asked_stop = selection.offsets[p]
            start = first[p] if asked_start is None else asked_start
            stop = last[p] if asked_stop is None else min(asked_stop, last[p])
        ranges.append(_range(p, start, stop, first[p], explicit=selection.offsets is not None))
    return Plan(topic=topic, ranges=tuple(ranges), filters=selection.filters)


async def _bound(
    source: OffsetsSource, partitions: list[int], moment: datetime | None, default: dict[int, int]
) -> dict[int, int]:
    """Per partition, the first offset at or after `moment` (the end where none is)."""
    if moment is None:
        return dict(default)
    found = await source.for_time(partitions, _ms(moment))
    ends = await source.end(partitions)
    return {p: ends[p] if found.get(p) is None else int(found[p] or 0) for p in partitions}


def _range(p: int, start: int, stop: int, retained: int, *, explicit: bool) -> PartitionRange:
    """The readable part of [start, stop), and the part before `retained` that is gone.

    A time range that starts at the first retained message of a partition whose history was
    cut (retained > 0) may have lost its head: that is reported too, as offsets 0..retained.
    """
    if explicit and start < retained:
        return PartitionRange(p, retained, max(stop, retained), (start, min(retained, stop)))
    if not explicit and start <= retained and retained > 0:
        return PartitionRange(p, retained, max(stop, retained), (0, retained))
    return PartitionRange(p, start, max(stop, start))
