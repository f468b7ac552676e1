"""Shared resources (Postgres pool, Kafka producer, Redis client), opened and closed together."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from redis.asyncio import Redis

from pipeline.kafka import create_pipeline_producer
from pipeline.postgres import create_pool
from pipeline.producer import Producer
from pipeline.settings import Settings


@dataclass(slots=True)
class Resources:
    """Open connections for one process; the ingress and the worker both use this."""

    settings: Settings
    pool: asyncpg.Pool
    producer: Producer
    redis: Redis

    async def close(self) -> None:
        """Flush the producer, then close everything; safe to call once after open."""
        try:
            await self.producer.stop()
        finally:
            try:
                await self.pool.close()
            finally:
                await self.redis.aclose()


async def open_resources(settings: Settings, *, wait_for_kafka: bool = True) -> Resources:
    """Connect to Postgres (failing fast if absent) and Kafka (failing fast too, unless
    `wait_for_kafka` is False: then it connects in the background); Redis on first use."""
    pool = await create_pool(settings)
    producer = create_pipeline_producer(settings)
    try:
        await producer.start(wait=wait_for_kafka)
    except BaseException:
        await producer.stop()
        await pool.close()
        raise
    redis = Redis.from_url(settings.redis_url.value)
    return Resources(settings=settings, pool=pool, producer=producer, redis=redis)
