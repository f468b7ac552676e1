"""The worker says once when it becomes ready, and once why it stopped being ready."""

from __future__ import annotations

import logging

import pytest

from agents.services import ReadinessLog


def test_each_change_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="agents.services")
    readiness = ReadinessLog()
    readiness.observe(False, "recovering tables", 0)  # starting up: not news
    readiness.observe(True, "ready", 6)
    readiness.observe(True, "ready", 6)
    readiness.observe(False, "rebalancing", 0)
    readiness.observe(False, "rebalancing", 0)
    readiness.observe(True, "ready", 3)
    said = [
        (r.getMessage(), getattr(r, "partitions", getattr(r, "reason", None)))
        for r in caplog.records
    ]
    assert said == [
        ("worker ready", 6),
        ("worker not ready", "rebalancing"),
        ("worker ready", 3),
    ]
