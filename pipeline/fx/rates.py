"""A provider's rate set, its cross rates, and the FX errors: pure, no I/O."""

from __future__ import annotations

import decimal
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from pipeline.errors import PipelineError

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_CONTEXT = decimal.Context(prec=28, rounding=decimal.ROUND_HALF_EVEN)


class FxError(PipelineError):
    """Exchange rates could not be had, or not for what was asked."""

    code = "fx_error"


class UnknownCurrency(FxError):
    """The rate set has no rate for a currency asked for."""

    code = "unknown_currency"


def is_currency(code: str) -> bool:
    """An ISO 4217-shaped code: three capital letters."""
    return bool(_CURRENCY.match(code))


@dataclass(frozen=True, slots=True)
class RateSet:
    """What one provider published for one day: 1 `base` = rates[quote] quote."""

    provider: str
    base: str
    as_of: date
    rates: Mapping[str, Decimal]

    def rate(self, base: str, quote: str) -> Decimal:
        """1 `base` in `quote`, crossed through the provider's own base when neither is it."""
        return _CONTEXT.divide(self._against_base(quote), self._against_base(base))

    def _against_base(self, currency: str) -> Decimal:
        if currency == self.base:
            return Decimal(1)
        found = self.rates.get(currency)
        if found is None:
            raise UnknownCurrency(
                f"{self.provider} has no {currency} rate for {self.as_of.isoformat()}"
            )
        return found
