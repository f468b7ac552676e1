"""The real FX HTTP client and providers against a local aiohttp server that answers in each
provider's real format: success, HTTP errors, timeouts, malformed bodies, a stale feed."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bench.sandbox import free_port
from pipeline.fx.ecb import EcbProvider
from pipeline.fx.oxr import OxrProvider
from pipeline.fx.providers import (
    AllProvidersFailed,
    HttpClient,
    ProviderError,
    latest_rates,
    rates_on,
)
from pipeline.retry import Backoff
from pipeline.settings import Secret
from tests.unit.test_fx_rates import ECB_DAILY, OXR_LATEST, ecb_hist

APP_ID = "app-id-0123456789"
TODAY = date(2026, 12, 2)


@dataclass
class Feed:
    """What the fake providers answer: per path, a list of behaviours used in turn (the last
    one repeats), and how many requests each path got."""

    plan: dict[str, list[str]] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)

    def next(self, path: str) -> str:
        self.hits[path] += 1
        steps = self.plan.get(path, ["ok"])
        return steps[min(self.hits[path], len(steps)) - 1]


def app(feed: Feed) -> web.Application:
    async def answer(request: web.Request) -> web.StreamResponse:
        path = request.path
        step = feed.next(path)
        if step == "slow":
            await asyncio.sleep(5)
        if step == "slow-ish":  # answers, but late enough for others to find a lock held
            await asyncio.sleep(0.2)
        if step.isdigit():
            return web.Response(status=int(step), text="<html>error</html>")
        if step == "garbage":
            return web.Response(body=b"<html><body>Maintenance</body></html>")
        if path.startswith("/oxr"):
            return oxr_answer(request, step)
        body = {
            "/ecb/eurofxref/eurofxref-daily.xml": ECB_DAILY,
            "/ecb/eurofxref/eurofxref-hist-90d.xml": ecb_hist(
                ("2026-11-27", "1.0490"), ("2026-11-30", "1.0510"), ("2026-12-01", "1.0550")
            ),
        }[path]
        if step == "stale":
            body = ecb_hist(("2026-10-01", "1.0800"))
        return web.Response(body=body, content_type="text/xml")

    def oxr_answer(request: web.Request, step: str) -> web.Response:
        if request.query.get("app_id") != APP_ID:
            error = {
                "error": True,
                "status": 401,
                "message": "invalid_app_id",
                "description": "Invalid App ID provided. Please sign up or contact support.",
            }
            return web.json_response(error, status=401)
        if request.path.startswith("/oxr/historical/"):
            return web.json_response({**OXR_LATEST, "timestamp": 1795996800})  # 2026-11-30
        return web.json_response(OXR_LATEST)

    application = web.Application()
    application.router.add_get("/{tail:.*}", answer)
    return application


@pytest.fixture
def feed() -> Feed:
    return Feed()


@pytest.fixture
async def server(feed: Feed) -> AsyncIterator[TestServer]:
    srv = TestServer(app(feed))
    await srv.start_server()
    yield srv
    await srv.close()


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    async with aiohttp.ClientSession() as session:
        yield HttpClient(session, timeout_s=0.3, attempts=3, backoff=Backoff(0.01, 0.02))


def ecb_at(server: TestServer, http: HttpClient) -> EcbProvider:
    return EcbProvider(http, base_url=str(server.make_url("/ecb")))


def oxr_at(server: TestServer, http: HttpClient, app_id: str = APP_ID) -> OxrProvider:
    return OxrProvider(http, Secret(app_id), base_url=str(server.make_url("/oxr")))


DAILY = "/ecb/eurofxref/eurofxref-daily.xml"


async def test_ecb_latest(server: TestServer, http: HttpClient) -> None:
    rates = await ecb_at(server, http).latest()
    assert (rates.base, rates.as_of, rates.rates["USD"]) == (
        "EUR",
        date(2026, 12, 1),
        Decimal("1.0550"),
    )


async def test_ecb_past_day_is_the_newest_on_or_before_it(
    server: TestServer, http: HttpClient
) -> None:
    ecb = ecb_at(server, http)
    assert (await ecb.on(date(2026, 11, 29))).rates["USD"] == Decimal("1.0490")  # a Sunday
    assert (await ecb.on(date(2026, 11, 30))).rates["USD"] == Decimal("1.0510")
    with pytest.raises(ProviderError, match="no reference rates on or before 2026-08-01"):
        await ecb.on(date(2026, 8, 1))


async def test_a_5xx_is_retried_with_backoff(
    server: TestServer, http: HttpClient, feed: Feed
) -> None:
    feed.plan[DAILY] = ["503", "502", "ok"]
    assert (await ecb_at(server, http).latest()).as_of == date(2026, 12, 1)
    assert feed.hits[DAILY] == 3


async def test_a_5xx_that_lasts_is_one_error_after_the_last_attempt(
    server: TestServer, http: HttpClient, feed: Feed
) -> None:
    feed.plan[DAILY] = ["503"]
    with pytest.raises(
        ProviderError, match=r"^ecb: HTTP 503 from http://.*daily\.xml \(after 3 attempts\)$"
    ) as caught:
        await ecb_at(server, http).latest()
    assert caught.value.retriable
    assert feed.hits[DAILY] == 3


@pytest.mark.parametrize(("step", "detail"), [("404", "HTTP 404 from"), ("garbage", "malformed")])
async def test_a_wrong_answer_is_not_retried(
    server: TestServer, http: HttpClient, feed: Feed, step: str, detail: str
) -> None:
    feed.plan[DAILY] = [step]
    with pytest.raises(ProviderError, match=f"^ecb: {detail}") as caught:
        await ecb_at(server, http).latest()
    assert not caught.value.retriable
    assert feed.hits[DAILY] == 1


async def test_a_slow_provider_times_out(server: TestServer, http: HttpClient, feed: Feed) -> None:
    feed.plan[DAILY] = ["slow"]
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(
        ProviderError, match=r"no answer from .* within 0\.3 s \(after 3 attempts\)"
    ):
        await ecb_at(server, http).latest()
    assert loop.time() - started < 2.0
    assert feed.hits[DAILY] == 3


async def test_nothing_listening(http: HttpClient) -> None:
    ecb = EcbProvider(http, base_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ProviderError, match=r"^ecb: cannot reach http://127\.0\.0\.1"):
        await ecb.latest()


async def test_oxr_latest_and_historical(server: TestServer, http: HttpClient) -> None:
    oxr = oxr_at(server, http)
    latest = await oxr.latest()
    assert (latest.base, latest.as_of, latest.rates["EUR"]) == (
        "USD",
        date(2026, 12, 1),
        Decimal("0.947867"),
    )
    assert (await oxr.on(date(2026, 11, 30))).as_of == date(2026, 11, 30)


async def test_oxr_wrong_app_id(server: TestServer, http: HttpClient, feed: Feed) -> None:
    with pytest.raises(
        ProviderError, match=r"^oxr: HTTP 401 invalid_app_id: Invalid App ID"
    ) as caught:
        await oxr_at(server, http, app_id="wrong-id-42").latest()
    assert "wrong-id-42" not in str(caught.value)
    assert feed.hits["/oxr/latest.json"] == 1


async def test_oxr_without_an_app_id_asks_nothing(
    server: TestServer, http: HttpClient, feed: Feed
) -> None:
    with pytest.raises(ProviderError, match=r"^oxr: OXR_APP_ID is not set$"):
        await oxr_at(server, http, app_id="").latest()
    assert not feed.hits


async def test_a_stale_feed_falls_back_to_the_next_provider(
    server: TestServer, http: HttpClient, feed: Feed
) -> None:
    feed.plan[DAILY] = ["stale"]
    rates = await latest_rates([ecb_at(server, http), oxr_at(server, http)], TODAY, 5)
    assert rates.provider == "oxr"
    assert rates.rate("EUR", "USD") == Decimal(1) / Decimal("0.947867")


async def test_every_provider_failing_names_each_error(
    server: TestServer, http: HttpClient, feed: Feed
) -> None:
    feed.plan[DAILY] = ["stale"]
    with pytest.raises(AllProvidersFailed) as caught:
        await latest_rates([ecb_at(server, http), oxr_at(server, http, "bad")], TODAY, 5)
    assert str(caught.value) == (
        "no provider gave rates: ecb: rates as of 2026-10-01 are more than 5 days older than "
        "2026-12-02; oxr: HTTP 401 invalid_app_id: Invalid App ID provided. Please sign up or "
        "contact support."
    )
    assert not caught.value.retriable


async def test_past_day_in_configured_order(
    server: TestServer, http: HttpClient, feed: Feed
) -> None:
    both = [ecb_at(server, http), oxr_at(server, http)]
    assert (await rates_on(both, date(2026, 11, 30), 5)).provider == "ecb"
    feed.plan["/ecb/eurofxref/eurofxref-hist-90d.xml"] = ["500"]
    assert (await rates_on(both, date(2026, 11, 30), 5)).provider == "oxr"
