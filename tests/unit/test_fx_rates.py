"""Parsing each provider's real formats, and cross rates in Decimal: no I/O."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import orjson
import pytest

from pipeline.fx import ecb, oxr
from pipeline.fx.providers import ProviderError, StaleRates, check_fresh
from pipeline.fx.rates import RateSet, UnknownCurrency

ECB_DAILY = b"""<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01"
    xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
  <gesmes:subject>Reference rates</gesmes:subject>
  <gesmes:Sender><gesmes:name>European Central Bank</gesmes:name></gesmes:Sender>
  <Cube>
    <Cube time='2026-12-01'>
      <Cube currency='USD' rate='1.0550'/>
      <Cube currency='JPY' rate='158.21'/>
      <Cube currency='GBP' rate='0.83475'/>
    </Cube>
  </Cube>
</gesmes:Envelope>"""


def ecb_hist(*days: tuple[str, str]) -> bytes:
    cubes = "".join(f"<Cube time='{d}'><Cube currency='USD' rate='{r}'/></Cube>" for d, r in days)
    return (
        '<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" '
        'xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">'
        f"<gesmes:subject>Reference rates</gesmes:subject><Cube>{cubes}</Cube></gesmes:Envelope>"
    ).encode()


def test_ecb_daily_feed() -> None:
    [day] = ecb.parse_days(ECB_DAILY)
    assert (day.provider, day.base, day.as_of) == ("ecb", "EUR", date(2026, 12, 1))
    assert day.rates == {
        "USD": Decimal("1.0550"),
        "JPY": Decimal("158.21"),
        "GBP": Decimal("0.83475"),
    }


def test_ecb_history_is_ordered_newest_first() -> None:
    days = ecb.parse_days(ecb_hist(("2026-11-27", "1.05"), ("2026-12-01", "1.06")))
    assert [d.as_of for d in days] == [date(2026, 12, 1), date(2026, 11, 27)]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"<html>Service unavailable", "malformed reference-rate XML"),
        (ecb_hist(), "no <Cube time=...> day"),
        (ecb_hist(("2026-13-01", "1.05")), "is not a date"),
        (ecb_hist(("2026-12-01", "n/a")), "is not a number"),
        (ecb_hist(("2026-12-01", "-1")), "is not a rate"),
        (b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', "declares a DOCTYPE"),
    ],
)
def test_ecb_malformed_feeds_are_one_clear_error(body: bytes, detail: str) -> None:
    with pytest.raises(ProviderError, match=f"^ecb: .*{detail}") as caught:
        ecb.parse_days(body)
    assert not caught.value.retriable


OXR_LATEST = {
    "disclaimer": "Usage subject to terms: https://openexchangerates.org/terms",
    "license": "https://openexchangerates.org/license",
    "timestamp": 1796083200,  # 2026-12-01T00:00:00Z
    "base": "USD",
    "rates": {"EUR": 0.947867, "GBP": 0.791, "JPY": 149.96, "IDR": 15890},
}


def test_oxr_latest() -> None:
    rates = oxr.parse_rates(200, orjson.dumps(OXR_LATEST))
    assert (rates.provider, rates.base, rates.as_of) == ("oxr", "USD", date(2026, 12, 1))
    assert rates.rates["EUR"] == Decimal("0.947867")
    assert rates.rates["IDR"] == Decimal(15890)


def test_oxr_error_body_is_reported_in_its_own_words() -> None:
    body = {
        "error": True,
        "status": 401,
        "message": "invalid_app_id",
        "description": "Invalid App ID provided. Please sign up at https://openexchangerates.org",
    }
    with pytest.raises(ProviderError, match=r"^oxr: HTTP 401 invalid_app_id: Invalid App ID"):
        oxr.parse_rates(401, orjson.dumps(body))


@pytest.mark.parametrize(
    "body",
    [
        b"<html>",
        b"[]",
        orjson.dumps({**OXR_LATEST, "base": "usd"}),
        orjson.dumps({**OXR_LATEST, "timestamp": "yesterday"}),
        orjson.dumps({**OXR_LATEST, "rates": {}}),
        orjson.dumps({**OXR_LATEST, "rates": {"EUR": "0.9"}}),
        orjson.dumps({**OXR_LATEST, "rates": {"EUR": 0}}),
    ],
)
def test_oxr_malformed_bodies(body: bytes) -> None:
    with pytest.raises(ProviderError, match=r"^oxr: malformed response"):
        oxr.parse_rates(200, body)


EUR = RateSet("ecb", "EUR", date(2026, 12, 1), {"USD": Decimal("1.0550"), "JPY": Decimal("158.21")})


def test_rates_from_the_base_and_to_it() -> None:
    assert EUR.rate("EUR", "USD") == Decimal("1.0550")
    assert EUR.rate("EUR", "EUR") == Decimal(1)
    assert EUR.rate("USD", "EUR") == Decimal(1) / Decimal("1.0550")


def test_cross_rate_goes_through_the_base_in_decimal() -> None:
    usd_jpy = EUR.rate("USD", "JPY")
    assert usd_jpy == Decimal("158.21") / Decimal("1.0550")
    assert str(usd_jpy).startswith("149.962085308056872037914")


def test_unknown_currency() -> None:
    with pytest.raises(UnknownCurrency, match="ecb has no CHF rate for 2026-12-01"):
        EUR.rate("CHF", "USD")


def test_freshness_allows_a_long_weekend_not_a_dead_feed() -> None:
    assert check_fresh(EUR, date(2026, 12, 6), max_age_days=5) is EUR
    with pytest.raises(StaleRates, match=r"^ecb: rates as of 2026-12-01 are more than 5 days"):
        check_fresh(EUR, date(2026, 12, 7), max_age_days=5)
