from __future__ import annotations

import pytest

from pipeline import cli, cli_common
from pipeline.settings import ENV_VARS


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    # The CLI installs its own root handler; keep pytest's logging intact.
    monkeypatch.setattr(cli, "configure_logging", lambda level, fmt: None)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        cli.main(list(argv))
    return int(info.value.code or 0), capsys.readouterr().err


def test_no_command_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys)
    assert code == 2
    assert "required: COMMAND" in err


def test_unknown_command_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, "serve")
    assert code == 2
    assert "invalid choice: 'serve'" in err


def test_unknown_platform_choice_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(
        capsys, "channels", "add", "--platform", "etsy", "--shop", "a", "--secret", "12345678"
    )
    assert code == 2
    assert "--platform" in err
    assert "invalid choice: 'etsy'" in err


def test_missing_shop_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, "channels", "add", "--platform", "shopify", "--secret", "12345678")
    assert code == 2
    assert "the following arguments are required: --shop" in err


def test_remove_needs_a_platform(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, "channels", "remove", "--shop", "a.myshopify.com")
    assert code == 2
    assert "--platform" in err


def test_topics_action_must_be_create(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, "topics", "delete")
    assert code == 2
    assert "invalid choice: 'delete'" in err


def test_non_numeric_port_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, "ingress", "--port", "http")
    assert code == 2
    assert "invalid int value: 'http'" in err


@pytest.mark.parametrize("port", ["0", "70000"])
def test_out_of_range_port_exits_2(capsys: pytest.CaptureFixture[str], port: str) -> None:
    code, err = run(capsys, "ingress", "--port", port)
    assert code == 2
    assert err == f"pipeline: error: --port {port} is not a TCP port\n"


@pytest.mark.parametrize(
    ("var", "value"), [("PIPELINE_PARTITIONS", "abc"), ("LOG_FORMAT", "yaml"), ("DB_POOL_MAX", "0")]
)
def test_settings_error_exits_2_naming_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    monkeypatch.setenv(var, value)
    code, err = run(capsys, "migrate")
    assert code == 2
    assert err.startswith("pipeline: error: ")
    assert var in err


async def _no_postgres(settings: object, **kwargs: object) -> None:
    raise ConnectionRefusedError(111, "Connect call failed")


def test_unreachable_postgres_is_reported_with_a_masked_url(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:hunter22@db:5432/pipeline")
    monkeypatch.setattr(cli_common, "create_pool", _no_postgres)
    code, err = run(capsys, "migrate")
    assert code == 2
    assert "cannot reach Postgres at postgresql://app:***@db:5432/pipeline" in err
    assert "hunter22" not in err


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("--shop", "bad shop!", "--secret", "12345678"), "--shop 'bad shop!'"),
        (("--shop", "a.myshopify.com", "--secret", "short"), "--secret must be at least 8"),
        (("--shop", "a.myshopify.com", "--secret", "12345678", "--currency", "usd$"), "--currency"),
    ],
)
def test_bad_channel_input_is_reported_before_connecting(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    problem: str,
) -> None:
    monkeypatch.setattr(cli_common, "create_pool", _no_postgres)
    code, err = run(capsys, "channels", "add", "--platform", "shopify", *args)
    assert code == 2
    assert problem in err
    assert "Postgres" not in err
