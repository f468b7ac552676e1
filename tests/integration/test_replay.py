"""`pipeline replay` on the real services: the dry run's plan, a reader gap closed by a replay
(IGNORED deliveries become stored, once, however often replayed), Ctrl-C and resuming from the
checkpoint, and a range retention has deleted."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.records_to_delete import RecordsToDelete
from aiokafka.structs import TopicPartition

from bench.sandbox import settings_env
from pipeline.batch import BatchProcessor
from pipeline.channels import ChannelStore
from pipeline.envelope import Envelope
from pipeline.kafka import topic_names
from pipeline.platforms.base import Normalized, PlatformAdapter
from pipeline.platforms.registry import adapter_for
from pipeline.publish import Publisher
from pipeline.replay import NeverSeen, ReplayRun, processor_handler
from pipeline.replay_plan import Selection, make_plan
from pipeline.replay_reader import KafkaOffsets, create_reader
from pipeline.resources import Resources
from pipeline.settings import Settings
from pipeline.sink import PostgresSink
from tests.integration.conftest import Sender, order_payload, run_cli

COUNT_ROWS = "SELECT status, count(*) FROM webhook_events GROUP BY status"


class _OldReader:
    """Yesterday's Shopify reader: it did not read orders/updated yet, so ignored it."""

    def __init__(self, adapter: PlatformAdapter) -> None:
        self._adapter = adapter

    def __getattr__(self, name: str) -> Any:
        return getattr(self._adapter, name)

    def normalize(self, item: Envelope) -> Normalized:
        return Normalized([], ignored=f"topic {item.topic} is not read")


def _old_adapters(platform: str) -> PlatformAdapter | None:
    adapter = adapter_for(platform)
    return None if adapter is None else _OldReader(adapter)  # type: ignore[return-value]


# Order ids of this module's own (9_4x0_000 and up): the session database is shared, and the
# crash and orders tests use 7_000_000 and up for the same shop.
GAP_ORDERS, LETTER_ORDERS, RESUME_ORDERS, RETENTION_ORDERS = (
    9_410_000,
    9_430_000,
    9_450_000,
    9_470_000,
)


async def _send_orders(send: Sender, count: int, first: int) -> None:
    for i in range(count):
        payload = order_payload(first + i, updated_at="2026-11-20T10:00:00-05:00")
        assert await send("orders/updated", payload) == 200


class _NoChannels:
    """A channel lookup that finds nothing: the channel was not added yet."""

    async def get(self, platform: str, shop_id: str) -> object | None:
        return None


async def _process_with_old_code(
    settings: Settings, resources: Resources, *, channel_gap: bool = False
) -> None:
    """What the live worker did back then: every delivery read by the old reader (or, with
    `channel_gap`, by today's reader while the shop had no channel)."""
    consumer = create_reader(settings)
    await consumer.start()
    try:
        topic = topic_names(settings).raw
        plan = await make_plan(KafkaOffsets(consumer, topic), topic, Selection())
        processor = BatchProcessor(
            PostgresSink(resources.pool),
            Publisher(resources.producer, topic_names(settings)),
            NeverSeen(),
            channels=_NoChannels() if channel_gap else ChannelStore(resources.pool),
            adapters=adapter_for if channel_gap else _old_adapters,
        )

        async def no_checkpoint(offsets: dict[int, int]) -> None:
            return None

        await ReplayRun(consumer, plan, processor_handler(processor), no_checkpoint).run()
    finally:
        await consumer.stop()


async def _statuses(resources: Resources, shop: str, first: int) -> dict[str, int]:
    """This test's deliveries' statuses (the session's database is shared with other tests)."""
    rows = await resources.pool.fetch(
        "SELECT status, count(*) AS n FROM webhook_events"
        " WHERE shop_id = $1 AND entity_key LIKE $2 GROUP BY status",
        shop,
        f"%order:{str(first)[:5]}%",
    )
    return {r["status"]: r["n"] for r in rows}


async def test_a_reader_gap_closes_by_replaying_the_ignored_deliveries(
    settings: Settings, resources: Resources, send: Sender
) -> None:
    shop = "it-shop.myshopify.com"
    await _send_orders(send, 12, GAP_ORDERS)
    await _process_with_old_code(settings, resources)
    assert await _statuses(resources, shop, GAP_ORDERS) == {"IGNORED": 12}

    plan = run_cli(settings, "replay", "--status", "IGNORED", "--platform", "shopify")
    assert plan.returncode == 0, plan.stderr
    assert "matching: 12 deliveries" in plan.stdout
    assert re.search(r"partition \d: offsets \d+-\d+", plan.stdout)
    assert "estimate:" in plan.stdout
    assert "dry run" in plan.stdout
    assert await _statuses(resources, shop, GAP_ORDERS) == {"IGNORED": 12}  # the dry run: nothing

    done = run_cli(settings, "replay", "--status", "IGNORED", "--execute")
    assert done.returncode == 0, done.stderr
    assert await _statuses(resources, shop, GAP_ORDERS) == {"COMPLETED": 12}
    orders = "SELECT count(*) FROM orders WHERE shop_id = $1 AND external_id LIKE '94100%'"
    assert await resources.pool.fetchval(orders, shop) == 12

    again = run_cli(settings, "replay", "--execute", "--platform", "shopify")
    assert again.returncode == 0, again.stderr
    assert await _statuses(resources, shop, GAP_ORDERS) == {"COMPLETED": 12}  # once, not twice
    events = "SELECT count(*) FROM commerce_events WHERE shop_id = $1 AND entity_id LIKE '94100%'"
    assert await resources.pool.fetchval(events, shop) == 12


async def test_dead_lettered_deliveries_are_stored_by_a_replay_once_the_gap_is_closed(
    settings: Settings, resources: Resources, send: Sender
) -> None:
    shop = "it-shop.myshopify.com"
    await _send_orders(send, 5, LETTER_ORDERS)
    await _process_with_old_code(settings, resources, channel_gap=True)
    assert await _statuses(resources, shop, LETTER_ORDERS) == {"DEAD_LETTERED": 5}
    letters = "SELECT count(*) FROM dead_letters WHERE source_topic = $1"
    raw = topic_names(settings).raw
    assert await resources.pool.fetchval(letters, raw) == 5

    for _ in range(2):
        done = run_cli(settings, "replay", "--status", "DEAD_LETTERED", "--execute")
        assert done.returncode == 0, done.stderr
    assert await _statuses(resources, shop, LETTER_ORDERS) == {"COMPLETED": 5}
    assert await resources.pool.fetchval(letters, raw) == 5  # the letters stay, as history


async def _stored(resources: Resources) -> int:
    """This test's deliveries stored (the session's database is shared with other tests)."""
    return int(
        await resources.pool.fetchval(
            "SELECT count(*) FROM webhook_events WHERE entity_key LIKE '%order:94500%'"
        )
    )


async def test_ctrl_c_saves_the_checkpoint_and_resume_finishes_the_run(
    settings: Settings, resources: Resources, send: Sender
) -> None:
    await _send_orders(send, 60, RESUME_ORDERS)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "replay",
            "--execute",
            "--rate",
            "20",
            "--batch",
            "5",
        ],
        env=settings_env(settings, LOG_FORMAT="text"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until some batches are stored
        if await _stored(resources) >= 10:
            break
        await asyncio.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    match = re.search(r"--resume (\S+)", err)
    assert match, err
    stored = await _stored(resources)
    assert 10 <= stored < 60

    resumed = run_cli(settings, "replay", "--resume", match.group(1), "--execute")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming run {match.group(1)}" in resumed.stdout
    assert await _stored(resources) == 60
    read = int(re.search(r"read (\d+)", resumed.stdout).group(1))  # type: ignore[union-attr]
    assert read <= 60 - stored + 5  # it went on from the checkpoint, not from the start

    finished = run_cli(settings, "replay", "--resume", match.group(1), "--execute")
    assert finished.returncode == 1
    assert "already finished" in finished.stderr


async def test_a_range_deleted_by_retention_is_reported_and_not_silently_skipped(
    settings: Settings, resources: Resources, send: Sender
) -> None:
    await _send_orders(send, 12, RETENTION_ORDERS)
    topic = topic_names(settings).raw
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:  # what retention does: the oldest records of partition 0 are gone
        await admin.delete_records(
            {TopicPartition(topic, 0): RecordsToDelete(before_offset=1)}, timeout_ms=10_000
        )
    finally:
        await admin.close()

    plan = run_cli(settings, "replay")
    assert plan.returncode == 0, plan.stderr
    assert "LOST partition 0: offsets 0-1 were deleted by retention" in plan.stdout

    refused = run_cli(settings, "replay", "--execute")
    assert refused.returncode == 1
    assert refused.stderr.startswith("pipeline: error: retention already deleted")
    assert "Traceback" not in refused.stderr

    gone = run_cli(settings, "replay", "--offsets", "0:0-1", "--execute", "--allow-gaps")
    assert gone.returncode == 0, gone.stderr
    assert "LOST partition 0: offsets 0-1" in gone.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--offsets", "zero"], "is not PARTITION:FROM-TO"),
        (["--from", "1h", "--to", "2h"], "--to must be later than --from"),
        (["--offsets", "0:1-2", "--from", "1h"], "either --offsets or --from/--to"),
        (["--offsets", "99:0-"], "has no partition 99"),
        (["--resume", "nope"], "no replay run 'nope'"),
    ],
)
async def test_mistakes_are_one_line(
    settings: Settings, resources: Resources, args: list[str], message: str
) -> None:
    got = run_cli(settings, "replay", *args)
    assert got.returncode != 0
    assert got.stderr.startswith("pipeline: error: "), got.stderr
    assert message in got.stderr
    assert len(got.stderr.strip().splitlines()) == 1, got.stderr
