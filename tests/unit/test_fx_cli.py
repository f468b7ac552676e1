"""`pipeline fx` without services: its arguments, refused before anything connects, and the
text `show` prints."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from pipeline import cli
from pipeline.cli_common import CliError
from pipeline.fx.rates import RateSet
from pipeline.fx_cli import render

pytestmark = pytest.mark.usefixtures("clean_env")


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (("show", "--at", "yesterday"), "pipeline: error: --at 'yesterday' is not a date"),
        (("show", "--base", "euro"), "pipeline: error: --base 'euro' is not a currency code"),
        (("history", "--limit", "0"), "pipeline: error: --limit 0 must be 1 to 1000"),
        (("convert",), "invalid choice: 'convert'"),
    ],
)
def test_bad_arguments_are_refused_before_connecting(
    capsys: pytest.CaptureFixture[str],
    connects: list[object],
    argv: tuple[str, ...],
    problem: str,
) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["fx", *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert problem in err
    assert err.count("\n") == 1 or "usage:" in err
    assert connects == []


def test_a_past_day_is_read_from_postgres(
    capsys: pytest.CaptureFixture[str], connects: list[object]
) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["fx", "show", "--at", "2026-11-30"])
    assert info.value.code == 2
    assert capsys.readouterr().err.startswith("pipeline: error: cannot reach Postgres")
    assert len(connects) == 1


RATES = RateSet("oxr", "USD", date(2026, 12, 1), {"EUR": Decimal("0.947867"), "JPY": Decimal(150)})


def test_show_prints_one_base_in_every_other_currency() -> None:
    assert render(RATES, "USD", "Postgres") == [
        "oxr rates as of 2026-12-01 (from Postgres): 1 USD =",
        "  EUR 0.947867",
        "  JPY 150",
    ]
    assert render(RATES, "EUR", "the Redis cache") == [
        "oxr rates as of 2026-12-01 (from the Redis cache): 1 EUR =",
        "  JPY 158.2500498",
        "  USD 1.055000332",
    ]


def test_a_base_the_provider_has_no_rate_for_is_exit_1() -> None:
    with pytest.raises(CliError, match="oxr has no CHF rate") as info:
        render(RATES, "CHF", "Postgres")
    assert info.value.status == 1
