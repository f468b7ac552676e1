"""The European Central Bank's euro foreign exchange reference rates: one XML feed for the
newest working day (published around 16:00 CET) and one for the last 90 days; EUR base."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from pipeline.fx.providers import HttpClient, ProviderError
from pipeline.fx.rates import RateSet, is_currency

NAME = "ecb"
BASE_URL = "https://www.ecb.europa.eu/stats"
DAILY = "/eurofxref/eurofxref-daily.xml"
HIST_90D = "/eurofxref/eurofxref-hist-90d.xml"
_NS = "{http://www.ecb.int/vocabulary/2002-08-01/eurofxref}"


def _malformed(detail: str) -> ProviderError:
    return ProviderError(NAME, f"malformed reference-rate XML: {detail}")


def parse_days(body: bytes) -> list[RateSet]:
    """Every day's rates in a eurofxref feed, newest first; ProviderError if it is not one.

    A DOCTYPE is refused before parsing: the feed has none, and without one no entity can be
    defined, so ElementTree (which never fetches external ones) cannot be made to expand any.
    """
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise _malformed("it declares a DOCTYPE")
    try:
        root = ET.fromstring(body)  # noqa: S314 (no DOCTYPE, see above)
    except ET.ParseError as exc:
        raise _malformed(str(exc)) from None
    days = [_day(cube) for cube in root.iter(f"{_NS}Cube") if "time" in cube.attrib]
    if not days:
        raise _malformed("no <Cube time=...> day in it")
    return sorted(days, key=lambda d: d.as_of, reverse=True)


def _day(cube: ET.Element) -> RateSet:
    try:
        as_of = date.fromisoformat(cube.attrib["time"])
    except ValueError:
        raise _malformed(f"time={cube.attrib['time']!r} is not a date") from None
    rates: dict[str, Decimal] = {}
    for entry in cube.iter(f"{_NS}Cube"):
        if "currency" not in entry.attrib:
            continue
        currency, text = entry.attrib["currency"], entry.attrib.get("rate", "")
        try:
            rate = Decimal(text)
        except InvalidOperation:
            raise _malformed(f"{currency} rate {text!r} on {as_of} is not a number") from None
        if not is_currency(currency) or not (rate.is_finite() and rate > 0):
            raise _malformed(f"{currency!r} rate {text!r} on {as_of} is not a rate")
        rates[currency] = rate
    if not rates:
        raise _malformed(f"no rates on {as_of}")
    return RateSet(NAME, "EUR", as_of, rates)


@dataclass(slots=True)
class EcbProvider:
    """Reads the daily feed for the newest rates, the 90-day feed for a past day."""

    http: HttpClient
    base_url: str = BASE_URL
    name: str = NAME

    async def latest(self) -> RateSet:
        return (await self._feed(DAILY))[0]

    async def on(self, day: date) -> RateSet:
        for found in await self._feed(HIST_90D):
            if found.as_of <= day:
                return found
        raise ProviderError(NAME, f"no reference rates on or before {day} in the last 90 days")

    async def _feed(self, path: str) -> list[RateSet]:
        url = self.base_url + path
        status, body = await self.http.get(NAME, url)
        if status != 200:
            raise ProviderError(NAME, f"HTTP {status} from {url}")
        return parse_days(body)
