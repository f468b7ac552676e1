from __future__ import annotations

import pytest

from pipeline.retry import Backoff, until_done


class Flaky:
    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "done"


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


async def test_retriable_errors_are_retried_with_growing_delays() -> None:
    op, sleep = Flaky(3, OSError("down")), Sleeps()
    result = await until_done(
        op, retriable=lambda e: True, backoff=Backoff(1.0, 30.0), what="t", sleep=sleep
    )
    assert (result, op.calls) == ("done", 4)
    assert len(sleep.delays) == 3
    assert 0.8 <= sleep.delays[0] <= 1.2
    assert 3.2 <= sleep.delays[2] <= 4.8


async def test_non_retriable_error_is_raised_at_once() -> None:
    op, sleep = Flaky(3, ValueError("bad data")), Sleeps()
    with pytest.raises(ValueError, match="bad data"):
        await until_done(op, retriable=lambda e: False, backoff=Backoff(), what="t", sleep=sleep)
    assert (op.calls, sleep.delays) == (1, [])


@pytest.mark.parametrize("attempt", [5, 30, 1000])
def test_delay_is_capped_with_jitter(attempt: int) -> None:
    assert 8.0 <= Backoff(first_s=1.0, cap_s=10.0).delay(attempt) <= 12.0


def test_zero_backoff_never_waits() -> None:
    assert Backoff(0.0, 0.0).delay(7) == 0.0
