"""The pipeline's exceptions, and `is_transient`: the one rule for retry versus give up."""

from __future__ import annotations

import asyncpg
from aiokafka.errors import (
    KafkaError,
    KafkaTimeoutError,
    OutOfOrderSequenceNumber,
    ProducerClosed,
)


class PipelineError(Exception):
    """Base of every error the pipeline raises on purpose; `retriable` says if it may pass."""

    retriable: bool = False
    code: str = "pipeline_error"


class InvalidPayload(PipelineError):
    """The platform sent something this pipeline can never process as it is."""

    code = "invalid_payload"


class UnknownChannel(InvalidPayload):
    """The shop has no channel any more (removed after the ingress accepted the delivery)."""

    code = "unknown_channel"


class EnvelopeError(InvalidPayload):
    """A raw-topic message is not an envelope this version understands."""

    code = "invalid_envelope"


class DependencyError(PipelineError):
    """Postgres or Kafka could not be reached or refused us; the text names the setting to fix.

    Transient (a server still starting) or not (a wrong password, a missing database), as
    the failure under it.
    """

    code = "dependency_unavailable"

    def __init__(self, message: str, *, cause: BaseException) -> None:
        super().__init__(message)
        self.retriable = is_transient(cause)


# Connection-level failures (Postgres down, restarting, out of connections) and transaction
# rollbacks (deadlock, serialization failure) that succeed when tried again.
_TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "57", "58")
# aiokafka marks these non-retriable, yet they pass: a request that timed out (a broker
# restarting), a wedged idempotent producer, which pipeline/producer.py replaces, and a send
# that was still waiting in the producer it replaced (ProducerClosed).
_TRANSIENT_KAFKA = (KafkaTimeoutError, OutOfOrderSequenceNumber, ProducerClosed)


def is_transient(exc: BaseException) -> bool:
    """May `exc` pass by itself (a dependency away, restarting or contended)?

    True: wait and try again (in place, or through a retry topic). False: the input or the
    code is at fault (dead-letter it, or fail with a message). Every caller asks this.
    """
    if isinstance(exc, PipelineError | KafkaError):
        return exc.retriable or isinstance(exc, _TRANSIENT_KAFKA)
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = getattr(exc, "sqlstate", None) or ""
        return sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES
    return isinstance(exc, OSError | TimeoutError | asyncpg.InterfaceError)
