"""Test helpers shared by the platform adapter tests: recorded payloads and UTC times."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


class Fixtures:
    """One platform's recorded payloads, tests/fixtures/<platform>/<name>.json."""

    def __init__(self, platform: str) -> None:
        self.folder = FIXTURES / platform

    def bytes(self, name: str) -> bytes:
        """The payload exactly as recorded (signatures are over these bytes)."""
        return (self.folder / f"{name}.json").read_bytes()

    def json(self, name: str) -> dict[str, Any]:
        """The payload parsed, to change and re-encode."""
        data: dict[str, Any] = orjson.loads(self.bytes(name))
        return data

    def changed(self, name: str, **changes: Any) -> bytes:
        """The payload with top-level fields replaced; `data` changes merge into its data."""
        payload = self.json(name)
        data_changes = changes.pop("data", None)
        payload.update(changes)
        if data_changes is not None:
            payload["data"] = {**payload["data"], **data_changes}
        return orjson.dumps(payload)


def at(text: str) -> datetime:
    """A naive ISO 8601 time read as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
