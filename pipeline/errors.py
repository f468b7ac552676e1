"""One exception base whose `retriable` flag decides retry versus dead letter."""

from __future__ import annotations


class PipelineError(Exception):
    """Base of every error the pipeline raises on purpose."""

    retriable: bool = False
    code: str = "pipeline_error"


class InvalidPayload(PipelineError):
    """The platform sent something this pipeline can never process as it is."""

    code = "invalid_payload"


class EnvelopeError(InvalidPayload):
    """A raw-topic message is not an envelope this version understands."""

    code = "invalid_envelope"


class DependencyUnavailable(PipelineError):
    """Postgres, Kafka or Redis did not answer; waiting and trying again will do."""

    retriable = True
    code = "dependency_unavailable"
