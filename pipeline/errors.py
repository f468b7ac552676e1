"""One exception base whose `retriable` flag decides retry versus dead letter."""

from __future__ import annotations


class PipelineError(Exception):
    """Base of every error the pipeline raises on purpose."""

    retriable: bool = False
    code: str = "pipeline_error"


class InvalidPayload(PipelineError):
    """The platform sent something this pipeline can never process as it is."""

    code = "invalid_payload"


class UnknownChannel(InvalidPayload):
    """The shop has no channel any more (removed after the ingress accepted the delivery)."""

    code = "unknown_channel"


class RetriableError(PipelineError):
    """Processing failed for a reason that may pass: the delivery goes to a retry topic."""

    retriable = True
    code = "retriable"


class EnvelopeError(InvalidPayload):
    """A raw-topic message is not an envelope this version understands."""

    code = "invalid_envelope"
