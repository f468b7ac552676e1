from __future__ import annotations

import pytest

from pipeline.settings import ENV_VARS, Secret, Settings, SettingsError, load_settings


def test_no_environment_gives_the_defaults() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert settings.partitions == 6
    assert settings.log_format == "json"
    assert settings.table_store == "memory://"


def test_environment_overrides_typed_fields() -> None:
    settings = load_settings(
        {
            "PIPELINE_PARTITIONS": "12",
            "DEDUPE_WINDOW_HOURS": "1.5",
            "PIPELINE_TOPIC_PREFIX": "t1.",
            "LOG_FORMAT": "text",
        }
    )
    assert settings.partitions == 12
    assert settings.dedupe_window_s == 5400.0
    assert settings.topic_prefix == "t1."
    assert settings.log_format == "text"


def test_empty_or_blank_variables_keep_the_default() -> None:
    settings = load_settings({"PIPELINE_PARTITIONS": "  ", "KAFKA_BOOTSTRAP_SERVERS": ""})
    assert settings.partitions == 6
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"


def test_values_are_stripped() -> None:
    assert load_settings({"SINK_BATCH_MAX": " 250 \n"}).batch_max == 250


def test_secret_urls_are_read_into_secrets() -> None:
    settings = load_settings({"DATABASE_URL": "postgresql://app:hunter22@db/x"})
    assert isinstance(settings.database_url, Secret)
    assert settings.database_dsn == "postgresql://app:hunter22@db/x"


@pytest.mark.parametrize("render", [repr, str, "{}".format])
def test_secret_never_shows_its_value(render: object) -> None:
    secret = Secret("hunter22")
    assert "hunter22" not in render(secret)  # type: ignore[operator]


def test_settings_repr_hides_both_urls() -> None:
    settings = load_settings(
        {"DATABASE_URL": "postgresql://app:pg-pass@db/x", "REDIS_URL": "redis://:rd-pass@r/0"}
    )
    text = repr(settings)
    assert "pg-pass" not in text
    assert "rd-pass" not in text


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://app:s3cret@db:5432/x", "postgresql://app:***@db:5432/x"),
        ("postgresql://app:p@ss@db/x", "postgresql://app:***@db/x"),
        ("postgresql://app@db/x", "postgresql://app@db/x"),
        ("postgresql:///x", "postgresql:///x"),
    ],
)
def test_database_url_masked_hides_the_password(url: str, masked: str) -> None:
    assert Settings(database_url=Secret(url)).database_url_masked == masked


@pytest.mark.parametrize(
    ("var", "raw"),
    [
        ("PIPELINE_PARTITIONS", "abc"),
        ("PIPELINE_PARTITIONS", "0"),
        ("PIPELINE_REPLICATION_FACTOR", "-1"),
        ("SINK_BATCH_MAX", "2.5"),
        ("SINK_BATCH_WITHIN_S", "fast"),
        ("DEDUPE_WINDOW_HOURS", "0"),
        ("INGRESS_MAX_BODY_BYTES", "1MB"),
        ("LOG_FORMAT", "xml"),
        ("TABLE_STORE", "redis://"),
    ],
)
def test_unusable_values_raise_naming_the_variable(var: str, raw: str) -> None:
    with pytest.raises(SettingsError, match=var):
        load_settings({var: raw})


@pytest.mark.parametrize("raw", ["nan", "inf"])
def test_non_finite_numbers_are_rejected(raw: str) -> None:
    with pytest.raises(SettingsError, match="DEDUPE_WINDOW_HOURS"):
        load_settings({"DEDUPE_WINDOW_HOURS": raw})


def test_unknown_log_level_is_rejected() -> None:
    with pytest.raises(SettingsError, match="LOG_LEVEL"):
        load_settings({"LOG_LEVEL": "verbose"})


def test_with_overrides_returns_a_changed_copy() -> None:
    base = Settings()
    changed = base.with_overrides(partitions=3, topic_prefix="x.")
    assert (changed.partitions, changed.topic_prefix) == (3, "x.")
    assert (base.partitions, base.topic_prefix) == (6, "")


def test_every_field_has_one_distinct_variable() -> None:
    assert len(ENV_VARS) == len(set(ENV_VARS)) == len(Settings.__dataclass_fields__)


def test_fx_settings_from_the_environment() -> None:
    settings = load_settings(
        {"FX_PROVIDERS": "oxr, ecb", "OXR_APP_ID": "app-123", "FX_CACHE_TTL_S": "60"}
    )
    assert settings.fx_provider_names == ("oxr", "ecb")
    assert isinstance(settings.oxr_app_id, Secret)
    assert settings.oxr_app_id.value == "app-123"
    assert "app-123" not in repr(settings)
    assert settings.fx_cache_ttl_s == 60.0
    assert Settings().fx_provider_names == ("ecb", "oxr")


@pytest.mark.parametrize("raw", ["ecb,fixer", "ecb,ecb", "ecb,", "ECB"])
def test_fx_providers_must_be_known_and_named_once(raw: str) -> None:
    with pytest.raises(SettingsError, match=r"^FX_PROVIDERS=.* must name each of ecb, oxr"):
        load_settings({"FX_PROVIDERS": raw})


@pytest.mark.parametrize(("var", "raw"), [("FX_MAX_AGE_DAYS", "0"), ("FX_REFRESH_MINUTES", "x")])
def test_fx_numbers_are_checked(var: str, raw: str) -> None:
    with pytest.raises(SettingsError, match=f"^{var}="):
        load_settings({var: raw})
