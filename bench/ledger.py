"""The ledger: signed webhooks sent through chaos, then a reconciliation against Postgres.

Sends N Shopify order deliveries to a real `pipeline ingress` (several versions of each order in
shuffled order, exact re-sends of earlier deliveries, a few duplicate contents under new webhook
ids), retrying any non-200 like a marketplace would, while it SIGKILLs the `pipeline worker` K
times, stops and starts Postgres and stops and starts Kafka (through scripts/services.sh, and
only services that script started). Then it waits for the worker to drain and reconciles: every
delivery answered 200 must be in `webhook_events` exactly once, nothing may be stored twice, and
every order must hold its newest acknowledged version.

Usage: .venv/bin/python bench/ledger.py --deliveries N [--seed S] [--kills K]
                                        [--no-kafka-restart] [--no-postgres-restart]
Needs `make services`. Uses its own database and topics, and removes them afterwards.
Exit status 1 when anything acknowledged is missing, duplicated or in the wrong final state.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import murmur2

from pipeline.channels import Channel, ChannelStore
from pipeline.kafka import committed_offsets, delete_prefixed_topics, ensure_topics, topic_names
from pipeline.migrations import migrate
from pipeline.platforms.shopify import delivery_headers
from pipeline.settings import Secret, Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ROOT / "scripts" / "services.sh"
SHOP = "ledger.myshopify.com"
SECRET = "ledger-secret-0123456789"
FIRST_ORDER_ID = 4_100_000_000
SHOP_TZ = timezone(timedelta(hours=-5))
EPOCH = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


STALL_TIMEOUT_S = 15  # the workers' WORKER_STALL_TIMEOUT_S


@dataclass(frozen=True, slots=True)
class LedgerConfig:
    """One ledger run. `send_seconds` None paces the sending over max(30 s, posts / 250)."""

    deliveries: int = 2_000
    seed: int = 1
    kills: int = 3
    kafka_restart: bool = True
    postgres_restart: bool = True
    concurrency: int = 32
    partitions: int = 6
    send_seconds: float | None = None
    outage_s: float = 1.0  # how long Kafka and Postgres stay down (plus their stop and start)
    resend_share: float = 0.10  # exact re-sends (same webhook id and body), on top of N
    dup_content_share: float = 0.02  # of N: same body under a new webhook id
    retry_budget_s: float = 180.0  # per delivery, like a platform's retry schedule (shortened)
    stall_s: float = 60.0  # no 200 at all for this long outside chaos: the ingress is stuck
    drain_timeout_s: float | None = None  # default 120 + N / 500
    keep_logs: bool = False
    verbose: bool = True


@dataclass(frozen=True, slots=True)
class Delivery:
    """One webhook delivery (one X-Shopify-Webhook-Id) and what the order should become."""

    delivery_id: str
    order_id: int
    topic: str
    updated_at: datetime
    status: str
    lines: frozenset[tuple[str, int]]
    body: bytes


@dataclass(slots=True)
class LedgerResult:
    """What the run sent, what Postgres holds, and everything that did not add up."""

    sent: int = 0
    acknowledged: int = 0
    stored: int = 0
    missing: int = 0
    duplicated: int = 0
    wrong_state: int = 0
    wrong_reservations: int = 0
    posts: int = 0  # planned POST series (deliveries plus exact re-sends)
    attempts: int = 0  # HTTP attempts, retries included
    attempt_outcomes: dict[str, int] = field(default_factory=dict)
    stored_unacknowledged: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    duplicated_by: dict[str, int] = field(default_factory=dict)
    wrong_examples: list[str] = field(default_factory=list)
    reordered: int = 0
    send_s: float = 0.0
    drain_s: float = 0.0
    drained: bool = False
    kills_done: int = 0
    restarts_done: list[str] = field(default_factory=list)
    outages_s: dict[str, float] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    gap_restarts: int = 0
    log_notes: dict[str, int] = field(default_factory=dict)
    uncommitted: dict[int, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    diagnosis: str = ""
    log_dir: str = ""

    @property
    def ok(self) -> bool:
        bad = self.missing or self.duplicated or self.wrong_state or self.wrong_reservations
        return not bad and not self.problems

    def line(self) -> str:
        restarts = "+".join(self.restarts_done) or "none"
        return (
            f"sent {self.sent} / acknowledged {self.acknowledged} / stored {self.stored} / "
            f"missing {self.missing} / duplicated {self.duplicated} / "
            f"wrong_state {self.wrong_state} / wrong_reservations {self.wrong_reservations} | "
            f"send {self.send_s:.1f} s, "
            f"drain {self.drain_s:.1f} s, kills {self.kills_done}, restarts {restarts}"
        )

    def details(self) -> str:
        outcomes = ", ".join(f"{k}: {v}" for k, v in sorted(self.attempt_outcomes.items()))
        outages = ", ".join(f"{k} {v:.1f} s" for k, v in self.outages_s.items()) or "none"
        parts = [
            f"posts {self.posts} (re-sends included), HTTP attempts {self.attempts} ({outcomes})",
            f"deliveries sent before an older version of their order: {self.reordered}",
            f"webhook_events statuses: {dict(sorted(self.statuses.items()))}",
            f"duplicated by table: {self.duplicated_by}",
            f"stored but never acknowledged: {self.stored_unacknowledged}",
            f"outages (stop to ready): {outages}",
            f"worker self-restarts (skipped offsets or a stall): {self.gap_restarts}",
            f"raw messages the worker group has not committed: {self.uncommitted}",
        ]
        parts += [f"log: {n} x {what}" for what, n in self.log_notes.items()]
        parts += [f"skipped: {s}" for s in self.skipped]
        parts += [f"crash: {c}" for c in self.crashes]
        parts += [f"problem: {p}" for p in self.problems]
        parts += [f"wrong state: {w}" for w in self.wrong_examples]
        if self.diagnosis:
            parts.append(self.diagnosis)
        return "\n".join(parts)


# --------------------------------------------------------------------------- traffic


STOCKED = range(1, 5)  # the variants (500 + k) every order's lines come from
LOCATIONS = (7001, 7002)


def stock_webhooks(rng: random.Random) -> list[tuple[str, bytes]]:
    """Products for the variants the orders buy, and their stock at two locations."""
    posts = []
    for k in STOCKED:
        product = {
            "id": 50 + k,
            "title": f"Item {k}",
            "updated_at": EPOCH.isoformat(),
            "variants": [
                {
                    "id": 500 + k,
                    "sku": f"LEDGER-{k}",
                    "price": "10.00",
                    "inventory_item_id": 900 + k,
                    "updated_at": EPOCH.isoformat(),
                }
            ],
        }
        posts.append(("products/create", orjson.dumps(product)))
        for location in LOCATIONS:
            level = {
                "inventory_item_id": 900 + k,
                "location_id": location,
                "available": rng.randint(20, 400),
                "updated_at": EPOCH.isoformat(),
            }
            posts.append(("inventory_levels/update", orjson.dumps(level)))
    return posts


def _line_items(order_id: int, rng: random.Random, count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": order_id * 10 + k,
            "variant_id": 500 + k,
            "product_id": 50 + k,
            "sku": f"LEDGER-{k}",
            "title": f"Item {k}",
            "quantity": rng.randint(1, 5),
            "price": f"{rng.randint(100, 9_900) / 100:.2f}",
        }
        for k in range(1, count + 1)
    ]


def _order_versions(order_id: int, count: int, rng: random.Random) -> list[Delivery]:
    """One order's life: create, maybe paid, updates, an ending; `count` versions."""
    if count >= 3 and rng.random() < 0.85:
        middle = ["orders/paid"] + ["orders/updated"] * (count - 3)
        endings = ["orders/fulfilled", "orders/partially_fulfilled", "orders/cancelled"]
        topics = ["orders/create", *middle, rng.choice([*endings, "orders/updated"])]
    else:
        topics = ["orders/create"] + ["orders/updated"] * (count - 2) + ["orders/cancelled"]
    topics = topics[:count]
    financial, fulfillment, cancelled_at = "pending", None, None
    lines = _line_items(order_id, rng, rng.randint(1, 3))
    at = EPOCH + timedelta(seconds=order_id % 100_000)
    versions = []
    for topic in topics:
        at += timedelta(minutes=rng.randint(1, 90), seconds=rng.randint(0, 59))
        if topic == "orders/paid":
            financial = "paid"
        elif topic == "orders/fulfilled":
            fulfillment = "fulfilled"
        elif topic == "orders/partially_fulfilled":
            fulfillment = "partial"
        elif topic == "orders/cancelled":
            cancelled_at = at.astimezone(SHOP_TZ).isoformat()
            financial = "refunded" if financial == "paid" else "voided"
        elif topic == "orders/updated":
            lines = _line_items(order_id, rng, rng.randint(1, 4))
        if cancelled_at:
            status = "cancelled"
        elif fulfillment == "fulfilled":
            status = "fulfilled"
        elif fulfillment == "partial":
            status = "partially_fulfilled"
        else:
            status = "paid" if financial == "paid" else "pending"
        total = sum(int(float(x["price"]) * 100) * x["quantity"] for x in lines)
        payload = {
            "id": order_id,
            "name": f"#L{order_id - FIRST_ORDER_ID}",
            "order_number": order_id - FIRST_ORDER_ID,
            "email": f"buyer{order_id % 997}@example.com",
            "financial_status": financial,
            "fulfillment_status": fulfillment,
            "cancelled_at": cancelled_at,
            "currency": "USD",
            "total_price": f"{total / 100:.2f}",
            "subtotal_price": f"{total / 100:.2f}",
            "total_tax": "0.00",
            "created_at": (EPOCH + timedelta(seconds=order_id % 100_000))
            .astimezone(SHOP_TZ)
            .isoformat(),
            "updated_at": at.astimezone(SHOP_TZ).isoformat(),
            "line_items": lines,
        }
        versions.append(
            Delivery(
                delivery_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                order_id=order_id,
                topic=topic,
                updated_at=at,
                status=status,
                lines=frozenset((str(x["id"]), x["quantity"]) for x in lines),
                body=orjson.dumps(payload),
            )
        )
    return versions


def plan_traffic(cfg: LedgerConfig) -> tuple[list[Delivery], list[tuple[int, bool]]]:
    """N deliveries over ~N/5 orders, and the POST schedule: (delivery index, is a re-send)."""
    rng = random.Random(cfg.seed)
    n = cfg.deliveries
    dup_contents = round(n * cfg.dup_content_share) if n >= 20 else 0
    deliveries: list[Delivery] = []
    order_id = FIRST_ORDER_ID
    while len(deliveries) < n - dup_contents:
        count = min(rng.randint(3, 7), n - dup_contents - len(deliveries))
        deliveries += _order_versions(order_id, count, rng)
        order_id += 1
    for _ in range(dup_contents):
        twin = rng.choice(deliveries)
        new_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        deliveries.append(
            Delivery(
                new_id,
                twin.order_id,
                twin.topic,
                twin.updated_at,
                twin.status,
                twin.lines,
                twin.body,
            )
        )
    order = list(range(len(deliveries)))
    rng.shuffle(order)
    keyed = [(float(pos), idx, False) for pos, idx in enumerate(order)]
    position = {idx: pos for pos, idx in enumerate(order)}
    for _ in range(round(n * cfg.resend_share)):
        idx = rng.randrange(len(deliveries))
        keyed.append((rng.uniform(position[idx] + 1, len(order) + 1), idx, True))
    keyed.sort()
    return deliveries, [(idx, resend) for _, idx, resend in keyed]


def count_reordered(deliveries: list[Delivery], schedule: list[tuple[int, bool]]) -> int:
    """Deliveries whose first POST comes after that of a newer version of the same order."""
    newest: dict[int, datetime] = {}
    reordered = 0
    for idx, resend in schedule:
        if resend:
            continue
        d = deliveries[idx]
        held = newest.get(d.order_id)
        if held is not None and held > d.updated_at:
            reordered += 1
        else:
            newest[d.order_id] = d.updated_at
    return reordered


# --------------------------------------------------------------------------- processes


def _die_with_parent() -> None:
    """In the child: SIGTERM when the ledger dies, even by SIGKILL (Linux PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Process:
    """A `pipeline` subprocess with one log file per incarnation."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log_dir = log_dir
        self.logs: list[Path] = []
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        path = self.log_dir / f"{self.name}-{len(self.logs)}.log"
        self.logs.append(path)
        with path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pipeline.cli", *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C reaches the ledger, which stops us cleanly
                preexec_fn=_die_with_parent,
            )

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def kill(self) -> None:
        """SIGKILL, like a crashed pod: no shutdown code runs."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    async def wait_http(self, url: str, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        async with ClientSession(timeout=ClientTimeout(total=3)) as http:
            while time.monotonic() < deadline:
                if self.exited() is not None:
                    return False
                try:
                    async with http.get(url) as resp:
                        if resp.status == 200:
                            return True
                except (ClientError, OSError, TimeoutError):
                    pass
                await asyncio.sleep(0.25)
        return False

    def notes(self) -> Counter[str]:
        """Warnings and worse from this process's JSON logs, by logger, message and error."""
        seen: Counter[str] = Counter()
        for path in self.logs:
            with path.open(errors="replace") as lines:
                for line in lines:
                    if '"level":"INFO"' in line or '"level":"DEBUG"' in line:
                        continue
                    try:
                        entry = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        continue
                    if not isinstance(entry, dict) or "msg" not in entry:
                        continue
                    key = f"{entry.get('level')} {entry.get('logger')}: {entry['msg'][:80]}"
                    if "error" in entry:
                        key += f" ({str(entry['error'])[:60]})"
                    seen[f"{self.name}: {key}"] += 1
        return seen


def _services_ours() -> dict[str, bool]:
    """Which services scripts/services.sh started itself (only those may be stopped)."""
    out = subprocess.run(
        ["bash", str(SERVICES), "status"], capture_output=True, text=True, check=False
    ).stdout
    return {
        name: any(line.startswith(f"{name}: up (ours") for line in out.splitlines())
        for name in ("kafka", "postgres")
    }


def _services(command: str) -> None:
    """Blocking on purpose (run in a thread): a cancelled ledger still lets it finish."""
    done = subprocess.run(
        ["bash", str(SERVICES), command], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"services.sh {command} failed:\n{done.stdout}{done.stderr}")


# --------------------------------------------------------------------------- the run


class Run:
    """State shared by the sender, the chaos and the process monitor."""

    def __init__(self, cfg: LedgerConfig, settings: Settings, work: Path) -> None:
        self.cfg = cfg
        self.settings = settings
        self.work = work
        self.result = LedgerResult(log_dir=str(work / "logs"))
        self.deliveries, self.schedule = plan_traffic(cfg)
        self.acked = [False] * len(self.deliveries)
        self.tried = [False] * len(self.deliveries)
        self.first_done = [asyncio.Event() for _ in self.deliveries]
        self.outcomes: Counter[str] = Counter()
        self.dispatched = 0  # highest schedule position handed to a client, plus one
        self.chaos_points: list[int] = []  # schedule position at which each chaos step starts
        self.steps_started = 0
        self.step_running = False
        self.last_step_end = 0.0
        self.last_ack = 0.0
        self.outcomes_at_last_ack: Counter[str] = Counter()
        self.stalled = False
        self.gave_up = 0
        self.last_trickle = 0.0
        self.chaos_done = asyncio.Event()
        self.pace = (time.monotonic(), 0)  # (time, position): pacing restarts after a hold
        self.started = time.monotonic()
        self.ingress_port = _free_port()
        worker_port = _free_port()
        self.worker_ready_url = f"http://127.0.0.1:{worker_port}/readyz"
        env = {
            **os.environ,
            "DATABASE_URL": settings.database_dsn,
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "REDIS_URL": settings.redis_url.value,
            "PIPELINE_TOPIC_PREFIX": settings.topic_prefix,
            "PIPELINE_PARTITIONS": str(settings.partitions),
            "TABLE_DATA_DIR": str(work / "tables"),
            "WORKER_WEB_PORT": str(worker_port),
            "KAFKA_SESSION_TIMEOUT_S": "8",
            "WORKER_STALL_TIMEOUT_S": str(STALL_TIMEOUT_S),
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
        }
        env.pop("PIPELINE_WORKER_RESTARTS", None)
        logs = work / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.worker = Process("worker", ["worker"], env, logs)
        self.ingress = Process("ingress", ["ingress", "--port", str(self.ingress_port)], env, logs)
        self.intentional = False  # set while the ledger itself stops a process

    def say(self, message: str) -> None:
        if self.cfg.verbose:
            t = time.monotonic() - self.started
            print(f"[ledger {t:7.1f}s] {message}", file=sys.stderr, flush=True)

    # ---- sending

    async def stock(self) -> None:
        """Products and stock first, so paid orders reserve against real levels."""
        url = f"http://127.0.0.1:{self.ingress_port}/webhooks/shopify"
        async with ClientSession() as http:
            for topic, body in stock_webhooks(random.Random(self.cfg.seed + 2)):
                d = Delivery(str(uuid.uuid4()), 0, topic, EPOCH, "", frozenset(), body)
                if await _post(http, url, d) != "200":
                    raise RuntimeError(f"stock webhook {topic} was refused")
        conn = await asyncpg.connect(self.settings.database_dsn)
        try:
            want = len(STOCKED) * len(LOCATIONS)
            for _ in range(300):
                found = await conn.fetchval(
                    "SELECT count(*) FROM inventory_levels WHERE variant_id IS NOT NULL"
                )
                if found == want:
                    return
                await asyncio.sleep(0.1)
        finally:
            await conn.close()
        raise RuntimeError("stock webhooks were not stored within 30 s")

    async def send_all(self) -> None:  # noqa: C901 - split with the ledger package
        cfg = self.cfg
        total = len(self.schedule)
        seconds = cfg.send_seconds if cfg.send_seconds is not None else max(30.0, total / 250)
        per_post = seconds / total
        gate = int(total * 0.9)  # the last tenth waits for the chaos to finish
        url = f"http://127.0.0.1:{self.ingress_port}/webhooks/shopify/orders"
        items = iter(enumerate(self.schedule))
        self.pace = (time.monotonic(), 0)
        backoff = random.Random(cfg.seed + 1)

        async def deliver(http: ClientSession, idx: int) -> None:
            d = self.deliveries[idx]
            first = time.monotonic()
            attempt = 0
            while True:
                self.tried[idx] = True
                outcome = await _post(http, url, d)
                self.outcomes[outcome] += 1
                if outcome == "200":
                    self.acked[idx] = True
                    self.last_ack = time.monotonic()
                    return
                if self.stalled or time.monotonic() - first > cfg.retry_budget_s:
                    self.gave_up += 1
                    return
                await asyncio.sleep(min(2.0, 0.1 * 2**attempt) * backoff.uniform(0.8, 1.2))
                attempt += 1

        async def client(http: ClientSession) -> None:
            for pos, (idx, resend) in items:
                if self.stalled:
                    return
                # Traffic never runs past the next chaos step's position before that step has
                # started, nor into the last tenth before all steps are over; after such a hold,
                # pacing restarts from there. While a step runs, held traffic still trickles in
                # (one new delivery per 0.5 s), so an outage always meets fresh deliveries.
                while (
                    self.steps_started < len(self.chaos_points)
                    and self.chaos_points[self.steps_started] <= pos
                ) or (pos >= gate and not self.chaos_done.is_set()):
                    now = time.monotonic()
                    if self.step_running and now - self.last_trickle >= 0.5:
                        self.last_trickle = now
                        break
                    await asyncio.sleep(0.02)
                    if self.pace[1] < pos:
                        self.pace = (time.monotonic(), pos)
                delay = self.pace[0] + (pos - self.pace[1]) * per_post - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                self.dispatched = max(self.dispatched, pos + 1)
                if resend:
                    await self.first_done[idx].wait()  # the platform retries a finished send
                    await deliver(http, idx)
                else:
                    try:
                        await deliver(http, idx)
                    finally:
                        self.first_done[idx].set()

        async def watch() -> None:
            # A platform would keep retrying for hours; a ledger that sees no 200 at all for
            # `stall_s` outside a chaos step stops and reports the ingress as stuck.
            while True:
                await asyncio.sleep(1.0)
                quiet = time.monotonic() - max(self.last_ack, self.last_step_end)
                if not self.step_running and quiet > cfg.stall_s:
                    since = Counter(self.outcomes)
                    since.subtract(self.outcomes_at_last_ack)
                    self.stalled = True
                    self.result.problems.append(
                        f"the ingress answered no 200 for {quiet:.0f} s outside any chaos step "
                        f"(answers meanwhile: {dict(+since)}); sending stopped"
                    )
                    self.say(self.result.problems[-1])
                    return
                if time.monotonic() - self.last_ack < 1.5:
                    self.outcomes_at_last_ack = Counter(self.outcomes)

        self.last_ack = time.monotonic()
        watcher = asyncio.create_task(watch())
        connector = TCPConnector(limit=cfg.concurrency)
        try:
            async with ClientSession(connector=connector, timeout=ClientTimeout(total=15)) as http:
                await asyncio.gather(*(client(http) for _ in range(cfg.concurrency)))
        finally:
            watcher.cancel()
        if self.gave_up:
            self.say(f"{self.gave_up} POST series ended without a 200")

    # ---- chaos

    def chaos_plan(self, ours: dict[str, bool]) -> list[tuple[float, str]]:
        cfg = self.cfg
        steps = ["kill"] * cfg.kills
        for name, wanted in (("postgres", cfg.postgres_restart), ("kafka", cfg.kafka_restart)):
            if not wanted:
                continue
            if ours[name]:
                steps.append(name)
            else:
                self.result.skipped.append(
                    f"{name} restart: `scripts/services.sh status` does not show {name} as "
                    "started by that script (reused, remote or down), so it is left alone"
                )
        rng = random.Random(cfg.seed + 2)
        rng.shuffle(steps)
        lo, hi = 0.08, 0.8
        width = (hi - lo) / max(1, len(steps))
        plan = [
            (lo + i * width + rng.uniform(0.1, 0.6) * width, step) for i, step in enumerate(steps)
        ]
        self.chaos_points = [int(at * len(self.schedule)) for at, _ in plan]
        return plan

    async def chaos(self, plan: list[tuple[float, str]]) -> None:
        step = "?"
        try:
            for point, (_, step) in zip(self.chaos_points, plan, strict=True):
                while self.dispatched < point:
                    await asyncio.sleep(0.02)
                self.steps_started += 1
                self.step_running = True
                if step == "kill":
                    await self.kill_worker()
                else:
                    await self.outage(step)
                self.step_running = False
                self.last_step_end = time.monotonic()
        except Exception as exc:
            self.result.problems.append(f"chaos step {step} failed: {exc}")
            self.say(f"chaos step {step} failed, no more chaos: {exc}")
        finally:
            self.step_running = False
            self.steps_started = len(self.chaos_points)
            self.chaos_done.set()

    async def kill_worker(self) -> None:
        self.intentional = True
        try:
            pid = self.worker.proc.pid if self.worker.proc else None
            self.worker.kill()
            self.result.kills_done += 1
            self.worker.start()
        finally:
            self.intentional = False
        self.say(f"SIGKILLed worker pid {pid} (kill {self.result.kills_done}); restarted it")
        if not await self.worker.wait_http(self.worker_ready_url, 60):
            self.say("restarted worker not ready within 60 s (the drain will tell)")

    async def outage(self, name: str) -> None:
        """Stop a service, keep it down `outage_s`, start it again whatever happens."""
        self.say(f"stopping {name}")
        began = time.monotonic()
        try:
            await asyncio.to_thread(_services, f"stop-{name}")
            await asyncio.sleep(self.cfg.outage_s)
        finally:
            # A thread is not cancelled with us: the start finishes even if the run is aborted.
            await asyncio.to_thread(_services, f"start-{name}")
            self.result.outages_s[name] = time.monotonic() - began
        self.result.restarts_done.append(name)
        self.say(f"{name} back after {self.result.outages_s[name]:.1f} s")

    async def monitor(self) -> None:
        """A process that exits on its own is a crash: note it, restart it (as a supervisor)."""
        while True:
            await asyncio.sleep(0.5)
            for proc in (self.worker, self.ingress):
                code = proc.exited()
                if code is None or self.intentional:
                    continue
                log = proc.logs[-1] if proc.logs else None
                self.result.crashes.append(f"{proc.name} exited with {code} (log {log})")
                self.say(f"{proc.name} exited with {code} on its own; restarting it")
                proc.start()

    # ---- drain and reconcile

    async def stored_ids(self, conn: asyncpg.Connection) -> set[str]:
        rows = await conn.fetch(
            "SELECT external_event_id FROM webhook_events WHERE kafka_topic = $1"
            " AND topic LIKE 'orders/%'",  # not the stock set up before the traffic
            topic_names(self.settings).raw,
        )
        return {r["external_event_id"] for r in rows}

    async def drain(self, conn: asyncpg.Connection) -> None:
        cfg = self.cfg
        acked = {d.delivery_id for d, ok in zip(self.deliveries, self.acked, strict=True) if ok}
        timeout = cfg.drain_timeout_s or 120 + cfg.deliveries / 500
        began = time.monotonic()
        last_rows, stable_since, last_note = -1, time.monotonic(), 0.0
        while True:
            ids = await _retrying(lambda: self.stored_ids(conn))
            rows = int(await conn.fetchval("SELECT count(*) FROM webhook_events"))
            now = time.monotonic()
            if rows != last_rows:
                last_rows, stable_since = rows, now
            have = len(ids & acked)
            if have == len(acked) and now - stable_since >= 2.0:
                self.result.drained = True
                break
            if now - began > timeout:
                self.say(f"drain timed out after {timeout:.0f} s: {have}/{len(acked)} stored")
                break
            if now - last_note > 10:
                self.say(f"draining: {have}/{len(acked)} acknowledged deliveries stored")
                last_note = now
            await asyncio.sleep(0.5)
        self.result.drain_s = time.monotonic() - began

    async def reconcile(self, conn: asyncpg.Connection) -> None:
        r = self.result
        raw = topic_names(self.settings).raw
        tried = {d.delivery_id for d, t in zip(self.deliveries, self.tried, strict=True) if t}
        acked = {d.delivery_id for d, ok in zip(self.deliveries, self.acked, strict=True) if ok}
        stored = await self.stored_ids(conn)
        r.sent, r.acknowledged = len(tried), len(acked)
        r.stored = len(acked & stored)
        r.missing = r.acknowledged - r.stored
        r.stored_unacknowledged = len(stored - acked)
        r.attempts = sum(self.outcomes.values())
        r.attempt_outcomes = dict(self.outcomes)
        r.posts = len(self.schedule)
        r.reordered = count_reordered(self.deliveries, self.schedule)
        if r.acknowledged < r.sent:
            r.problems.append(f"{r.sent - r.acknowledged} deliveries never got a 200")

        # Duplicates, computed rather than trusted to the unique constraints.
        checks = {
            "webhook_events": "SELECT count(*) - count(DISTINCT (platform, external_event_id))"
            " FROM webhook_events",
            "orders": "SELECT count(*) - count(DISTINCT (platform, shop_id, external_id))"
            " FROM orders",
            "order_lines": "SELECT count(*) - count(DISTINCT (order_id, external_line_id))"
            " FROM order_lines",
            "commerce_events": "SELECT count(*) - count(DISTINCT event_id) FROM commerce_events",
            # Same change twice under different event ids would mean the ids are not stable.
            "commerce_events_content": "SELECT count(*) - count(DISTINCT"
            " (platform, shop_id, entity_id, type, occurred_at)) FROM commerce_events"
            " WHERE entity_type = 'order'",  # a stock event's entity is item and location
        }
        for name, query in checks.items():
            r.duplicated_by[name] = int(await conn.fetchval(query))
        r.duplicated = sum(r.duplicated_by.values())

        rows = await conn.fetch(
            "SELECT status, count(*) AS n FROM webhook_events WHERE kafka_topic = $1"
            " GROUP BY status",
            raw,
        )
        r.statuses = {row["status"]: int(row["n"]) for row in rows}
        bad = {k: v for k, v in r.statuses.items() if k not in ("COMPLETED", "STALE", "DUPLICATE")}
        if bad:
            r.problems.append(f"valid deliveries recorded as {bad}")
        await self.check_state(conn, stored)
        await self.check_reservations(conn)

    async def check_reservations(self, conn: asyncpg.Connection) -> None:
        """Every stock level's reserved is the sum of its active reservations, and each order's
        active reservations are exactly its stored lines when it is paid, and none otherwise."""
        r = self.result
        levels = await conn.fetch(
            "SELECT l.id, l.reserved, COALESCE(sum(v.quantity), 0) AS active"
            " FROM inventory_levels l LEFT JOIN reservations v ON v.inventory_level_id = l.id"
            " AND v.released_at IS NULL AND v.consumed_at IS NULL GROUP BY l.id"
        )
        wrong = [
            f"level {row['id']}: reserved {row['reserved']}, active reservations {row['active']}"
            for row in levels
            if row["reserved"] != row["active"]
        ]
        rows = await conn.fetch(
            "SELECT o.external_id, o.status,"
            " (SELECT array_agg(l.external_line_id || ':' || l.quantity ORDER BY 1)"
            "  FROM order_lines l WHERE l.order_id = o.id AND l.quantity > 0) AS lines,"
            " (SELECT array_agg(v.external_line_id || ':' || v.quantity ORDER BY 1)"
            "  FROM reservations v WHERE v.order_id = o.id"
            "  AND v.released_at IS NULL AND v.consumed_at IS NULL) AS active"
            " FROM orders o WHERE o.platform = 'shopify' AND o.shop_id = $1",
            SHOP,
        )
        for row in rows:
            want = row["lines"] if row["status"] in ("paid", "partially_fulfilled") else None
            if sorted(want or []) != sorted(row["active"] or []):
                wrong.append(
                    f"order {row['external_id']} ({row['status']}): active reservations "
                    f"{row['active']}, lines {row['lines']}"
                )
        reserved = await conn.fetchval("SELECT COALESCE(sum(reserved), 0) FROM inventory_levels")
        if not levels or not reserved:
            wrong.append("no stock was ever reserved: the check would prove nothing")
        r.wrong_reservations = len(wrong)
        r.wrong_examples += wrong[:10]

    async def check_state(self, conn: asyncpg.Connection, stored: set[str]) -> None:
        """Each order holds its newest acknowledged version: time, status and lines."""
        r = self.result
        by_order: dict[int, list[tuple[Delivery, bool]]] = {}
        for d, ok, tried in zip(self.deliveries, self.acked, self.tried, strict=True):
            if tried:
                by_order.setdefault(d.order_id, []).append((d, ok))
        rows = await conn.fetch(
            "SELECT o.external_id, o.status, o.source_updated_at,"
            " array_agg(l.external_line_id || ':' || l.quantity)"
            " FILTER (WHERE l.order_id IS NOT NULL) AS lines"
            " FROM orders o LEFT JOIN order_lines l ON l.order_id = o.id"
            " WHERE o.platform = 'shopify' AND o.shop_id = $1 GROUP BY o.id",
            SHOP,
        )
        held = {int(row["external_id"]): row for row in rows}
        wrong: list[str] = []
        for order_id, versions in by_order.items():
            acked = [d for d, ok in versions if ok]
            if not acked:
                continue
            want = max(acked, key=lambda d: d.updated_at)
            # A delivery that never got its 200 may still have reached Kafka: newer is fine then.
            newer = [
                d
                for d, ok in versions
                if not ok and d.updated_at > want.updated_at and d.delivery_id in stored
            ]
            row = held.pop(order_id, None)
            if row is None:
                wrong.append(f"order {order_id}: no orders row (want {want.updated_at})")
                continue
            lines = frozenset(
                (k, int(q)) for k, _, q in (x.rpartition(":") for x in row["lines"] or [])
            )
            got = (row["source_updated_at"], row["status"], lines)
            if any(got == (d.updated_at, d.status, d.lines) for d in (want, *newer)):
                continue
            wrong.append(
                f"order {order_id}: holds {got[0]} {got[1]} {sorted(lines)}; newest acknowledged"
                f" is {want.updated_at} {want.status} {sorted(want.lines)} ({want.topic})"
            )
        wrong += [f"order {oid}: stored but never sent" for oid in held]
        r.wrong_state = len(wrong)
        r.wrong_examples = wrong[:10]

    async def diagnose_lag(self, lag: dict[int, int]) -> str:
        """What sits past the committed offset of a lagging partition, and is it still served?"""
        raw = topic_names(self.settings).raw
        committed = await _committed(self.settings)
        lines = [f"lag: group committed {committed}, uncommitted {lag}"]
        conn = await asyncpg.connect(self.settings.database_dsn)
        try:
            rows = await conn.fetch(
                "SELECT external_event_id, kafka_partition, kafka_offset FROM webhook_events"
                " WHERE kafka_topic = $1",
                raw,
            )
            stored_at = {
                r["external_event_id"]: (r["kafka_partition"], r["kafka_offset"]) for r in rows
            }
            for partition, behind in lag.items():
                if not behind:
                    continue
                start = committed.get(partition, 0)
                records = await _read_partition(self.settings, raw, partition, start)
                kinds: Counter[str] = Counter()
                first: list[str] = []
                for offset, delivery in records:
                    where = stored_at.get(delivery)
                    if where is None:
                        kind = "not stored"
                    elif where == (partition, offset):
                        kind = "stored from this offset"
                    else:
                        kind = "stored from another copy"
                    kinds[kind] += 1
                    if len(first) < 5:
                        at = f" p{where[0]}@{where[1]}" if where else ""
                        first.append(f"@{offset} {delivery} ({kind}{at})")
                lines.append(
                    f"p{partition} from committed offset {start}: {len(records)} records, "
                    f"{dict(kinds)}; first: {'; '.join(first)}"
                )
                lines.append(await self.probe(partition, conn))
        finally:
            await conn.close()
        lines.append(f"lag after the probes: {await _settled_lag(self.settings, 10.0)}")
        return "\n".join(lines) + "\n"

    async def probe(self, partition: int, conn: asyncpg.Connection) -> str:
        """Send one new delivery that lands on `partition`; is it stored within 15 s?"""
        order_id = 9_000_000_000
        while (
            murmur2(f"shopify:{SHOP}:order:{order_id}".encode()) & 0x7FFFFFFF
        ) % self.settings.partitions != partition:
            order_id += 1
        d = _order_versions(order_id, 1, random.Random(order_id))[0]
        url = f"http://127.0.0.1:{self.ingress_port}/webhooks/shopify/orders"
        async with ClientSession(timeout=ClientTimeout(total=15)) as http:
            answer = await _post(http, url, d)
        deadline = time.monotonic() + 15
        query = "SELECT count(*) FROM webhook_events WHERE external_event_id = $1"
        while time.monotonic() < deadline:
            if await conn.fetchval(query, d.delivery_id):
                return f"probe on p{partition}: answered {answer}, stored"
            await asyncio.sleep(0.5)
        return f"probe on p{partition}: answered {answer}, NOT stored within 15 s"

    async def diagnose(self) -> str:
        """Where missing deliveries sit in the raw topic, and what the group committed."""
        raw = topic_names(self.settings).raw
        acked = {d.delivery_id for d, ok in zip(self.deliveries, self.acked, strict=True) if ok}
        conn = await asyncpg.connect(self.settings.database_dsn)
        try:
            stored = await self.stored_ids(conn)
        finally:
            await conn.close()
        missing = acked - stored
        where = await _raw_index(self.settings, raw, missing)
        committed = await _committed(self.settings)
        ends = await _end_offsets(self.settings)
        lines = [f"group committed on {raw}: {dict(sorted(committed.items()))}"]
        lines.append(f"end offsets: {dict(sorted(ends.items()))}")
        for delivery_id in sorted(missing)[:30]:
            coords = where.get(delivery_id, [])
            if not coords:
                lines.append(f"missing {delivery_id}: NOT in the raw topic (acknowledged, lost)")
                continue
            verdict = [
                f"p{p}@{o} ({'committed past' if o < committed.get(p, -1) else 'not committed'})"
                for p, o in coords
            ]
            lines.append(f"missing {delivery_id}: {', '.join(verdict)}")
        if len(missing) > 30:
            lines.append(f"... and {len(missing) - 30} more missing")
        return "\n".join(lines)


async def _post(http: ClientSession, url: str, d: Delivery) -> str:
    """One attempt: the HTTP status, or the name of the connection error."""
    headers = {
        **delivery_headers(SECRET, d.body, shop=SHOP, topic=d.topic, webhook_id=d.delivery_id),
        "Content-Type": "application/json",
    }
    try:
        async with http.post(url, data=d.body, headers=headers) as resp:
            await resp.read()
            return str(resp.status)
    except (ClientError, OSError, TimeoutError) as exc:
        return type(exc).__name__


async def _retrying(op: Callable[[], Awaitable[Any]], attempts: int = 30) -> Any:
    for i in range(attempts):
        try:
            return await op()
        except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError):
            if i == attempts - 1:
                raise
            await asyncio.sleep(1.0)
    return None


async def _raw_index(
    settings: Settings, topic: str, wanted: set[str]
) -> dict[str, list[tuple[int, int]]]:
    """(partition, offset) of each copy of each wanted delivery id in the raw topic."""
    found: dict[str, list[tuple[int, int]]] = {}
    for partition in range(settings.partitions):
        for offset, delivery in await _read_partition(settings, topic, partition, 0):
            if delivery in wanted:
                found.setdefault(delivery, []).append((partition, offset))
    return found


async def _end_offsets(settings: Settings) -> dict[int, int]:
    raw = topic_names(settings).raw
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await consumer.start()
    try:
        tps = [TopicPartition(raw, p) for p in range(settings.partitions)]
        return {tp.partition: end for tp, end in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


async def _group_lag(settings: Settings) -> dict[int, int]:
    """Raw-topic messages per partition past the worker group's committed offset."""
    committed = await _committed(settings)
    ends = await _end_offsets(settings)
    return {p: max(0, end - committed.get(p, 0)) for p, end in sorted(ends.items())}


async def _settled_lag(settings: Settings, timeout_s: float) -> dict[int, int]:
    """The group's lag once it reaches zero, or as it stands after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        lag = await _group_lag(settings)
        if not any(lag.values()) or time.monotonic() > deadline:
            return lag
        await asyncio.sleep(1.0)


async def _committed(settings: Settings) -> dict[int, int]:
    return await committed_offsets(settings, topic_names(settings).raw)


async def _read_partition(
    settings: Settings, topic: str, partition: int, start: int
) -> list[tuple[int, str]]:
    """(offset, delivery id) of every record of one partition from `start` to its end."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    out: list[tuple[int, str]] = []
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        consumer.seek(tp, max(0, start))
        deadline = time.monotonic() + 60
        while await consumer.position(tp) < end and time.monotonic() < deadline:
            for records in (await consumer.getmany(tp, timeout_ms=1000)).values():
                out += [(r.offset, orjson.loads(r.value)["delivery_id"]) for r in records]
    finally:
        await consumer.stop()
    return out


async def run_ledger(cfg: LedgerConfig) -> LedgerResult:  # noqa: C901
    """Set up a database and topics, run the traffic and the chaos, reconcile, clean up."""
    base = load_settings()
    db_name = f"pipeline_ledger_{uuid.uuid4().hex[:8]}"
    server = base.database_dsn.rpartition("/")[0]
    settings = base.with_overrides(
        database_url=Secret(f"{server}/{db_name}"),
        topic_prefix=f"ledger{uuid.uuid4().hex[:6]}.",
        partitions=cfg.partitions,
        session_timeout_s=8.0,
    )
    work = Path(tempfile.mkdtemp(prefix="ledger-"))
    run = Run(cfg, settings, work)
    result = run.result
    run.say(
        f"{cfg.deliveries} deliveries, {len(run.schedule)} posts, db {db_name}, "
        f"topics {settings.topic_prefix}*, logs {work / 'logs'}"
    )
    admin = await asyncpg.connect(f"{server}/postgres")
    await admin.execute(f'CREATE DATABASE "{db_name}"')
    await admin.close()
    tasks: list[asyncio.Task[None]] = []
    try:
        conn = await asyncpg.connect(settings.database_dsn)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        pool = await asyncpg.create_pool(settings.database_dsn, min_size=1, max_size=2)
        assert pool is not None
        await ChannelStore(pool).add(Channel("shopify", SHOP, Secret(SECRET), "USD"))
        await pool.close()
        await ensure_topics(settings)

        run.ingress.start()
        run.worker.start()
        ingress_url = f"http://127.0.0.1:{run.ingress_port}/healthz"
        if not await run.ingress.wait_http(ingress_url, 60):
            raise RuntimeError(f"ingress did not start; log {run.ingress.logs[-1]}")
        if not await run.worker.wait_http(run.worker_ready_url, 90):
            raise RuntimeError(f"worker did not become ready; log {run.worker.logs[-1]}")
        await run.stock()
        plan = run.chaos_plan(await asyncio.to_thread(_services_ours))
        run.say("chaos plan: " + ", ".join(f"{s} at {a:.0%}" for a, s in plan))
        for skipped in result.skipped:
            run.say(f"skipped {skipped}")

        tasks = [asyncio.create_task(run.monitor()), asyncio.create_task(run.chaos(plan))]
        began = time.monotonic()
        await run.send_all()
        result.send_s = time.monotonic() - began
        await tasks[1]  # already done: the gate made the sender wait for it
        run.say(f"sent in {result.send_s:.1f} s; draining")
        conn = await asyncpg.connect(settings.database_dsn)
        try:
            await run.drain(conn)
            await run.reconcile(conn)
        finally:
            await conn.close()
        # Long enough for the worker's watchdog to notice stuck commits and restart itself.
        commit_wait = STALL_TIMEOUT_S * 2 + 20
        result.uncommitted = await _settled_lag(settings, commit_wait)
        if any(result.uncommitted.values()):
            result.problems.append(
                f"the worker group has not committed the whole raw topic {commit_wait} s after "
                "the drain "
                f"(uncommitted messages per partition: {result.uncommitted})"
            )
            try:
                result.diagnosis += await run.diagnose_lag(result.uncommitted)
            except Exception as exc:
                result.diagnosis += f"lag diagnosis failed: {exc!r}\n"
        tasks[0].cancel()
        notes = run.worker.notes() + run.ingress.notes()
        result.log_notes = dict(notes.most_common(12))
        result.gap_restarts = sum(n for k, n in notes.items() if "skipped or stalled" in k)
        if run.stalled:
            ready = await run.ingress.wait_http(ingress_url.replace("healthz", "readyz"), 3)
            result.problems.append(f"ingress /readyz answers {'200' if ready else 'not ready'}")
        if not result.drained:
            result.problems.append("the pipeline did not drain in time")
        if result.crashes:
            result.problems.append(f"{len(result.crashes)} unexpected process exits")
        if result.missing or result.duplicated:
            try:
                result.diagnosis = await run.diagnose()
            except Exception as exc:
                result.diagnosis = f"diagnosis failed: {exc!r}"
    finally:
        for task in tasks:
            task.cancel()
        # The chaos task restarts whatever it stopped in its own `finally`; wait for that.
        await asyncio.gather(*tasks, return_exceptions=True)
        run.intentional = True
        run.worker.stop()
        run.ingress.stop()
        await _cleanup(settings, server, db_name)
        if not result.ok or cfg.keep_logs:
            logs = [str(p) for p in run.worker.logs + run.ingress.logs]
            run.say("logs kept: " + " ".join(logs))
        else:
            shutil.rmtree(work, ignore_errors=True)
    return result


async def _cleanup(settings: Settings, server: str, db_name: str) -> None:
    try:
        admin = await _retrying(lambda: asyncpg.connect(f"{server}/postgres"))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        finally:
            await admin.close()
    except Exception as exc:
        print(f"ledger: could not drop database {db_name}: {exc!r}", file=sys.stderr)
    try:
        await delete_prefixed_topics(settings)
    except Exception as exc:
        print(f"ledger: could not delete topics {settings.topic_prefix}*: {exc!r}", file=sys.stderr)


async def _main(cfg: LedgerConfig) -> LedgerResult:
    # SIGTERM (e.g. `timeout`) cancels the run like Ctrl-C does, so the cleanup still runs.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await run_ledger(cfg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--no-kafka-restart", action="store_true")
    parser.add_argument("--no-postgres-restart", action="store_true")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--send-seconds", type=float, default=None)
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args()
    cfg = LedgerConfig(
        deliveries=args.deliveries,
        seed=args.seed,
        kills=args.kills,
        kafka_restart=not args.no_kafka_restart,
        postgres_restart=not args.no_postgres_restart,
        concurrency=args.concurrency,
        partitions=args.partitions,
        send_seconds=args.send_seconds,
        keep_logs=args.keep_logs,
    )
    result = asyncio.run(_main(cfg))
    print(result.line())
    print(result.details())
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
