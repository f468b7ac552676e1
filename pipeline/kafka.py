"""Kafka: the idempotent producer, and creation and checking of the pipeline's own topics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from pipeline.producer import Producer
from pipeline.settings import Settings
from pipeline.topics import (
    RAW_MAX_MESSAGE_BYTES,
    TopicNames,
    TopicSpec,
    retention_change,
    topic_specs,
)

_TOPIC_ALREADY_EXISTS = 36
_DYNAMIC_TOPIC_CONFIG = 1  # DescribeConfigs config_source: set on the topic itself


class TopicMismatch(RuntimeError):
    """A topic exists with a partition count the pipeline's tables cannot live with."""


def create_producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    """An idempotent, acks=all producer: a send resolves only once every in-sync replica has it."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 2,
        "max_request_size": RAW_MAX_MESSAGE_BYTES,
        # Batches older than this expire unsent; longer than a broker restart takes here (~15 s).
        "request_timeout_ms": 30_000,
        "client_id": f"{settings.app_id}-producer",
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


def create_pipeline_producer(settings: Settings, **overrides: Any) -> Producer:
    """The producer the ingress and the worker use: one that recovers from aiokafka's dead ends."""
    return Producer(lambda: create_producer(settings, **overrides))


def topic_names(settings: Settings) -> TopicNames:
    return TopicNames(prefix=settings.topic_prefix)


def pipeline_topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic this deployment owns, the dedupe changelog included."""
    return topic_specs(
        topic_names(settings),
        settings.partitions,
        settings.replication_factor,
        settings.retry_tiers,
        settings.app_id,
        settings.raw_retention_ms,
    )


async def ensure_topics(settings: Settings, *, timeout_s: float = 30.0) -> list[str]:
    """Create missing topics with explicit partition counts; refuse ones with the wrong count."""
    async with _admin(settings, timeout_s) as admin:
        return await _ensure(admin, pipeline_topic_specs(settings))


async def topic_configs(admin: AIOKafkaAdminClient, topics: list[str]) -> dict[str, dict[str, str]]:
    """topic -> every config the broker reports for it (defaults included)."""
    return {t: c for t, (c, _) in (await _configs(admin, topics)).items()}


async def _configs(
    admin: AIOKafkaAdminClient, topics: list[str]
) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    """topic -> (every config, the configs set on the topic itself)."""
    if not topics:
        return {}
    resources = [ConfigResource(ConfigResourceType.TOPIC, t) for t in topics]
    found: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
    for response in await admin.describe_configs(resources):
        for resource in response.to_object()["resources"]:
            entries = resource["config_entries"]
            found[resource["resource_name"]] = (
                {e["config_names"]: e["config_value"] for e in entries},
                {
                    e["config_names"]: e["config_value"]
                    for e in entries
                    if e["config_source"] == _DYNAMIC_TOPIC_CONFIG
                },
            )
    return found


async def align_raw_retention(settings: Settings) -> str | None:
    """Bring an existing raw topic's retention.ms to RAW_RETENTION_DAYS when that lengthens it;
    a shorter setting is only reported, since shortening deletes what a replay could need.
    Returns what was done or found, or None when the topic already matches."""
    raw = topic_names(settings).raw
    want = settings.raw_retention_ms
    async with _admin(settings) as admin:
        everything, own = (await _configs(admin, [raw]))[raw]
        have = int(everything["retention.ms"])
        action = retention_change(have, want)
        if action == "same":
            return None
        if action == "keep":
            return (
                f"warning: {raw} keeps retention.ms={have} but RAW_RETENTION_DAYS asks for "
                f"{want}; not shortened (that would delete replayable history); to shorten it: "
                f"kafka-configs.sh --alter --entity-type topics --entity-name {raw} "
                f"--add-config retention.ms={want}"
            )
        # AlterConfigs replaces the topic's own configs: send them all, retention changed.
        await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, raw, {**own, "retention.ms": str(want)})]
        )
        return f"altered {raw} retention.ms {have} -> {want}"


@dataclass(frozen=True, slots=True)
class GroupState:
    """The worker consumer group as the coordinator sees it."""

    group: str
    state: str
    members: int

    @property
    def active(self) -> bool:
        """Some worker is in the group (running, joining or rebalancing)."""
        return self.members > 0 or self.state not in ("Empty", "Dead", "")


async def worker_group_state(settings: Settings) -> GroupState:
    """Whether workers run now: the group's state and member count (Empty when none)."""
    group = consumer_group(settings)
    async with _admin(settings) as admin:
        responses = await admin.describe_consumer_groups([group])
    for response in responses:
        for entry in response.to_object()["groups"]:
            if entry["group"] == group:
                return GroupState(group, str(entry["state"]), len(entry["members"]))
    return GroupState(group, "Dead", 0)


def consumer_group(settings: Settings) -> str:
    """The worker's consumer group (the Faust app id)."""
    return topic_names(settings).consumer_group(settings.app_id)


@asynccontextmanager
async def _admin(settings: Settings, timeout_s: float = 30.0) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, request_timeout_ms=15_000
    )
    await asyncio.wait_for(admin.start(), timeout_s)
    try:
        yield admin
    finally:
        await admin.close()


open_admin = _admin  # for the CLI modules that ask Kafka about the pipeline's topics


@asynccontextmanager
async def reader(settings: Settings) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer in no group, for reading offsets and records without committing anything."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    # Let the coordinator's task begin: stopped before its first step, aiokafka 0.14 raises
    # CancelledError out of stop().
    await asyncio.sleep(0.1)
    try:
        yield consumer
    finally:
        await consumer.stop()


async def group_offsets(settings: Settings) -> dict[tuple[str, int], int]:
    """(topic, partition) -> offset the worker group has committed, as Kafka holds it."""
    async with _admin(settings) as admin:
        offsets = await admin.list_consumer_group_offsets(consumer_group(settings))
    return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}


async def committed_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """Partition -> offset the worker group has committed on `topic` (for lag and diagnosis)."""
    return {p: o for (t, p), o in (await group_offsets(settings)).items() if t == topic}


async def delete_prefixed_topics(settings: Settings) -> list[str]:
    """Delete every topic under this deployment's prefix (tests and benchmarks clean up so)."""
    if not settings.topic_prefix:
        raise ValueError("refusing to delete topics: no PIPELINE_TOPIC_PREFIX set")
    async with _admin(settings) as admin:
        mine = [t for t in await admin.list_topics() if t.startswith(settings.topic_prefix)]
        if mine:
            await admin.delete_topics(mine)
    return mine


async def _ensure(admin: AIOKafkaAdminClient, specs: list[TopicSpec]) -> list[str]:
    existing = await _partition_counts(admin, [s.name for s in specs])
    for spec in specs:
        have = existing.get(spec.name)
        if have is not None and have != spec.partitions:
            raise TopicMismatch(
                f"topic {spec.name} has {have} partitions but the pipeline is configured for "
                f"{spec.partitions} (PIPELINE_PARTITIONS); tables need equal counts"
            )
    missing = [s for s in specs if s.name not in existing]
    if not missing:
        return []
    response = await admin.create_topics(
        [
            NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=s.configs)
            for s in missing
        ]
    )
    for topic, code, *rest in response.topic_errors:
        if code not in (0, _TOPIC_ALREADY_EXISTS):
            message = rest[0] if rest else ""
            raise RuntimeError(f"could not create topic {topic}: error {code} {message}")
    return [s.name for s in missing]


async def _partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    present = set(await admin.list_topics())
    wanted = [n for n in names if n in present]
    if not wanted:
        return {}
    return {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(wanted)}
