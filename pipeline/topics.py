"""Topic names, consumer groups and table names: the one leaf module that spells them."""

from __future__ import annotations

from dataclasses import dataclass

RAW_WEBHOOKS = "webhooks.raw"
ORDER_EVENTS = "commerce.orders"
CANONICAL_PREFIX = "commerce."
# One canonical topic per stream an event names (its `stream`): commerce.orders, ...
CANONICAL_STREAMS = ("orders", "products", "inventory", "fulfillments")
DEAD_LETTERS = "webhooks.dlq"
RETRY_PREFIX = "webhooks.retry."
DEDUPE_TABLE = "seen-deliveries"

# A body may reach 1 MiB and JSON escaping can double it; the broker default (1 MiB) is too small.
RAW_MAX_MESSAGE_BYTES = 8 * 1024 * 1024
# The raw topic keeps what `RAW_RETENTION_DAYS` says (how far back a replay reaches); the
# canonical, dead-letter and retry topics keep this.
EVENT_RETENTION_MS = 14 * 24 * 3600 * 1000
RAW_RETENTION_MS = 30 * 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic the pipeline owns, with the partition count and configs it must have."""

    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str]


@dataclass(frozen=True, slots=True)
class TopicNames:
    """The concrete topic names for one deployment (a prefix isolates tests and tenants)."""

    prefix: str = ""

    @property
    def raw(self) -> str:
        return self.prefix + RAW_WEBHOOKS

    @property
    def orders(self) -> str:
        return self.prefix + ORDER_EVENTS

    def canonical(self, stream: str) -> str:
        """The topic carrying one stream of canonical events (`orders`, `products`, ...)."""
        if stream not in CANONICAL_STREAMS:
            raise ValueError(f"unknown canonical stream {stream!r}")
        return f"{self.prefix}{CANONICAL_PREFIX}{stream}"

    @property
    def dead_letters(self) -> str:
        return self.prefix + DEAD_LETTERS

    def retry(self, tier: int) -> str:
        return f"{self.prefix}{RETRY_PREFIX}{tier}"

    def consumer_group(self, app_id: str) -> str:
        """The worker's consumer group, which is also the Faust app id."""
        return self.prefix + app_id

    def dedupe_changelog(self, app_id: str) -> str:
        """The dedupe table's changelog, named as Faust names it (`<app id>-<table>-changelog`)."""
        return f"{self.consumer_group(app_id)}-{DEDUPE_TABLE}-changelog"


def topic_specs(
    names: TopicNames,
    partitions: int,
    replication_factor: int,
    retry_tiers: int = 0,
    app_id: str | None = None,
    raw_retention_ms: int = RAW_RETENTION_MS,
) -> list[TopicSpec]:
    """Every topic the pipeline uses, with `app_id` the dedupe table's changelog as well.

    The worker declares no topic itself (Faust's `topic_allow_declare` is off): a declaration
    that meets a broker on its way down ended the worker, and a changelog whose metadata had
    not reached the consumer yet failed the first table write (`PartitionsMismatch`, 0
    partitions), both seen on a three-broker cluster.
    """
    big = {
        "max.message.bytes": str(RAW_MAX_MESSAGE_BYTES),
        "retention.ms": str(EVENT_RETENTION_MS),
    }
    compact = {"cleanup.policy": "compact"}
    if replication_factor > 1:
        big["min.insync.replicas"] = "2"
        compact["min.insync.replicas"] = "2"
    raw = {**big, "retention.ms": str(raw_retention_ms)}
    return [
        TopicSpec(names.raw, partitions, replication_factor, raw),
        *(
            TopicSpec(names.canonical(stream), partitions, replication_factor, dict(big))
            for stream in CANONICAL_STREAMS
        ),
        TopicSpec(names.dead_letters, partitions, replication_factor, dict(big)),
        *(
            TopicSpec(names.retry(tier), partitions, replication_factor, dict(big))
            for tier in range(1, retry_tiers + 1)
        ),
        *(
            [TopicSpec(names.dedupe_changelog(app_id), partitions, replication_factor, compact)]
            if app_id is not None
            else []
        ),
    ]


def retention_change(have_ms: int, want_ms: int) -> str:
    """What `topics create` does when an existing topic keeps `have_ms` and the setting says
    `want_ms`: "same", "lengthen" (altered: nothing is lost), or "keep" (a shorter setting
    would delete history a replay may need, so it is reported and left to an operator)."""
    if have_ms == want_ms:
        return "same"
    if have_ms == -1 or (0 <= want_ms < have_ms):
        return "keep"
    return "lengthen"
