"""Malformed endpoint settings are refused in one line naming the variable."""

from __future__ import annotations

import pytest

from pipeline.settings import SettingsError, load_settings


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("notaurl", "is not a Postgres URL"),
        ("mysql://root@db:3306/shop", "is not a Postgres URL"),
        ("postgresql://postgres@127.0.0.1:abc/pipeline", "port 'abc' is not a number"),
        ("postgresql://postgres@127.0.0.1:99999/pipeline", "port '99999'"),
        ("postgresql://postgres@127.0.0.1/pipeline?sslmode=sometimes", "sslmode 'sometimes'"),
        ("postgresql://postgres@:5432/pipeline", "a host is missing"),
    ],
)
def test_a_malformed_database_url_names_the_problem(url: str, says: str) -> None:
    with pytest.raises(SettingsError, match="DATABASE_URL") as err:
        load_settings({"DATABASE_URL": url})
    assert says in str(err.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@127.0.0.1:5432/pipeline",
        "postgres://u:p@db.internal/pipeline?sslmode=verify-full",
        "postgresql://u@h1:5432,h2:5433/pipeline",
        "postgresql://u@[::1]:5432/pipeline",
        "postgresql:///pipeline?host=/var/run/postgresql",
    ],
)
def test_database_urls_asyncpg_accepts_pass(url: str) -> None:
    assert load_settings({"DATABASE_URL": url}).database_dsn == url


def test_a_password_never_shows_in_the_error() -> None:
    with pytest.raises(SettingsError) as err:
        load_settings({"DATABASE_URL": "postgresql://app:hunter2@db:port/pipeline"})
    assert "hunter2" not in str(err.value)
    assert "app:***@db" in str(err.value)


@pytest.mark.parametrize(
    ("servers", "says"),
    [
        ("localhost", "'localhost' has no port"),
        ("127.0.0.1:9092,broker2:x", "port 'x'"),
        ("kafka://127.0.0.1:9092", "without a scheme"),
        (":9092", "a host is missing"),
    ],
)
def test_malformed_bootstrap_servers_name_the_problem(servers: str, says: str) -> None:
    with pytest.raises(SettingsError, match="KAFKA_BOOTSTRAP_SERVERS") as err:
        load_settings({"KAFKA_BOOTSTRAP_SERVERS": servers})
    assert says in str(err.value)


def test_several_brokers_pass() -> None:
    servers = "10.0.0.1:9092, 10.0.0.2:9092,[fd00::3]:9092"
    assert load_settings({"KAFKA_BOOTSTRAP_SERVERS": servers}).kafka_bootstrap_servers == servers


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("localhost:6379", "is not a Redis URL"),
        ("redis://127.0.0.1:63x9/0", "port '63x9'"),
        ("redis://127.0.0.1:6379/cache", "database 'cache' is not a number"),
    ],
)
def test_a_malformed_redis_url_names_the_problem(url: str, says: str) -> None:
    with pytest.raises(SettingsError, match="REDIS_URL") as err:
        load_settings({"REDIS_URL": url})
    assert says in str(err.value)
