"""Waiting out a dependency outage in place: capped exponential backoff with jitter."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger("pipeline.retry")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays of first, 2*first, 4*first ... up to `cap` seconds, each with +-20% jitter."""

    first_s: float = 0.2
    cap_s: float = 30.0

    def delay(self, attempt: int) -> float:
        base = min(self.cap_s, self.first_s * (2 ** min(attempt, 30)))
        return float(base * random.uniform(0.8, 1.2))


async def until_done(
    operation: Callable[[], Awaitable[T]],
    *,
    retriable: Callable[[BaseException], bool],
    backoff: Backoff,
    what: str,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Run `operation` until it succeeds; a non-retriable error is raised at once."""
    attempt = 0
    while True:
        try:
            return await operation()
        except Exception as exc:
            if not retriable(exc):
                raise
            delay = backoff.delay(attempt)
            log.warning(
                "dependency unavailable, will retry",
                extra={
                    "operation": what,
                    "attempt": attempt + 1,
                    "delay_s": round(delay, 2),
                    "error": repr(exc),
                },
            )
            attempt += 1
            await sleep(delay)
