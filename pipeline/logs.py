"""Structured logging: one JSON object per line, with the fields passed as `extra`, the name
of the process (`service`) on every line, and third-party chatter kept out unless asked for."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp.http_exceptions import HttpProcessingError

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Render a record as JSON: time, level, logger, message, then every `extra` field."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        # Dataclasses go through str() too: orjson would otherwise write Secret fields in clear.
        return orjson.dumps(entry, default=str, option=orjson.OPT_PASSTHROUGH_DATACLASS).decode()


class TextFormatter(logging.Formatter):
    """Human-friendly single line with the extra fields as key=value pairs."""

    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        extras = " ".join(
            f"{k}={v}"
            for k, v in record.__dict__.items()
            if k not in _STANDARD and not k.startswith("_")
        )
        return f"{base} {extras}" if extras else base


class RepeatFilter(logging.Filter):
    """Lets a message through once per `window_s`, then reports how often it repeated.

    During a broker outage aiokafka logs the same connection error thousands of times a second
    (100,000 lines in a 24 s Kafka restart here), which drowns everything else.
    """

    def __init__(
        self,
        prefix: str = "aiokafka",
        window_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._prefix = prefix
        self._window = window_s
        self._clock = clock
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self._prefix):
            return True
        key = (record.name, str(record.msg))
        now = self._clock()
        first, suppressed = self._seen.get(key, (float("-inf"), 0))
        if now - first < self._window:
            self._seen[key] = (first, suppressed + 1)
            return False
        if len(self._seen) > 10_000:
            self._seen.clear()
        self._seen[key] = (now, 0)
        if suppressed:
            record.repeated = suppressed
        return True


# Libraries whose INFO lines describe their own machinery (Faust alone logs 76 at start-up).
LIBRARIES = ("faust", "mode", "aiokafka", "aiohttp")


class QuietLibraries(logging.Filter):
    """Below WARNING, drops what the libraries log and mode's service lifecycle lines
    ("[^-HealthService]: Starting...") that our own services inherit."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        if record.name.split(".", 1)[0] in LIBRARIES:
            return False
        return not (isinstance(record.msg, str) and record.msg.startswith("[^"))


class ClientErrors(logging.Filter):
    """aiohttp logs a request it cannot parse (an over-long URL, a broken header) as an ERROR
    with a traceback; it is the client's mistake, answered 400: one WARNING line says so."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "aiohttp.server" and record.exc_info:
            exc = record.exc_info[1]
            if isinstance(exc, HttpProcessingError):
                record.levelno, record.levelname = logging.WARNING, "WARNING"
                record.msg, record.args = "malformed HTTP request refused", None
                record.status = exc.code
                record.error = (exc.message or type(exc).__name__)[:200]
                record.exc_info = record.exc_text = None
        return True


class ServiceName(logging.Filter):
    """Names the process on every line, so interleaved ingress and worker logs stay apart."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self._service
        return True


def configure_logging(level: str = "INFO", fmt: str = "json", service: str = "pipeline") -> None:
    """Install one stderr handler on the root logger (idempotent). At DEBUG the libraries'
    own lines come through too."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            TextFormatter("%(asctime)s %(levelname)s %(service)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    handler.addFilter(ServiceName(service))
    handler.addFilter(ClientErrors())
    handler.addFilter(RepeatFilter("aiokafka"))
    quiet = root.level > logging.DEBUG
    if quiet:
        handler.addFilter(QuietLibraries())
    # aiokafka's debug lines cost even when filtered out: drop them at the logger unless asked.
    logging.getLogger("aiokafka").setLevel(logging.WARNING if quiet else logging.NOTSET)
