"""`pipeline tables` and `pipeline topics describe` against the real Kafka and Postgres: reset is
refused while a worker runs, a reset table is empty for the next worker, a rebuild refills it
from webhook_events, and describe shows the offsets Kafka holds."""

from __future__ import annotations

import re
import uuid

import asyncpg
from aiokafka import AIOKafkaProducer

from pipeline.kafka import topic_names
from pipeline.resources import Resources
from pipeline.settings import Settings
from tests.integration.conftest import (
    Sender,
    WorkerProcess,
    eventually,
    order_payload,
    run_cli,
)


def _live_keys(settings: Settings) -> int:
    shown = run_cli(settings, "tables", "--count")
    assert shown.returncode == 0, shown.stderr
    total = next(line for line in shown.stdout.splitlines() if line.startswith("total: "))
    return int(total.split()[1])


def _batches(worker: WorkerProcess) -> list[str]:
    return [line for line in worker.log_path.read_text().splitlines() if "batch stored" in line]


async def _stored(pool: asyncpg.Pool, webhook_id: str) -> bool:
    found = await pool.fetchval(
        "SELECT count(*) FROM webhook_events WHERE external_event_id = $1", webhook_id
    )
    return bool(found)


async def test_reset_is_refused_while_a_worker_runs(
    settings: Settings, worker: WorkerProcess
) -> None:
    refused = run_cli(settings, "tables", "reset", "--yes")
    assert refused.returncode == 2
    assert refused.stderr.strip().startswith("pipeline: error: refusing tables reset: 1 worker(s)")
    assert refused.stderr.count("\n") == 1, refused.stderr
    rebuilt = run_cli(settings, "tables", "rebuild")
    assert rebuilt.returncode == 2
    assert "refusing tables rebuild" in rebuilt.stderr


async def test_reset_empties_the_table_for_the_next_worker_and_rebuild_refills_it(
    settings: Settings, resources: Resources, worker: WorkerProcess, send: Sender
) -> None:
    webhook_id = str(uuid.uuid4())
    payload = order_payload(7001, updated_at="2026-11-20T10:00:00-05:00")
    assert await send("orders/create", payload, webhook_id=webhook_id) == 200
    await eventually(lambda: _stored(resources.pool, webhook_id), what="stored", worker=worker)
    worker.stop()
    assert _live_keys(settings) == 1

    reset = run_cli(settings, "tables", "reset", "--yes")
    assert reset.returncode == 0, reset.stderr
    assert reset.stdout.startswith("wrote 1 tombstones on ")
    assert _live_keys(settings) == 0

    await worker.start()
    seen_before = len(_batches(worker))
    assert await send("orders/create", payload, webhook_id=webhook_id) == 200

    async def processed_again() -> bool:
        return any('"duplicates":0' in line for line in _batches(worker)[seen_before:])

    await eventually(processed_again, what="the re-sent delivery processed", worker=worker)
    worker.stop()

    # Lose the table again, then rebuild it from what Postgres recorded.
    assert run_cli(settings, "tables", "reset", "--yes").returncode == 0
    rebuilt = run_cli(settings, "tables", "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    # The session's database is shared: other tests' deliveries are in the window too.
    wrote = re.search(r"wrote (\d+) to ", rebuilt.stdout)
    assert wrote, rebuilt.stdout
    assert int(wrote.group(1)) >= 1
    assert _live_keys(settings) == int(wrote.group(1))

    await worker.start()
    seen_before = len(_batches(worker))
    assert await send("orders/create", payload, webhook_id=webhook_id) == 200

    async def skipped() -> bool:
        return any('"duplicates":1' in line for line in _batches(worker)[seen_before:])

    await eventually(skipped, what="the re-sent delivery skipped as seen", worker=worker)


async def test_topics_describe_shows_offsets_and_retention(
    settings: Settings, resources: Resources
) -> None:
    raw = topic_names(settings).raw
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        for n in range(3):
            await producer.send_and_wait(raw, b"x", key=f"k{n}".encode(), partition=1)
    finally:
        await producer.stop()
    shown = run_cli(settings, "topics", "describe")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    at = lines.index(f"{raw}: retention 30 d (retention.ms=2592000000), cleanup.policy=delete")
    partition_1 = lines[at + 3].split()
    assert partition_1[:4] == ["1", "0", "3", "3"]
    assert partition_1[4].endswith("Z")
    assert lines[at + 2].split()[:4] == ["0", "0", "0", "0"]
