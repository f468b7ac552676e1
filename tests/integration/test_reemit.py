"""Canonical re-emit on real services: `pipeline reemit` publishes a shop's stored events again
exactly as the worker did, and a consumer can instead rewind its own group to a time with
Kafka's kafka-consumer-groups tool (scripts/kafka-consumer-groups.sh), as the README says."""

from __future__ import annotations

import asyncio
import shlex
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from bench.sandbox import settings_env
from pipeline.channels import Channel, ChannelStore
from pipeline.kafka import topic_names
from pipeline.resources import Resources
from pipeline.settings import Secret, Settings
from pipeline.topics import CANONICAL_STREAMS
from tests.integration.conftest import (
    SECRET,
    Sender,
    WorkerProcess,
    eventually,
    order_payload,
    run_cli,
)

CONSUMER_GROUPS = Path(__file__).resolve().parents[2] / "scripts" / "kafka-consumer-groups.sh"


async def _end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(settings.partitions)]
        return {tp.partition: o for tp, o in (await consumer.end_offsets(parts)).items()}
    finally:
        await consumer.stop()


async def _read_all(settings: Settings, topic: str) -> list[Any]:
    """Every message on `topic` up to its current end, in partition and offset order."""
    ends = await _end_offsets(settings, topic)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in ends]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        records: list[Any] = []
        deadline = time.monotonic() + 15
        while len(records) < sum(ends.values()) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            records.extend(r for rs in batch.values() for r in rs)
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()


async def _all_published(settings: Settings, resources: Resources, shops: list[str]) -> bool:
    """Every event of these shops is stored and on this test's canonical topics (the worker
    stores, then publishes); the database is the session's, the topics this test's own."""
    names = topic_names(settings)
    on_topics = 0
    for stream in CANONICAL_STREAMS:
        on_topics += sum((await _end_offsets(settings, names.canonical(stream))).values())
    stored = await resources.pool.fetch(
        "SELECT DISTINCT shop_id FROM commerce_events WHERE shop_id = ANY($1)", shops
    )
    count = await resources.pool.fetchval(
        "SELECT count(*) FROM commerce_events WHERE shop_id = ANY($1)", shops
    )
    return len(stored) == len(shops) and on_topics == count


def _by_key(records: list[Any]) -> dict[bytes, list[bytes]]:
    """Each key's values in offset order: what a consumer of that entity sees, in order."""
    seen: dict[bytes, list[bytes]] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        seen.setdefault(r.key, []).append(r.value)
    return seen


async def test_reemit_publishes_a_shops_events_again_byte_for_byte(
    settings: Settings, resources: Resources, send: Sender, worker: WorkerProcess
) -> None:
    # Shops of this test alone: the database is shared by the whole session.
    shop, other_shop = (f"re-{uuid.uuid4().hex[:8]}.myshopify.com" for _ in range(2))
    for name in (shop, other_shop):
        await ChannelStore(resources.pool).add(
            Channel("shopify", name, Secret(SECRET), "USD"), replace=True
        )
    for order_id in (9101, 9102, 9103):
        created = order_payload(order_id, updated_at="2026-11-20T10:00:00-05:00")
        assert await send("orders/create", created, shop=shop) == 200
    # A second event on one order: its two events must come out again in the same order.
    paid = order_payload(9101, updated_at="2026-11-20T11:00:00-05:00", total_price="30.00")
    assert await send("orders/updated", paid, shop=shop) == 200
    other = order_payload(9201, updated_at="2026-11-20T10:00:00-05:00")
    assert await send("orders/create", other, shop=other_shop) == 200

    async def published() -> bool:
        return await _all_published(settings, resources, [shop, other_shop])

    await eventually(published, what="every event stored and published", worker=worker)
    topic = topic_names(settings).orders
    before = await _read_all(settings, topic)
    mine = [r for r in before if r.key.startswith(f"shopify:{shop}:".encode())]
    stored = await resources.pool.fetch(
        "SELECT id, event_id FROM commerce_events WHERE shop_id = $1 ORDER BY id", shop
    )
    assert len(mine) == len(stored) >= 4
    assert len(mine) < len(before)  # the other shop's event is there and must stay alone

    dry = run_cli(settings, "reemit", "--platform", "shopify", "--shop", shop)
    assert dry.returncode == 0, dry.stderr
    assert f"would re-emit {len(mine)} event(s)" in dry.stdout
    assert any(line.split()[:2] == [topic, str(len(mine))] for line in dry.stdout.splitlines())
    assert "dry run: nothing sent" in dry.stdout
    assert len(await _read_all(settings, topic)) == len(before)

    done = run_cli(settings, "reemit", "--platform", "shopify", "--shop", shop, "--execute")
    assert done.returncode == 0, done.stderr
    assert f"re-emitted {len(mine)} event(s) to {topic}" in done.stdout
    assert done.stdout.rstrip().endswith(f"last id {stored[-1]['id']}")

    after = await _read_all(settings, topic)
    old = {(r.partition, r.offset) for r in before}
    new = [r for r in after if (r.partition, r.offset) not in old]
    assert len(new) == len(mine)
    assert _by_key(new) == _by_key(mine)  # same keys, same bytes, same order per entity
    assert sorted(r.partition for r in new) == sorted(r.partition for r in mine)
    ids = [orjson.loads(r.value)["event_id"] for r in new]
    assert sorted(ids) == sorted(str(row["event_id"]) for row in stored)

    again = run_cli(
        settings, "reemit", "--shop", shop, "--platform", "shopify",
        "--after-id", str(stored[-1]["id"]), "--execute",
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "nothing to re-emit" in again.stdout
    assert len(await _read_all(settings, topic)) == len(after)

    # Ctrl-C after the first acknowledged event, then the printed command finishes the job.
    err = await _interrupted(settings, "--platform", "shopify", "--shop", shop, "--rate", "1")
    resume = next(line for line in err.splitlines() if line.startswith("resume with: "))
    argv = shlex.split(resume.removeprefix("resume with: "))
    assert argv[:2] == ["pipeline", "reemit"]
    assert "--after-id" in argv
    last = int(argv[argv.index("--after-id") + 1])
    assert last in {row["id"] for row in stored[:-1]}
    assert f"last id {last}" in err
    finished = run_cli(settings, *argv[1:])
    assert finished.returncode == 0, finished.stderr
    final = await _read_all(settings, topic)
    seen = {(r.partition, r.offset) for r in after}
    resent = [
        orjson.loads(r.value)["event_id"] for r in final if (r.partition, r.offset) not in seen
    ]
    assert set(resent) == {str(row["event_id"]) for row in stored}  # every event, again
    assert len(mine) <= len(resent) <= len(mine) + 1  # at most the one in flight twice


async def _interrupted(settings: Settings, *args: str) -> str:
    """Run `pipeline reemit ARGS --execute`, SIGINT it once a first page is acknowledged, and
    return its stderr after checking it stopped as Ctrl-C should: exit 130, no traceback."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pipeline.cli", "reemit", *args, "--execute",
        env=settings_env(settings, LOG_FORMAT="text"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    lines: list[str] = []
    async with asyncio.timeout(20):
        while not lines or not lines[-1].startswith("re-emitted 1/"):
            line = (await proc.stderr.readline()).decode()
            assert line, f"reemit ended before its first page: {''.join(lines)}"
            lines.append(line)
        proc.send_signal(signal.SIGINT)
        rest = await proc.stderr.read()
        code = await proc.wait()
    err = "".join(lines) + rest.decode()
    assert code == 130, err
    assert "Traceback" not in err
    assert "interrupted: " in err
    return err


def _kafka_time(ms: int) -> str:
    """A time as --to-datetime takes it, with an explicit zone (without one the JVM's own)."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


async def _consume(settings: Settings, topic: str, group: str) -> list[bytes]:
    """Read as a downstream group does, from its committed offsets to the end; commit, leave."""
    ends = await _end_offsets(settings, topic)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        values: list[bytes] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            values.extend(r.value for rs in batch.values() for r in rs)
            parts = consumer.assignment()
            if len(parts) == len(ends) and all(
                [await consumer.position(tp) >= ends[tp.partition] for tp in parts]
            ):
                break
        else:
            pytest.fail(f"group {group} did not reach the end of {topic} in 20 s")
        await consumer.commit()
        return values
    finally:
        await consumer.stop()


def _consumer_groups(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CONSUMER_GROUPS), "--bootstrap-server", settings.kafka_bootstrap_servers, *args],
        capture_output=True,
        text=True,
        timeout=300,  # the first run on a machine downloads the tool's jars
        check=False,
    )


async def test_a_group_reset_to_a_datetime_rereads_from_there(
    settings: Settings, resources: Resources
) -> None:
    topic = topic_names(settings).orders
    group = f"{settings.topic_prefix}downstream"
    now_ms = int(time.time() * 1000)
    early, late = now_ms - 2 * 3600_000, now_ms - 3600_000
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        for i in range(6):
            at = early if i < 3 else late
            await producer.send_and_wait(
                topic, f"event-{i}".encode(), key=f"k{i}".encode(), timestamp_ms=at + i
            )
    finally:
        await producer.stop()
    assert len(await _consume(settings, topic, group)) == 6
    assert await _consume(settings, topic, group) == []  # committed: nothing new

    cut = _kafka_time((early + late) // 2)
    reset = ["--group", group, "--topic", topic, "--reset-offsets", "--to-datetime", cut]
    plan = _consumer_groups(settings, *reset, "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert "NEW-OFFSET" in plan.stdout
    assert await _consume(settings, topic, group) == []  # a dry run changes nothing

    done = _consumer_groups(settings, *reset, "--execute")
    assert done.returncode == 0, done.stderr
    reread = await _consume(settings, topic, group)
    assert sorted(reread) == [b"event-3", b"event-4", b"event-5"]
