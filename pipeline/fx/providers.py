"""One interface for every rate provider, the HTTP client they share (timeouts, bounded
retries with backoff, one clear error per failure), and trying providers in order."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Protocol

import aiohttp

from pipeline.fx.rates import FxError, RateSet
from pipeline.retry import Backoff


class ProviderError(FxError):
    """One provider failed; the text says which and how. Retriable when it may pass (a
    timeout, a 5xx, 429), not when the answer itself was wrong (a 4xx, a malformed body)."""

    code = "fx_provider_error"

    def __init__(self, provider: str, message: str, *, retriable: bool = False) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.retriable = retriable


class StaleRates(ProviderError):
    """The provider answered, but with rates older than FX_MAX_AGE_DAYS allows."""

    code = "fx_stale"


class AllProvidersFailed(FxError):
    """Every configured provider failed; the text lists each one's error, in order."""

    code = "fx_unavailable"

    def __init__(self, errors: Sequence[ProviderError]) -> None:
        super().__init__("no provider gave rates: " + "; ".join(str(e) for e in errors))
        self.errors = list(errors)
        self.retriable = any(e.retriable for e in errors)


class RateProvider(Protocol):
    """A source of daily rates against its own base currency."""

    name: str

    async def latest(self) -> RateSet:
        """The newest rates the provider publishes."""
        ...

    async def on(self, day: date) -> RateSet:
        """The rates in force on `day` (the provider's newest on or before it)."""
        ...


@dataclass(slots=True)
class HttpClient:
    """GET with a total timeout per attempt and `attempts` tries on transient failures."""

    session: aiohttp.ClientSession
    timeout_s: float = 10.0
    attempts: int = 3
    backoff: Backoff = field(default_factory=lambda: Backoff(first_s=0.5, cap_s=5.0))

    async def get(
        self, provider: str, url: str, params: Mapping[str, str] | None = None
    ) -> tuple[int, bytes]:
        """The status and body of the first answer that is not 5xx or 429; ProviderError
        after the last attempt, or at once for a failure no retry can mend."""
        last: ProviderError | None = None
        for attempt in range(self.attempts):
            if attempt:
                await asyncio.sleep(self.backoff.delay(attempt - 1))
            try:
                return await self._once(provider, url, params)
            except ProviderError as exc:
                if not exc.retriable:
                    raise
                last = exc
        assert last is not None
        raise ProviderError(
            provider,
            f"{last.args[0].partition(': ')[2]} (after {self.attempts} attempts)",
            retriable=True,
        )

    async def _once(
        self, provider: str, url: str, params: Mapping[str, str] | None
    ) -> tuple[int, bytes]:
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        try:
            async with self.session.get(url, params=params, timeout=timeout) as response:
                body = await response.read()
        except TimeoutError:
            raise ProviderError(
                provider, f"no answer from {url} within {self.timeout_s} s", retriable=True
            ) from None
        except aiohttp.ClientError as exc:
            detail = str(exc) or type(exc).__name__
            for secret in (params or {}).values():  # an app id in a query string stays out
                detail = detail.replace(secret, "****")
            raise ProviderError(
                provider, f"cannot reach {url} ({detail})", retriable=True
            ) from None
        if response.status >= 500 or response.status == 429:
            raise ProviderError(provider, f"HTTP {response.status} from {url}", retriable=True)
        return response.status, body


def check_fresh(rates: RateSet, today: date, max_age_days: int) -> RateSet:
    """`rates`, unless they are older than `max_age_days` before `today` (a feed that stopped
    updating): StaleRates then. Weekends and holidays have no ECB rates, so allow a few days."""
    if rates.as_of < today - timedelta(days=max_age_days):
        raise StaleRates(
            rates.provider,
            f"rates as of {rates.as_of.isoformat()} are more than {max_age_days} days older "
            f"than {today.isoformat()}",
        )
    return rates


async def latest_rates(
    providers: Sequence[RateProvider], today: date, max_age_days: int
) -> RateSet:
    """The first fresh rate set, trying `providers` in order; AllProvidersFailed if none."""
    errors: list[ProviderError] = []
    for provider in providers:
        try:
            return check_fresh(await provider.latest(), today, max_age_days)
        except ProviderError as exc:
            errors.append(exc)
    raise AllProvidersFailed(errors)


async def rates_on(providers: Sequence[RateProvider], day: date, max_age_days: int) -> RateSet:
    """The rates in force on `day` from the first provider that has them."""
    errors: list[ProviderError] = []
    for provider in providers:
        try:
            return check_fresh(await provider.on(day), day, max_age_days)
        except ProviderError as exc:
            errors.append(exc)
    raise AllProvidersFailed(errors)
