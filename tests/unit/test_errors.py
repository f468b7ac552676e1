"""is_transient: the one rule every caller reads to wait and retry, or to give up."""

from __future__ import annotations

import asyncpg
import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NodeNotReadyError,
    NotLeaderForPartitionError,
    OutOfOrderSequenceNumber,
    ProducerClosed,
)

from pipeline.errors import EnvelopeError, InvalidPayload, PipelineError, is_transient


class _MayPass(PipelineError):
    retriable = True


def _postgres(sqlstate: str) -> asyncpg.PostgresError:
    exc = asyncpg.PostgresError("x")
    exc.sqlstate = sqlstate  # type: ignore[attr-defined]
    return exc


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "refused"),
        TimeoutError(),
        asyncpg.InterfaceError("connection closed"),
        _postgres("57P01"),  # admin shutdown: Postgres restarting
        _postgres("40P01"),  # deadlock detected
        _postgres("08006"),  # connection failure
        KafkaConnectionError(),
        NodeNotReadyError(),
        NotLeaderForPartitionError(),  # a broker failover
        KafkaTimeoutError(),
        OutOfOrderSequenceNumber(),  # the producer is replaced
        ProducerClosed(),  # a send still waiting in the replaced producer
        _MayPass(),
    ],
    ids=repr,
)
def test_outages_restarts_and_contention_are_transient(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("bad DSN"),
        KeyError("id"),
        _postgres("22P02"),  # invalid text representation: bad data
        _postgres("23505"),  # unique violation
        MessageSizeTooLargeError(),
        InvalidPayload("no id"),
        EnvelopeError("not JSON"),
    ],
    ids=repr,
)
def test_bad_input_and_bugs_are_not_transient(exc: BaseException) -> None:
    assert not is_transient(exc)
