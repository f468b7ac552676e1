"""Open Exchange Rates: `latest.json` and `historical/YYYY-MM-DD.json`, with an app id; USD
base (the only one the free plan serves)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from pipeline.fx.providers import HttpClient, ProviderError
from pipeline.fx.rates import RateSet, is_currency
from pipeline.settings import Secret

NAME = "oxr"
BASE_URL = "https://openexchangerates.org/api"


def _malformed(detail: str) -> ProviderError:
    return ProviderError(NAME, f"malformed response: {detail}")


def parse_rates(status: int, body: bytes) -> RateSet:
    """The rate set in an OXR answer, or ProviderError with OXR's own error message (its
    errors are JSON too: `{"error": true, "status": 401, "message": "invalid_app_id", ...}`)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _malformed(f"HTTP {status}, body is not JSON") from None
    if not isinstance(doc, dict):
        raise _malformed("the body is not a JSON object")
    if doc.get("error") or status != 200:
        raise ProviderError(
            NAME,
            f"HTTP {doc.get('status', status)} {doc.get('message', 'error')}: "
            f"{doc.get('description', 'no description')}",
        )
    return _rate_set(doc)


def _rate_set(doc: dict[str, Any]) -> RateSet:
    base, stamp, raw = doc.get("base"), doc.get("timestamp"), doc.get("rates")
    if not isinstance(base, str) or not is_currency(base):
        raise _malformed(f"base {base!r} is not a currency")
    if not isinstance(stamp, int) or isinstance(stamp, bool) or stamp <= 0:
        raise _malformed(f"timestamp {stamp!r} is not a Unix time")
    if not isinstance(raw, dict) or not raw:
        raise _malformed("no rates object")
    rates: dict[str, Decimal] = {}
    for currency, value in raw.items():
        try:
            rate = Decimal(str(value)) if isinstance(value, int | float) else None
        except InvalidOperation:
            rate = None
        if rate is None or not is_currency(currency) or not (rate.is_finite() and rate > 0):
            raise _malformed(f"{currency!r} rate {value!r} is not a rate")
        rates[currency] = rate
    as_of = datetime.fromtimestamp(stamp, tz=UTC).date()
    return RateSet(NAME, base, as_of, rates)


@dataclass(slots=True)
class OxrProvider:
    """OXR's newest rates (hourly on paid plans) and end-of-day historical ones."""

    http: HttpClient
    app_id: Secret
    base_url: str = BASE_URL
    name: str = NAME

    async def latest(self) -> RateSet:
        return await self._get("/latest.json")

    async def on(self, day: date) -> RateSet:
        return await self._get(f"/historical/{day.isoformat()}.json")

    async def _get(self, path: str) -> RateSet:
        if not self.app_id.value:
            raise ProviderError(NAME, "OXR_APP_ID is not set")
        status, body = await self.http.get(
            NAME, self.base_url + path, params={"app_id": self.app_id.value}
        )
        return parse_rates(status, body)
