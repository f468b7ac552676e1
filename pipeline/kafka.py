"""Kafka: the idempotent producer, and creation and checking of the pipeline's own topics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from pipeline.producer import Producer
from pipeline.settings import Settings
from pipeline.topics import RAW_MAX_MESSAGE_BYTES, TopicNames, TopicSpec, topic_specs

_TOPIC_ALREADY_EXISTS = 36


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


async def ensure_topics(settings: Settings, *, timeout_s: float = 30.0) -> list[str]:
    """Create missing topics with explicit partition counts; refuse ones with the wrong count."""
    specs = topic_specs(
        topic_names(settings),
        settings.partitions,
        settings.replication_factor,
        settings.retry_tiers,
        settings.app_id,
    )
    async with _admin(settings, timeout_s) as admin:
        return await _ensure(admin, specs)


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
