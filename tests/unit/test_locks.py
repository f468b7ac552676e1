"""The pure parts of the Redis locks: key names, TTL arithmetic, the waiter's backoff."""

from __future__ import annotations

import pytest

from pipeline import locks, redis_keys
from pipeline.errors import is_transient


def test_keys_of_each_job_have_their_own_prefix() -> None:
    assert redis_keys.lock_key("fx-refresh") == "pipeline:lock:fx-refresh"
    assert redis_keys.fence_key("fx-refresh") == "pipeline:fence:fx-refresh"
    assert redis_keys.fx_latest_key() == "pipeline:fx:latest"
    assert redis_keys.lock_key("x", root="t1") == "t1:lock:x"


@pytest.mark.parametrize(("ttl_s", "ms"), [(0.01, 10), (1.5, 1500), (30, 30000)])
def test_ttl_in_milliseconds(ttl_s: float, ms: int) -> None:
    assert locks.ttl_ms(ttl_s) == ms


@pytest.mark.parametrize("ttl_s", [0, -1, 0.009, float("nan")])
def test_a_ttl_too_short_to_renew_is_refused(ttl_s: float) -> None:
    with pytest.raises(ValueError, match=r"at least 0\.01 s"):
        locks.ttl_ms(ttl_s)


def test_renewal_comes_three_times_per_ttl() -> None:
    assert locks.renew_every(3.0) == pytest.approx(1.0)


def test_waiter_backs_off_but_never_sleeps_past_its_deadline() -> None:
    first = [locks.poll_delay(0, 10.0) for _ in range(200)]
    late = [locks.poll_delay(20, 10.0) for _ in range(200)]
    assert all(0.01 <= d <= 0.02 for d in first)
    assert all(0.25 <= d <= 0.5 for d in late)
    assert locks.poll_delay(20, 0.003) == pytest.approx(0.003)
    assert locks.poll_delay(3, -1.0) == 0.0


def test_a_failed_renewal_is_retried_soon_then_less_often() -> None:
    assert [locks.retry_delay(n, 3.0) for n in (1, 2, 3, 6)] == [0.05, 0.1, 0.2, 1.0]


def test_a_renewal_extends_from_when_it_was_sent() -> None:
    lease = locks.Lease("n", "tok", 7, ttl_s=2.0, valid_until=102.0)
    lease.extended(started=101.5)
    assert lease.valid_until == pytest.approx(103.5)


def test_only_a_busy_lock_is_worth_waiting_again_for() -> None:
    assert is_transient(locks.LockNotAcquired("held"))
    assert not is_transient(locks.LockLost("lost"))
