"""The Faust app factory: topics, the dedupe table, the webhook agent and the retry-tier agents."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from functools import partial
from typing import Any

import faust

from agents import faust_consumer
from agents.dedupe import TableSeenDeliveries
from agents.services import ResourcesService, readiness
from agents.supervision import Alarms, StreamSupervisor, raw_message
from pipeline.batch import BatchProcessor
from pipeline.channels import ChannelCache, ChannelStore
from pipeline.errors import is_transient
from pipeline.kafka import consumer_group, group_offsets, topic_names
from pipeline.publish import Publisher
from pipeline.retry import Backoff, until_done
from pipeline.retry_topics import RetryForwarder
from pipeline.settings import Settings
from pipeline.sink import PostgresSink
from pipeline.topics import DEDUPE_TABLE

log = logging.getLogger("agents.app")


def create_faust_app(
    settings: Settings,
    resources: ResourcesService,
    restart: Callable[[str], None],
    alarms: Alarms | None = None,
) -> faust.App:
    """The worker's app: the raw-topic agent, one agent per retry tier, the dedupe table and
    stream supervision. `restart(reason)` must replace the process; supervision calls it when
    a safety net fires (see agents/supervision.py)."""
    names = topic_names(settings)
    app = _new_app(settings)
    table = app.Table(DEDUPE_TABLE, default=None, partitions=settings.partitions)
    seen = TableSeenDeliveries(table, settings.dedupe_window_s)
    supervisor = StreamSupervisor(
        faust_consumer.LiveConsumer(app),
        partial(group_offsets, settings),
        stall_timeout_s=settings.worker_stall_timeout_s,
        replace=restart,
        skip_topics=[names.dedupe_changelog(settings.app_id)],
        alarms=alarms,
    )

    def on_assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        seen.forget_assignment()
        supervisor.on_assigned()

    async def watch_progress() -> None:
        await supervisor.check_progress(ready=readiness(app)[0])

    app.on_partitions_assigned.connect(on_assigned)
    app.timer(interval=max(1.0, settings.worker_stall_timeout_s / 6))(watch_progress)
    app.agent(_topic(app, names.raw, settings), name="process-webhooks", concurrency=1)(
        _webhook_agent(supervisor, resources, settings, seen)
    )
    for tier in range(1, settings.retry_tiers + 1):
        app.agent(
            _topic(app, names.retry(tier), settings), name=f"retry-tier-{tier}", concurrency=1
        )(_retry_agent(supervisor, resources, names.raw, settings.retry_delay_s(tier)))
    return app


def _new_app(settings: Settings) -> faust.App:
    app = faust.App(
        consumer_group(settings),
        broker=[f"kafka://{server}" for server in settings.kafka_bootstrap_servers.split(",")],
        store=settings.table_store,
        datadir=settings.table_data_dir,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        topic_disable_leader=True,
        autodiscover=False,
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        # How long a crashed worker keeps its partitions before the group moves them.
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 4),
        producer_acks=-1,
        topic_allow_declare=False,  # `pipeline topics create` made them all (pipeline/topics.py)
    )
    faust_consumer.install(app)
    return app


def _topic(app: faust.App, name: str, settings: Settings) -> Any:
    """A pipeline topic as Faust reads it: raw bytes, the configured partition count."""
    return app.topic(
        name, key_serializer="raw", value_serializer="raw", partitions=settings.partitions
    )


def _webhook_agent(
    supervisor: StreamSupervisor,
    resources: ResourcesService,
    settings: Settings,
    seen: TableSeenDeliveries,
) -> Callable[[Any], Awaitable[None]]:
    """The agent on the raw topic: each held batch through the BatchProcessor."""

    async def process_webhooks(stream: Any) -> None:
        res = resources.resources
        processor = BatchProcessor(
            PostgresSink(res.pool),
            Publisher(res.producer, topic_names(settings)),
            seen,
            # No negative caching here: a replay right after `channels add` must see the channel.
            channels=ChannelCache(
                ChannelStore(res.pool), settings.channel_cache_ttl_s, miss_ttl_s=0.0
            ),
            max_attempts=settings.retry_max_attempts,
        )

        async def store(events: list[Any]) -> None:
            report = await processor.handle([raw_message(e) for e in events])
            log.info("batch stored", extra=asdict(report))

        await supervisor.process(stream, settings.batch_max, settings.batch_within_s, store)

    return process_webhooks


def _retry_agent(
    supervisor: StreamSupervisor, resources: ResourcesService, raw_topic: str, delay_s: float
) -> Callable[[Any], Awaitable[None]]:
    """An agent that sends one retry tier's messages back to the raw topic once they are due."""

    async def forward_retries(stream: Any) -> None:
        forwarder = RetryForwarder(resources.resources.producer, raw_topic, delay_s)
        backoff = Backoff()

        async def forward(events: list[Any]) -> None:
            due = [(raw_message(e), float(e.message.timestamp)) for e in events]
            forwarded = await until_done(
                partial(forwarder.forward, due),
                retriable=is_transient,
                backoff=backoff,
                what="retry forward",
            )
            log.info("retries forwarded", extra={"count": forwarded, "delay_s": delay_s})

        await supervisor.process(stream, 100, 0.5, forward)

    return forward_retries
