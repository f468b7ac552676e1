from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pipeline.migrations import _FILE_RE, Migration, load_migrations

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "schemas" / "migrations"


def test_migrations_are_found() -> None:
    migrations = load_migrations()
    assert migrations
    assert (migrations[0].version, migrations[0].name) == (1, "core")


def test_migrations_are_ordered_by_version() -> None:
    versions = [m.version for m in load_migrations()]
    assert versions == sorted(versions)


def test_versions_are_unique() -> None:
    versions = [m.version for m in load_migrations()]
    assert len(versions) == len(set(versions))


def test_every_sql_file_follows_the_naming_rule() -> None:
    names = [p.name for p in MIGRATIONS_DIR.glob("*.sql")]
    assert names
    assert all(_FILE_RE.match(name) for name in names)
    assert len(load_migrations()) == len(names)


def test_checksum_is_the_sha256_of_the_file() -> None:
    first = load_migrations()[0]
    path = MIGRATIONS_DIR / f"{first.version:04d}_{first.name}.sql"
    assert first.checksum == hashlib.sha256(path.read_bytes()).hexdigest()


def test_checksum_is_stable_across_loads() -> None:
    assert [m.checksum for m in load_migrations()] == [m.checksum for m in load_migrations()]


def test_checksum_changes_with_the_sql() -> None:
    assert Migration(1, "a", "SELECT 1;").checksum != Migration(1, "a", "SELECT 2;").checksum


@pytest.mark.parametrize("name", ["1_core.sql", "0001-core.sql", "0001_Core.sql", "0001_core.txt"])
def test_file_pattern_rejects_odd_names(name: str) -> None:
    assert _FILE_RE.match(name) is None


def test_core_migration_creates_the_tables_the_sink_writes() -> None:
    sql = load_migrations()[0].sql
    for table in ("channels", "webhook_events", "orders", "order_lines", "commerce_events"):
        assert f"CREATE TABLE {table} " in sql
