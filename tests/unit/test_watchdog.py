"""StallWatchdog: only idle-with-lag for longer than the timeout counts as a stall."""

from __future__ import annotations

from agents.watchdog import StallWatchdog


def watchdog(timeout: float = 10.0) -> tuple[StallWatchdog, list[float]]:
    now = [0.0]
    return StallWatchdog(timeout, clock=lambda: now[0]), now


def test_idle_with_messages_waiting_past_the_timeout_is_a_stall() -> None:
    dog, now = watchdog()
    now[0] = 10.5
    assert dog.stalled(messages_waiting=True)


def test_idle_without_lag_is_not_a_stall_and_restarts_the_clock() -> None:
    dog, now = watchdog()
    now[0] = 50.0
    assert not dog.stalled(messages_waiting=False)
    now[0] = 55.0
    assert not dog.stalled(messages_waiting=True)  # lag appeared 5 s ago only


def test_a_long_batch_is_progress_not_a_stall() -> None:
    dog, now = watchdog()
    dog.batch_started()
    now[0] = 500.0  # e.g. waiting out a Postgres outage inside the batch
    assert not dog.stalled(messages_waiting=True)
    dog.batch_done()
    now[0] = 505.0
    assert not dog.stalled(messages_waiting=True)
    now[0] = 511.0
    assert dog.stalled(messages_waiting=True)


def test_a_rebalance_restarts_the_clock() -> None:
    dog, now = watchdog()
    now[0] = 9.0
    dog.reset()
    now[0] = 15.0
    assert not dog.stalled(messages_waiting=True)


P = ("raw", 0)


def test_a_commit_that_trails_and_does_not_move_is_stuck() -> None:
    dog, now = watchdog()
    assert not dog.commits_stuck({P: (100, 150)})
    now[0] = 5.0
    assert not dog.commits_stuck({P: (100, 150)})
    now[0] = 10.5
    assert dog.commits_stuck({P: (100, 150)})


def test_a_commit_that_keeps_up_is_not_stuck() -> None:
    dog, now = watchdog()
    for second in range(60):
        now[0] = float(second)
        assert not dog.commits_stuck({P: (100 + 20 * second, 120 + 20 * second)})


def test_a_commit_that_crawls_behind_what_was_processed_is_stuck() -> None:
    dog, now = watchdog()
    stuck = []
    for second in range(20):  # one offset a second, while 160 were processed long ago
        now[0] = float(second)
        stuck.append(dog.commits_stuck({P: (340 + second, 503)}))
    assert stuck.index(True) == 11


def test_a_caught_up_commit_is_never_stuck() -> None:
    dog, now = watchdog()
    dog.commits_stuck({P: (150, 150)})
    now[0] = 100.0
    assert not dog.commits_stuck({P: (150, 150)})


def test_nothing_committed_yet_counts_as_trailing() -> None:
    dog, now = watchdog()
    dog.commits_stuck({P: (None, 3)})
    now[0] = 11.0
    assert dog.commits_stuck({P: (None, 3)})


def test_commits_are_not_judged_while_a_batch_is_in_hand() -> None:
    dog, now = watchdog()
    dog.commits_stuck({P: (100, 150)})
    dog.batch_started()
    now[0] = 300.0
    assert not dog.commits_stuck({P: (100, 150)})
    dog.batch_done()
    now[0] = 305.0
    assert not dog.commits_stuck({P: (100, 150)})  # the clock starts again after the batch


def test_time_not_watched_does_not_count_towards_a_stall() -> None:
    # A check waited 47 s for Kafka through an outage; right after it, nothing had arrived for
    # 47 s, which is the outage, not a stall (seen in the ledger: a false alarm and a restart).
    now = [0.0]
    dog = StallWatchdog(15.0, clock=lambda: now[0])
    dog.checking()
    dog.batch_started()
    dog.batch_done()
    now[0] = 47.0
    dog.checking()
    assert not dog.stalled(messages_waiting=True)
    now[0] = 47.0 + 2.5 * 7  # checked every 2.5 s, messages waiting, none received
    for tick in range(1, 8):
        now[0] = 47.0 + 2.5 * tick
        dog.checking()
    assert dog.stalled(messages_waiting=True)
