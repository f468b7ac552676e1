"""Failure paths on the real services: dead letters and their replay, retry tiers, SIGTERM."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from typing import Any

import orjson

from pipeline import envelope as envelopes
from pipeline.channels import Channel, ChannelStore
from pipeline.envelope import Envelope
from pipeline.kafka import topic_names
from pipeline.platforms.shopify import parse_order
from pipeline.resources import Resources
from pipeline.settings import Secret, Settings
from tests.integration.conftest import (
    Sender,
    WorkerProcess,
    eventually,
    order_payload,
    run_cli,
)

ORPHAN_SHOP = "orphan-shop.myshopify.com"


def _envelope(shop: str, order_id: int, **fields: Any) -> Envelope:
    payload = order_payload(order_id, updated_at="2026-11-22T08:00:00Z")
    return Envelope(
        platform="shopify",
        shop_id=shop,
        topic="orders/create",
        delivery_id=str(uuid.uuid4()),
        received_at_ms=int(time.time() * 1000),
        entity_key=f"shopify:{shop}:order:{order_id}",
        body=orjson.dumps(payload),
        **fields,
    )


async def _produce(resources: Resources, topic: str, item: Envelope) -> None:
    await resources.producer.send_and_wait(
        topic, envelopes.encode(item), key=item.entity_key.encode()
    )


async def _status(resources: Resources, delivery_id: str) -> Any:
    return await resources.pool.fetchrow(
        "SELECT status, attempts, error FROM webhook_events WHERE external_event_id = $1",
        delivery_id,
    )


async def test_unknown_channel_is_dead_lettered_then_replayed_once_fixed(
    worker: WorkerProcess, resources: Resources, settings: Settings
) -> None:
    item = _envelope(ORPHAN_SHOP, 6_000_001)
    await _produce(resources, topic_names(settings).raw, item)

    async def dead() -> bool:
        row = await _status(resources, item.delivery_id)
        return row is not None and row["status"] == "DEAD_LETTERED"

    await eventually(dead, what="dead-lettered delivery", worker=worker)

    listed = run_cli(settings, "dlq", "list", "--shop", ORPHAN_SHOP)
    assert listed.returncode == 0, listed.stderr
    (line,) = [ln for ln in listed.stdout.splitlines() if ORPHAN_SHOP in ln]
    letter_id = line.split()[0]
    assert "UnknownChannel" in line
    shown = run_cli(settings, "dlq", "show", letter_id)
    assert f"delivery_id:       {item.delivery_id}" in shown.stdout
    assert "buyer@example.com" not in shown.stdout  # the body only with --body

    dry = run_cli(settings, "dlq", "replay", "--shop", ORPHAN_SHOP, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would replay 1 dead letter(s)" in dry.stdout
    assert (await _status(resources, item.delivery_id))["status"] == "DEAD_LETTERED"

    await ChannelStore(resources.pool).add(
        Channel("shopify", ORPHAN_SHOP, Secret("orphan-secret-123"))
    )
    replayed = run_cli(settings, "dlq", "replay", "--shop", ORPHAN_SHOP, "--rate", "100")
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed 1 dead letter(s)" in replayed.stdout

    async def completed() -> bool:
        row = await _status(resources, item.delivery_id)
        return row["status"] == "COMPLETED"

    await eventually(completed, what="replayed delivery completed", worker=worker)
    assert (await _status(resources, item.delivery_id))["attempts"] == 2
    order = parse_order(ORPHAN_SHOP, orjson.loads(item.body))
    before = await resources.pool.fetchrow("SELECT * FROM orders WHERE id = $1", order.row_id)
    assert before is not None

    # Replaying again (explicitly including replayed letters) changes nothing.
    again = run_cli(settings, "dlq", "replay", "--shop", ORPHAN_SHOP, "--replayed", "--rate", "100")
    assert "replayed 1 dead letter(s)" in again.stdout
    marker = _envelope("it-shop.myshopify.com", 6_000_002)
    await _produce(resources, topic_names(settings).raw, marker)

    async def marker_done() -> bool:
        return await _status(resources, marker.delivery_id) is not None

    await eventually(marker_done, what="marker after the second replay", worker=worker)
    after = await resources.pool.fetchrow("SELECT * FROM orders WHERE id = $1", order.row_id)
    assert dict(after) == dict(before)
    assert (await _status(resources, item.delivery_id))["attempts"] == 2
    pending = run_cli(settings, "dlq", "replay", "--shop", ORPHAN_SHOP)
    assert "nothing to replay" in pending.stdout


async def test_a_retry_waits_its_delay_then_takes_the_normal_path(
    worker: WorkerProcess, resources: Resources, settings: Settings
) -> None:
    first_failure = int(time.time() * 1000)
    item = replace(
        _envelope("it-shop.myshopify.com", 6_000_003), attempt=2, first_failed_at_ms=first_failure
    )
    sent_at = time.monotonic()
    await _produce(resources, topic_names(settings).retry(1), item)

    async def stored() -> bool:
        return await _status(resources, item.delivery_id) is not None

    await eventually(stored, what="retried delivery", worker=worker)
    waited = time.monotonic() - sent_at
    row = await _status(resources, item.delivery_id)
    assert (row["status"], row["attempts"]) == ("COMPLETED", 2)
    assert waited >= settings.retry_delay_s(1) * 0.9


async def test_sigterm_mid_stream_exits_cleanly_and_loses_nothing(
    send: Sender, worker: WorkerProcess, resources: Resources, settings: Settings
) -> None:
    deliveries = [str(uuid.uuid4()) for _ in range(200)]
    for i, delivery in enumerate(deliveries):
        payload = order_payload(6_100_000 + i, updated_at="2026-11-22T09:00:00Z")
        assert await send("orders/create", payload, webhook_id=delivery) == 200
        if i == 100:
            assert worker.stop() == 0  # SIGTERM while deliveries keep arriving
    await worker.start()
    raw = topic_names(settings).raw

    async def all_stored() -> bool:
        count = await resources.pool.fetchval(
            "SELECT count(*) FROM webhook_events WHERE kafka_topic = $1 "
            "AND external_event_id = ANY($2::text[])",
            raw,
            deliveries,
        )
        return bool(count == len(deliveries))

    await eventually(all_stored, timeout_s=60, what="all deliveries after SIGTERM", worker=worker)
