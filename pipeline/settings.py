"""One typed settings object: the only reader of the process environment."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from pipeline.endpoints import (
    EndpointError,
    check_bootstrap_servers,
    check_database_url,
    check_redis_url,
    masked,
)


class SettingsError(ValueError):
    """An environment variable holds a value the pipeline cannot use."""


@dataclass(frozen=True, slots=True)
class Secret:
    """A string that never shows itself in logs, reprs or tracebacks."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the ingress, the worker and the CLI need to know about their world."""

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    database_url: Secret = Secret("postgresql://postgres@127.0.0.1:5432/pipeline")
    redis_url: Secret = Secret("redis://127.0.0.1:6379/0")
    topic_prefix: str = ""
    partitions: int = 6
    replication_factor: int = 1
    app_id: str = "commerce-pipeline"
    dedupe_window_hours: float = 72.0
    raw_retention_days: float = 30.0
    table_store: str = "memory://"
    table_data_dir: str = ".run/tables"
    worker_web_port: int = 6066
    ingress_host: str = "127.0.0.1"
    ingress_port: int = 8080
    session_timeout_s: float = 30.0
    worker_stall_timeout_s: float = 60.0
    batch_max: int = 500
    batch_within_s: float = 0.2
    ingress_max_body_bytes: int = 1024 * 1024
    ingress_produce_timeout_s: float = 3.0
    ingress_max_in_flight_bytes: int = 64 * 1024 * 1024
    retry_max_attempts: int = 5
    retry_base_delay_s: float = 2.0
    channel_cache_ttl_s: float = 30.0
    db_pool_max: int = 10
    log_level: str = "INFO"
    log_format: str = "json"
    fx_providers: str = "ecb,oxr"
    oxr_app_id: Secret = Secret("")
    fx_refresh_minutes: float = 15.0
    fx_cache_ttl_s: float = 3600.0
    fx_http_timeout_s: float = 10.0
    fx_max_age_days: int = 5

    @property
    def database_dsn(self) -> str:
        return self.database_url.value

    @property
    def database_url_masked(self) -> str:
        return masked(self.database_url.value)

    @property
    def retry_tiers(self) -> int:
        """Retry topics: attempt n+1 of a delivery waits in tier n (1-based)."""
        return self.retry_max_attempts - 1

    def retry_delay_s(self, tier: int) -> float:
        """Exponential: base, 2*base, 4*base ... for tiers 1, 2, 3 ..."""
        return float(self.retry_base_delay_s * 2 ** (tier - 1))

    @property
    def dedupe_window_s(self) -> float:
        return self.dedupe_window_hours * 3600.0

    @property
    def fx_provider_names(self) -> tuple[str, ...]:
        """The rate providers to try, in order."""
        return tuple(p.strip() for p in self.fx_providers.split(","))

    @property
    def raw_retention_ms(self) -> int:
        """How long Kafka keeps the raw topic: how far back a replay can reach."""
        return round(self.raw_retention_days * 24 * 3600 * 1000)

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some fields changed (tests and CLI flags use this)."""
        return replace(self, **changes)


_ENV: dict[str, str] = {
    "kafka_bootstrap_servers": "KAFKA_BOOTSTRAP_SERVERS",
    "database_url": "DATABASE_URL",
    "redis_url": "REDIS_URL",
    "topic_prefix": "PIPELINE_TOPIC_PREFIX",
    "partitions": "PIPELINE_PARTITIONS",
    "replication_factor": "PIPELINE_REPLICATION_FACTOR",
    "app_id": "PIPELINE_APP_ID",
    "dedupe_window_hours": "DEDUPE_WINDOW_HOURS",
    "raw_retention_days": "RAW_RETENTION_DAYS",
    "table_store": "TABLE_STORE",
    "table_data_dir": "TABLE_DATA_DIR",
    "worker_web_port": "WORKER_WEB_PORT",
    "ingress_host": "INGRESS_HOST",
    "ingress_port": "INGRESS_PORT",
    "session_timeout_s": "KAFKA_SESSION_TIMEOUT_S",
    "worker_stall_timeout_s": "WORKER_STALL_TIMEOUT_S",
    "batch_max": "SINK_BATCH_MAX",
    "batch_within_s": "SINK_BATCH_WITHIN_S",
    "ingress_max_body_bytes": "INGRESS_MAX_BODY_BYTES",
    "ingress_produce_timeout_s": "INGRESS_PRODUCE_TIMEOUT_S",
    "ingress_max_in_flight_bytes": "INGRESS_MAX_IN_FLIGHT_BYTES",
    "retry_max_attempts": "RETRY_MAX_ATTEMPTS",
    "retry_base_delay_s": "RETRY_BASE_DELAY_S",
    "channel_cache_ttl_s": "CHANNEL_CACHE_TTL_S",
    "db_pool_max": "DB_POOL_MAX",
    "log_level": "LOG_LEVEL",
    "log_format": "LOG_FORMAT",
    "fx_providers": "FX_PROVIDERS",
    "oxr_app_id": "OXR_APP_ID",
    "fx_refresh_minutes": "FX_REFRESH_MINUTES",
    "fx_cache_ttl_s": "FX_CACHE_TTL_S",
    "fx_http_timeout_s": "FX_HTTP_TIMEOUT_S",
    "fx_max_age_days": "FX_MAX_AGE_DAYS",
}

ENV_VARS: tuple[str, ...] = tuple(_ENV.values())
_ENDPOINT_CHECKS = {
    "kafka_bootstrap_servers": check_bootstrap_servers,
    "database_url": check_database_url,
    "redis_url": check_redis_url,
}
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FX_PROVIDERS = ("ecb", "oxr")


def _check_fx_providers(env: str, raw: str) -> None:
    names = [p.strip() for p in raw.split(",")]
    unknown = [p for p in names if p not in FX_PROVIDERS]
    if unknown or len(set(names)) != len(names):
        raise SettingsError(
            f"{env}={raw!r} must name each of {', '.join(FX_PROVIDERS)} at most once, "
            "comma-separated, in the order to try them"
        )


def _convert(name: str, env: str, raw: str, kind: type) -> Any:
    try:
        value: Any = kind(raw)
    except ValueError:
        raise SettingsError(f"{env}={raw!r} is not a valid {kind.__name__}") from None
    if kind in (int, float) and not (math.isfinite(value) and value > 0):
        raise SettingsError(f"{env}={raw!r} must be a finite number greater than zero")
    if name.endswith("_port") and value > 65535:
        raise SettingsError(f"{env}={raw!r} is not a TCP port (1 to 65535)")
    if name == "retry_max_attempts" and value > 20:
        raise SettingsError(f"{env}={raw!r} must be at most 20 (one retry topic per attempt)")
    if name == "log_level" and value.upper() not in _LOG_LEVELS:
        raise SettingsError(f"{env}={raw!r} must be one of {', '.join(_LOG_LEVELS)}")
    if name == "log_format" and value not in ("json", "text"):
        raise SettingsError(f"{env}={raw!r} must be 'json' or 'text'")
    if name == "fx_providers":
        _check_fx_providers(env, value)
    if name == "table_store" and value not in ("memory://", "rocksdb://"):
        raise SettingsError(f"{env}={raw!r} must be 'memory://' or 'rocksdb://'")
    return value


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read settings from the environment; unset or empty variables keep their defaults."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    kinds = {f.name: f.type for f in fields(Settings)}
    for name, var in _ENV.items():
        raw = env.get(var, "").strip()
        if not raw:
            continue
        kind_name = kinds[name]
        if name in _ENDPOINT_CHECKS:
            try:
                _ENDPOINT_CHECKS[name](var, raw)
            except EndpointError as exc:
                raise SettingsError(str(exc)) from None
        if kind_name == "Secret":
            values[name] = Secret(raw)
            continue
        kind = {"int": int, "float": float, "str": str}[str(kind_name)]
        values[name] = _convert(name, var, raw, kind)
    return Settings(**values)
