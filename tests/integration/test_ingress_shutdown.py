"""SIGTERM to a running ingress: in-flight deliveries are finished, and every 200 is in Kafka."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
from aiohttp import ClientError, ClientSession

from bench.sandbox import free_port
from pipeline.kafka import topic_names
from pipeline.platforms.shopify import delivery_headers
from pipeline.resources import Resources
from pipeline.settings import Settings
from tests.integration.conftest import SECRET, SHOP, order_payload, settings_env
from tests.integration.test_shopify_orders import _read_topic


async def test_sigterm_finishes_in_flight_deliveries(
    settings: Settings, resources: Resources, tmp_path: Path
) -> None:
    port = free_port()
    log = (tmp_path / "ingress.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "ingress", "--port", str(port)],
        env=settings_env(settings),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/webhooks/shopify"
    answers: dict[str, int | None] = {}
    fifty_in = asyncio.Event()

    async def deliver(http: ClientSession, i: int) -> None:
        delivery = str(uuid.uuid4())
        body = orjson.dumps(order_payload(6_200_000 + i, updated_at="2026-11-22T10:00:00Z"))
        headers = delivery_headers(
            SECRET, body, shop=SHOP, topic="orders/create", webhook_id=delivery
        )
        try:
            async with http.post(url, data=body, headers=headers) as resp:
                await resp.read()
                answers[delivery] = resp.status
        except ClientError:
            answers[delivery] = None  # refused once shutdown began: the platform retries
        if len(answers) >= 50:
            fifty_in.set()

    async with ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        break
            except ClientError:
                await asyncio.sleep(0.1)
        sending = [asyncio.create_task(deliver(http, i)) for i in range(300)]
        await fifty_in.wait()  # up to 100 more are on the wire now
        proc.send_signal(signal.SIGTERM)
        await asyncio.gather(*sending)
    assert await asyncio.to_thread(proc.wait, 30) == 0
    accepted = {d for d, status in answers.items() if status == 200}
    assert len(accepted) > 50, "in-flight deliveries were not finished after the signal"
    assert set(answers.values()) <= {200, 503, None}
    produced = {
        orjson.loads(r.value)["delivery_id"]
        for r in await _read_topic(settings, topic_names(settings).raw, len(accepted))
    }
    assert accepted <= produced
