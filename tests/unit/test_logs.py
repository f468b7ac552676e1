"""RepeatFilter: a flood of one aiokafka message becomes one line per window with a count."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import orjson
import pytest
from aiohttp.http_exceptions import LineTooLong

from pipeline.logs import RepeatFilter, configure_logging


def record(name: str, msg: str) -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, None, None)


def test_repeats_inside_the_window_are_counted_not_logged() -> None:
    now = [0.0]
    flt = RepeatFilter("aiokafka", window_s=10.0, clock=lambda: now[0])
    passed = [flt.filter(record("aiokafka", "Unable connect to %s")) for _ in range(1000)]
    assert passed.count(True) == 1
    now[0] = 10.5
    summary = record("aiokafka", "Unable connect to %s")
    assert flt.filter(summary)
    assert summary.repeated == 999  # type: ignore[attr-defined]


def test_other_messages_and_loggers_pass_untouched() -> None:
    flt = RepeatFilter("aiokafka", clock=lambda: 0.0)
    assert flt.filter(record("aiokafka.consumer", "a"))
    assert flt.filter(record("aiokafka.consumer", "b"))
    assert all(flt.filter(record("pipeline.ingress", "same")) for _ in range(5))


@pytest.fixture(autouse=True)
def root_logger_restored() -> Iterator[None]:
    """configure_logging replaces the root logger's handlers; put pytest's back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


def configured(level: str = "INFO", fmt: str = "json") -> tuple[logging.Handler, list[str]]:
    """The handler configure_logging installs, writing into a list."""
    configure_logging(level, fmt, service="ingress")
    handler = logging.getLogger().handlers[0]
    lines: list[str] = []
    handler.emit = lambda rec: lines.append(handler.format(rec))  # type: ignore[method-assign]
    return handler, lines


def emit(handler: logging.Handler, rec: logging.LogRecord) -> None:
    if handler.filter(rec):
        handler.emit(rec)


def at(name: str, level: int, msg: str) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, None, None)


def test_library_chatter_stays_out_at_info() -> None:
    handler, lines = configured()
    emit(handler, at("faust.worker", logging.INFO, "[^Worker]: Starting..."))
    emit(handler, at("agents.services", logging.INFO, "[^-HealthService]: Starting..."))
    emit(handler, at("mode.timers", logging.WARNING, "Timer overlapping"))
    emit(handler, at("agents.app", logging.INFO, "batch stored"))
    assert [orjson.loads(line)["msg"] for line in lines] == ["Timer overlapping", "batch stored"]


def test_debug_lets_the_libraries_through() -> None:
    handler, lines = configured("DEBUG")
    emit(handler, at("faust.worker", logging.INFO, "[^Worker]: Starting..."))
    assert len(lines) == 1
    assert logging.getLogger("aiokafka.conn").isEnabledFor(logging.DEBUG)
    configured("INFO")
    assert not logging.getLogger("aiokafka.conn").isEnabledFor(logging.INFO)


def test_every_line_names_the_process() -> None:
    handler, lines = configured()
    emit(handler, at("pipeline.ingress", logging.INFO, "webhook accepted"))
    assert orjson.loads(lines[0])["service"] == "ingress"
    handler, lines = configured(fmt="text")
    emit(handler, at("pipeline.ingress", logging.INFO, "webhook accepted"))
    assert " INFO ingress pipeline.ingress: webhook accepted" in lines[0]


def test_a_request_aiohttp_cannot_parse_is_one_warning_without_traceback() -> None:
    handler, lines = configured()
    try:
        raise LineTooLong("Status line is too long", "8190", "20000")
    except LineTooLong:
        rec = logging.LogRecord(
            "aiohttp.server",
            logging.ERROR,
            __file__,
            1,
            "Error handling request",
            None,
            sys.exc_info(),
        )
    emit(handler, rec)
    entry = orjson.loads(lines[0])
    assert entry["level"] == "WARNING"
    assert entry["msg"] == "malformed HTTP request refused"
    assert entry["status"] == 400
    assert "exc" not in entry
    assert "Traceback" not in lines[0]
