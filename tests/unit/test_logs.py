"""RepeatFilter: a flood of one aiokafka message becomes one line per window with a count."""

from __future__ import annotations

import logging

from pipeline.logs import RepeatFilter


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
