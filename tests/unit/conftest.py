"""Fixtures shared by the unit tests of the CLI: a clean environment and a Postgres that refuses."""

from __future__ import annotations

import pytest

from pipeline import cli, postgres
from pipeline.settings import ENV_VARS


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No pipeline variable from the caller's shell, and pytest's logging left intact."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(cli, "configure_logging", lambda level, fmt, service: None)


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Records every attempt to reach Postgres (each fails as an unreachable database)."""
    calls: list[object] = []

    async def no_postgres(**kwargs: object) -> None:
        calls.append(kwargs["dsn"])
        raise ConnectionRefusedError(111, "Connect call failed")

    monkeypatch.setattr(postgres.asyncpg, "create_pool", no_postgres)
    return calls
