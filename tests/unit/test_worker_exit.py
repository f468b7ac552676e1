"""A worker that failed only because Kafka or Postgres went away restarts; others exit."""

from __future__ import annotations

import pytest
from aiokafka.errors import KafkaConnectionError, NodeNotReadyError

from agents.worker import outage_exit


def _exit_from(cause: BaseException) -> SystemExit:
    """SystemExit(1) raised while handling `cause`, the way mode's Worker exits on an error."""
    try:
        try:
            raise cause
        except BaseException:
            raise SystemExit(1) from None
    except SystemExit as done:
        return done


@pytest.mark.parametrize(
    "cause",
    [
        NodeNotReadyError("Attempt to send a request to node which is not ready (node id 1)."),
        KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 9092)]"),
        ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)"),
    ],
)
def test_an_outage_exit_is_a_restart(cause: BaseException) -> None:
    reason = outage_exit(_exit_from(cause))
    assert reason is not None
    assert type(cause).__name__ in reason


def test_a_clean_exit_is_no_restart() -> None:
    assert outage_exit(SystemExit(0)) is None


def test_a_bug_is_no_restart() -> None:
    assert outage_exit(_exit_from(ValueError("a bug"))) is None
