"""The platform's side: signed POSTs to the ingress, paced, held for the chaos, retried."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter

import asyncpg
import orjson
from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector

from bench.ledger import marketplaces
from bench.ledger.marketplaces import signed_headers
from bench.ledger.state import Run
from bench.ledger.traffic import LOCATIONS, STOCKED, WOO_STOCKED, Delivery, stock_webhooks

EMPTY_ACK = frozenset({"shopee", "tiktok"})  # the others answer {"status": "accepted", …}


async def post_once(http: ClientSession, url: str, d: Delivery) -> tuple[str, bytes]:
    """One attempt signed as `d`'s platform signs: the HTTP status (or the name of the
    connection error) and the answer's body."""
    headers = {
        **signed_headers(d.platform, d.topic, d.body, d.delivery_id),
        "Content-Type": "application/json",
    }
    try:
        async with http.post(url, data=d.body, headers=headers) as resp:
            return str(resp.status), await resp.read()
    except (ClientError, OSError, TimeoutError) as exc:
        return type(exc).__name__, b""


async def post(http: ClientSession, url: str, d: Delivery) -> str:
    """One attempt: the HTTP status, or the name of the connection error."""
    return (await post_once(http, url, d))[0]


def answer_problem(d: Delivery, answer: bytes) -> str | None:
    """What is wrong with a 200's body: Shopee and TikTok Shop want it empty, the others get
    `{"status": "accepted", "delivery_id": …}` naming the delivery as planned."""
    if d.platform in EMPTY_ACK:
        return None if answer == b"" else f"{d.platform} got a non-empty 200: {answer[:80]!r}"
    try:
        got = orjson.loads(answer)
    except orjson.JSONDecodeError:
        return f"{d.platform} got a 200 that is not JSON: {answer[:80]!r}"
    if got == {"status": "accepted", "delivery_id": d.delivery_id}:
        return None
    return f"{d.platform} delivery {d.delivery_id} was answered {got}"


STOCK_WAIT_S = 120.0


async def send_stock(run: Run) -> None:
    """Products and stock first, so paid orders reserve against real levels."""
    stock = stock_webhooks(random.Random(run.cfg.seed + 2), run.cfg.marketplaces)
    async with ClientSession() as http:
        for d in stock:
            if await post(http, run.ingress_url(f"/webhooks/{d.platform}"), d) != "200":
                raise RuntimeError(f"{d.platform} stock webhook {d.topic} was refused")
    began = time.monotonic()
    conn = await asyncpg.connect(run.settings.database_dsn)
    try:
        want = len(STOCKED) * len(LOCATIONS) + len(WOO_STOCKED) * run.cfg.marketplaces
        found = 0
        # Generous: on a loaded machine the two workers' first rebalance alone can take half a
        # minute; a stall here would still fail the run through its alarms and self-restarts.
        while time.monotonic() - began < STOCK_WAIT_S:
            found = await conn.fetchval(
                "SELECT count(*) FROM inventory_levels WHERE variant_id IS NOT NULL"
            )
            if found == want:
                run.say(f"stock stored in {time.monotonic() - began:.1f} s")
                return
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    raise RuntimeError(
        f"stock webhooks were not stored within {STOCK_WAIT_S:g} s ({found} of {want} levels)"
    )


class Sender:
    """Sends the run's schedule with `concurrency` clients, recording every answer in the run."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.cfg = run.cfg
        total = len(run.schedule)
        seconds = (
            self.cfg.send_seconds if self.cfg.send_seconds is not None else max(30.0, total / 250)
        )
        self.per_post = seconds / total
        self.gate = int(total * 0.9)  # the last tenth waits for the chaos to finish
        self.urls = {
            platform: run.ingress_url(f"/webhooks/{platform}")
            for platform in ("shopify", *marketplaces.PLATFORMS)
        }
        self.items = iter(enumerate(run.schedule))
        self.first_done = [asyncio.Event() for _ in run.deliveries]
        self.backoff = random.Random(self.cfg.seed + 1)
        self.pace = (0.0, 0)  # (time, position): pacing restarts after a hold
        self.last_ack = 0.0
        self.outcomes_at_last_ack: Counter[str] = Counter()
        self.last_trickle = 0.0
        self.gave_up = 0

    async def send_all(self) -> None:
        """The whole schedule, until it is sent or the ingress stalls."""
        self.pace = (time.monotonic(), 0)
        self.last_ack = time.monotonic()
        watcher = asyncio.create_task(self.watch())
        connector = TCPConnector(limit=self.cfg.concurrency)
        try:
            async with ClientSession(connector=connector, timeout=ClientTimeout(total=15)) as http:
                await asyncio.gather(*(self.client(http) for _ in range(self.cfg.concurrency)))
        finally:
            watcher.cancel()
        if self.gave_up:
            self.run.say(f"{self.gave_up} POST series ended without a 200")

    async def client(self, http: ClientSession) -> None:
        for pos, (idx, resend) in self.items:
            if self.run.stalled:
                return
            await self.wait_turn(pos)
            self.run.dispatched = max(self.run.dispatched, pos + 1)
            if resend:
                await self.first_done[idx].wait()  # the platform retries a finished send
                await self.deliver(http, idx)
            else:
                try:
                    await self.deliver(http, idx)
                finally:
                    self.first_done[idx].set()

    def held(self, pos: int) -> bool:
        """Whether `pos` is past the next chaos step's position before that step has started,
        or in the last tenth before all steps are over."""
        run = self.run
        return (
            run.steps_started < len(run.chaos_points) and run.chaos_points[run.steps_started] <= pos
        ) or (pos >= self.gate and not run.chaos_done.is_set())

    async def wait_turn(self, pos: int) -> None:
        # Traffic never runs past the next chaos step's position before that step has started,
        # nor into the last tenth before all steps are over; after such a hold, pacing restarts
        # from there. While a step runs, held traffic still trickles in (one new delivery per
        # 0.5 s), so an outage always meets fresh deliveries.
        while self.held(pos):
            now = time.monotonic()
            if self.run.step_running and now - self.last_trickle >= 0.5:
                self.last_trickle = now
                break
            await asyncio.sleep(0.02)
            if self.pace[1] < pos:
                self.pace = (time.monotonic(), pos)
        delay = self.pace[0] + (pos - self.pace[1]) * self.per_post - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    async def deliver(self, http: ClientSession, idx: int) -> None:
        """POST one delivery until it gets a 200, the retry budget runs out or sending stalls."""
        run = self.run
        d = run.deliveries[idx]
        first = time.monotonic()
        attempt = 0
        while True:
            run.tried[idx] = True
            outcome, answer = await post_once(http, self.urls[d.platform], d)
            run.outcomes[outcome] += 1
            if outcome == "200":
                run.acked[idx] = True
                self.last_ack = time.monotonic()
                if (problem := answer_problem(d, answer)) is not None:
                    run.bad_answers.append(problem)
                return
            if run.stalled or time.monotonic() - first > self.cfg.retry_budget_s:
                self.gave_up += 1
                return
            await asyncio.sleep(min(2.0, 0.1 * 2**attempt) * self.backoff.uniform(0.8, 1.2))
            attempt += 1

    async def watch(self) -> None:
        # A platform would keep retrying for hours; a ledger that sees no 200 at all for
        # `stall_s` outside a chaos step stops and reports the ingress as stuck.
        run = self.run
        while True:
            await asyncio.sleep(1.0)
            quiet = time.monotonic() - max(self.last_ack, run.last_step_end)
            if not run.step_running and quiet > self.cfg.stall_s:
                since = Counter(run.outcomes)
                since.subtract(self.outcomes_at_last_ack)
                run.stalled = True
                run.result.problems.append(
                    f"the ingress answered no 200 for {quiet:.0f} s outside any chaos step "
                    f"(answers meanwhile: {dict(+since)}); sending stopped"
                )
                run.say(run.result.problems[-1])
                return
            if time.monotonic() - self.last_ack < 1.5:
                self.outcomes_at_last_ack = Counter(run.outcomes)
