from __future__ import annotations

import io
import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from pipeline import cli, credentials_cli, postgres
from pipeline.channels import AppCredential, Channel
from pipeline.locations import MapResult
from pipeline.platforms import registry
from pipeline.settings import Secret
from schemas.catalogue import EVENT_RECORDS
from schemas.jsonschema import event_schemas, schema_filename, schema_name

pytestmark = pytest.mark.usefixtures("clean_env")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        cli.main(list(argv))
    return int(info.value.code or 0), capsys.readouterr().err


def test_version_is_the_installed_package_version(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_PARTITIONS", "abc")  # would fail load_settings
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"pipeline {metadata.version('commerce-pipeline')}\n"


def test_version_without_package_metadata_says_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(cli.metadata, "version", missing)
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert capsys.readouterr().out == "pipeline unknown (not installed; run `make install`)\n"


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


@pytest.mark.parametrize(
    "argv",
    [
        ("dlq", "list", "--platform", "amazon"),
        ("dlq", "replay", "--platform", "amazon", "--dry-run"),
        ("dlq", "list", "--platform", "Shopify"),
    ],
)
def test_dlq_refuses_an_unknown_platform_naming_the_known_ones(
    capsys: pytest.CaptureFixture[str], connects: list[object], argv: tuple[str, ...]
) -> None:
    code, err = run(capsys, *argv)
    assert code == 2
    assert f"argument --platform: invalid choice: '{argv[3]}'" in err
    known = err.partition("(choose from ")[2]
    assert [name.strip("' ") for name in known.rstrip(")\n").split(",")] == sorted(
        registry.ADAPTERS
    )
    assert connects == []


def test_missing_shop_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, "channels", "add", "--platform", "shopify", "--secret", "12345678")
    assert code == 2
    assert "the following arguments are required: --shop" in err


def test_remove_needs_a_platform(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, "channels", "remove", "--shop", "a.myshopify.com")
    assert code == 2
    assert "--platform" in err


def test_topics_action_must_be_create_or_describe(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, "topics", "delete")
    assert code == 2
    assert "invalid choice: 'delete'" in err


def test_tables_reset_needs_yes(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, "tables", "reset")
    assert code == 2
    assert err.strip() == (
        "pipeline: error: tables reset forgets every remembered delivery; add --yes to do it"
    )


def test_tables_action_is_checked(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, "tables", "drop")
    assert code == 2
    assert "invalid choice: 'drop'" in err


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


async def _no_postgres(**kwargs: object) -> None:
    raise ConnectionRefusedError(111, "Connect call failed")


def test_unreachable_postgres_is_reported_with_a_masked_url(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:hunter22@db:5432/pipeline")
    monkeypatch.setattr(postgres.asyncpg, "create_pool", _no_postgres)
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
    monkeypatch.setattr(postgres.asyncpg, "create_pool", _no_postgres)
    code, err = run(capsys, "channels", "add", "--platform", "shopify", *args)
    assert code == 2
    assert problem in err
    assert "Postgres" not in err


# --- apps, channels, locations, schemas -------------------------------------------------------


@pytest.fixture
def platforms() -> None:
    """The CLI reads the real registry: every platform it is tested against is there."""
    assert {"shopify", "woocommerce", "shopee", "lazada", "tiktok"} <= set(registry.ADAPTERS)


def refused(capsys: pytest.CaptureFixture[str], connects: list[object], *argv: str) -> str:
    """Run a command that must fail validation: exit 2, one error line, no connection."""
    code, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("pipeline: error: ")
    assert err.count("\n") == 1
    assert connects == []
    return err


APP_ADD = ("apps", "add", "--app-key", "123456", "--secret", "app-secret-1234")


@pytest.mark.usefixtures("platforms")
@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (
            ("apps", "add", "--platform", "shopify", "--app-key", "k1", "--secret", "12345678"),
            "shopify signs each shop with its own secret, not an app's; use `pipeline channels add",
        ),
        (
            ("apps", "add", "--platform", "woocommerce", "--app-key", "k", "--secret", "12345678"),
            "woocommerce signs each shop with its own secret",
        ),
        (
            ("apps", "rotate", "--platform", "shopify", "--app-key", "k1", "--finish"),
            "shopify signs each shop with its own secret",
        ),
        (
            ("apps", "remove", "--platform", "shopify", "--app-key", "k1"),
            "shopify signs each shop with its own secret",
        ),
        (
            ("apps", "add", "--platform", "lazada", "--app-key", "bad key", "--secret", "12345678"),
            "--app-key 'bad key' is not an app key",
        ),
        (
            ("apps", "add", "--platform", "lazada", "--app-key", "k" * 129, "--secret", "12345678"),
            "is not an app key (1-128",
        ),
        (
            ("apps", "add", "--platform", "lazada", "--app-key", "k1", "--secret", "short"),
            "--secret must be at least 8 characters",
        ),
        (
            ("apps", "add", "--platform", "shopee", "--app-key", "2001", "--secret", "12345678"),
            "shopee apps need --callback-url: shopee signs the URL as registered",
        ),
        (
            (
                *("apps", "add", "--platform", "shopee", "--app-key", "2001"),
                *("--secret", "12345678", "--callback-url", "ftp://example.com/hook"),
            ),
            "--callback-url 'ftp://example.com/hook' is not an http(s) URL",
        ),
        (
            (
                *("apps", "add", "--platform", "shopee", "--app-key", "2001"),
                *("--secret", "12345678", "--callback-url", "https://"),
            ),
            "--callback-url 'https://' is not an http(s) URL",
        ),
        (
            (
                *("apps", "add", "--platform", "lazada", "--app-key", "k1"),
                *("--secret", "12345678", "--callback-url", "https://example.com/hook"),
            ),
            "--callback-url is only for Shopee apps; lazada does not sign it",
        ),
        (
            ("apps", "rotate", "--platform", "tiktok", "--app-key", "k1", "--secret", "new"),
            "--secret must be at least 8 characters",
        ),
        (
            ("channels", "add", "--platform", "lazada", "--shop", "1234567", "--secret", "s" * 12),
            "lazada signs every shop with its app's secret: pass --app-key, not --secret",
        ),
        (
            ("channels", "add", "--platform", "tiktok", "--shop", "7494049642642441621"),
            "tiktok channels need --app-key (the app that signs for the shop)",
        ),
        (
            ("channels", "add", "--platform", "shopify", "--shop", "a.myshopify.com"),
            "shopify channels need --secret (the shop's signing secret)",
        ),
        (
            (
                *("channels", "add", "--platform", "woocommerce"),
                *("--shop", "shop.example.com", "--app-key", "k1"),
            ),
            "--app-key is only for app-signed platforms; woocommerce signs each shop",
        ),
        (
            ("channels", "add", "--platform", "lazada", "--shop", "1234567", "--app-key", "a b"),
            "--app-key 'a b' is not an app key",
        ),
        (
            ("channels", "add", "--platform", "lazada", "--shop", "12 34", "--app-key", "k1"),
            "--shop '12 34' is not a lazada shop id (the Lazada seller id)",
        ),
        (
            ("channels", "add", "--platform", "shopee", "--shop", "9" * 65, "--app-key", "k1"),
            "is not a shopee shop id",
        ),
        (
            (
                *("channels", "add", "--platform", "woocommerce"),
                *("--shop", "https://user:pw@shop.example.com", "--secret", "s" * 12),
            ),
            "--shop 'https://user:pw@shop.example.com' is not a woocommerce shop id",
        ),
        (
            (
                *("channels", "add", "--platform", "woocommerce"),
                *("--shop", "ftp://shop.example.com", "--secret", "s" * 12),
            ),
            "is not a woocommerce shop id (the store address",
        ),
        (
            (
                *("channels", "add", "--platform", "lazada", "--shop", "1234567"),
                *("--app-key", "k1", "--currency", "dollars"),
            ),
            "--currency 'dollars' is not an ISO 4217 code",
        ),
        (
            ("channels", "rotate", "--platform", "lazada", "--shop", "1234567", "--finish"),
            "lazada shops are verified with their app's secret; rotate it with "
            "`pipeline apps rotate --platform lazada --app-key KEY`",
        ),
        (
            (
                *("channels", "rotate", "--platform", "shopify"),
                *("--shop", "a.myshopify.com", "--secret", "1234567"),
            ),
            "--secret must be at least 8 characters",
        ),
        (
            ("channels", "rotate", "--platform", "shopify", "--shop", "bad shop!", "--finish"),
            "--shop 'bad shop!' is not a shopify shop id (the shop's <name>.myshopify.com domain",
        ),
        (
            (
                *("channels", "add", "--platform", "shopify"),
                *("--shop", "not-a-shop", "--secret", "s" * 12),
            ),
            "--shop 'not-a-shop' is not a shopify shop id (the shop's <name>.myshopify.com domain",
        ),
        (
            (
                *("channels", "add", "--platform", "shopify"),
                *("--shop", "https://shop.example.com", "--secret", "s" * 12),
            ),
            "--shop 'https://shop.example.com' is not a shopify shop id",
        ),
        (
            ("channels", "remove", "--platform", "shopify", "--shop", "shop.example.com"),
            "--shop 'shop.example.com' is not a shopify shop id",
        ),
        (
            ("channels", "remove", "--platform", "tiktok", "--shop", "not/a/shop"),
            "--shop 'not/a/shop' is not a tiktok shop id",
        ),
        (
            (
                *("locations", "map", "--platform", "shopify", "--shop", "a.myshopify.com"),
                *("--location", "main store", "--warehouse", "WH-1"),
            ),
            "--location 'main store' is not a location id",
        ),
        (
            (
                *("locations", "map", "--platform", "shopify", "--shop", "a.myshopify.com"),
                *("--location", "655441491", "--warehouse", "WH 1"),
            ),
            "--warehouse 'WH 1' is not a warehouse code",
        ),
        (
            (
                *("locations", "map", "--platform", "shopify", "--shop", "a.myshopify.com"),
                *("--location", "655441491", "--warehouse", "WH-1", "--name", " "),
            ),
            "--name must be 1-200 characters",
        ),
        (
            (
                *("locations", "map", "--platform", "shopee", "--shop", "shop.example.com"),
                *("--location", "default", "--warehouse", "WH-1"),
            ),
            "--shop 'shop.example.com' is not a shopee shop id",
        ),
    ],
)
def test_bad_credentials_input_is_reported_before_connecting(
    capsys: pytest.CaptureFixture[str],
    connects: list[object],
    argv: tuple[str, ...],
    problem: str,
) -> None:
    err = refused(capsys, connects, *argv)
    assert problem in err


@pytest.mark.usefixtures("platforms")
def test_secret_from_stdin_is_checked_too(
    capsys: pytest.CaptureFixture[str],
    connects: list[object],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    err = refused(
        capsys, connects, "apps", "add", "--platform", "lazada", "--app-key", "k1", "--secret", "-"
    )
    assert err == (
        "pipeline: error: --secret -: the secret read from standard input is shorter than 8 "
        "characters\n"
    )


@pytest.mark.usefixtures("platforms")
@pytest.mark.parametrize("given", ["", "\n", "  \n"])
@pytest.mark.parametrize(
    "argv",
    [
        ("apps", "add", "--platform", "lazada", "--app-key", "k1", "--secret", "-"),
        ("channels", "add", "--platform", "shopify", "--shop", "a.myshopify.com", "--secret", "-"),
        (
            "channels",
            "rotate",
            "--platform",
            "shopify",
            "--shop",
            "a.myshopify.com",
            "--secret",
            "-",
        ),
    ],
)
def test_an_empty_secret_on_stdin_is_named_as_such(
    capsys: pytest.CaptureFixture[str],
    connects: list[object],
    monkeypatch: pytest.MonkeyPatch,
    given: str,
    argv: tuple[str, ...],
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(given))
    err = refused(capsys, connects, *argv)
    assert err == "pipeline: error: --secret -: the secret read from standard input was empty\n"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.usefixtures("platforms")
def test_a_secret_on_a_terminal_is_prompted_for_without_echo(
    capsys: pytest.CaptureFixture[str], store: FakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts: list[str] = []

    def getpass(prompt: str) -> str:
        prompts.append(prompt)
        return "typed-secret-1234"

    monkeypatch.setattr("sys.stdin", _Terminal(""))
    monkeypatch.setattr(credentials_cli.getpass, "getpass", getpass)
    main_ok(
        capsys,
        "channels",
        "add",
        "--platform",
        "shopify",
        "--shop",
        "a.myshopify.com",
        "--secret",
        "-",
    )
    assert prompts == ["secret: "]
    (channel,) = store.channels
    assert channel.secret is not None
    assert channel.secret.value == "typed-secret-1234"


@pytest.mark.usefixtures("platforms")
@pytest.mark.parametrize(
    "argv",
    [
        ("apps", "rotate", "--platform", "lazada", "--app-key", "k1"),
        ("apps", "rotate", "--platform", "lazada", "--app-key", "k1", "--finish", "--secret", "x"),
        ("channels", "rotate", "--platform", "shopify", "--shop", "a.myshopify.com"),
    ],
)
def test_rotate_needs_exactly_one_of_secret_and_finish(
    capsys: pytest.CaptureFixture[str], connects: list[object], argv: tuple[str, ...]
) -> None:
    code, err = run(capsys, *argv)
    assert code == 2
    assert "--secret" in err
    assert "--finish" in err
    assert connects == []


def test_channels_add_rejects_both_secret_and_app_key(
    capsys: pytest.CaptureFixture[str], connects: list[object]
) -> None:
    code, err = run(
        capsys,
        "channels",
        "add",
        "--platform",
        "shopify",
        "--shop",
        "a.myshopify.com",
        "--secret",
        "12345678",
        "--app-key",
        "k1",
    )
    assert code == 2
    assert "not allowed with argument --secret" in err
    assert connects == []


@pytest.mark.usefixtures("platforms")
@pytest.mark.parametrize(
    "argv",
    [
        (*APP_ADD[:2], "--platform", "lazada", *APP_ADD[2:]),
        (
            *APP_ADD[:2],
            "--platform",
            "shopee",
            *APP_ADD[2:],
            "--callback-url",
            "https://hooks.example.com/webhooks/shopee",
        ),
        ("apps", "rotate", "--platform", "tiktok", "--app-key", "k1", "--finish"),
        ("channels", "add", "--platform", "lazada", "--shop", "1234567", "--app-key", "k1"),
        ("channels", "rotate", "--platform", "shopify", "--shop", "a.myshopify.com", "--finish"),
        (
            "locations",
            "map",
            "--platform",
            "woocommerce",
            "--shop",
            "example.com/store",
            "--location",
            "default",
            "--warehouse",
            "woocommerce:example.com/store:default",
        ),
        ("locations", "list", "--unmapped"),
        ("apps", "list"),
    ],
)
def test_valid_credentials_input_reaches_the_database(
    capsys: pytest.CaptureFixture[str], connects: list[object], argv: tuple[str, ...]
) -> None:
    code, err = run(capsys, *argv)
    assert code == 2
    assert "cannot reach Postgres" in err
    assert len(connects) == 1


class FakeStore:
    """A ChannelStore / LocationStore stand-in that records what the CLI asked of it."""

    def __init__(self) -> None:
        self.channels: list[Channel] = []
        self.apps: list[AppCredential] = []
        self.known_apps: set[tuple[str, str]] = set()
        self.maps: list[tuple[str, str, str, str, str | None]] = []

    async def app_exists(self, platform: str, app_key: str) -> bool:
        return (platform, app_key) in self.known_apps

    async def add(self, channel: Channel, *, replace: bool = False) -> bool:
        self.channels.append(channel)
        return True

    async def add_app(self, app: AppCredential, *, replace: bool = False) -> bool:
        self.apps.append(app)
        return True

    async def remove_app(self, platform: str, app_key: str) -> bool:
        return False

    async def list_apps(self) -> list[AppCredential]:
        return [AppCredential("lazada", "k1", Secret("app-secret-1234"), channels=3)]

    async def map(
        self, platform: str, shop: str, location: str, code: str, name: str | None
    ) -> MapResult:
        self.maps.append((platform, shop, location, code, name))
        return MapResult(7, True, 2, 1)


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> FakeStore:
    fake = FakeStore()

    async def with_db(settings: object, action: Any) -> int:
        result: int = await action(object())
        return result

    monkeypatch.setattr(credentials_cli, "with_db", with_db)
    monkeypatch.setattr(credentials_cli, "ChannelStore", lambda pool: fake)
    monkeypatch.setattr(credentials_cli, "LocationStore", lambda pool: fake)
    return fake


def main_ok(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert cli.main(list(argv)) == 0
    return capsys.readouterr().out


@pytest.mark.usefixtures("platforms")
@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("https://Shop.Example.com/", "shop.example.com"),
        ("http://example.com/Store/", "example.com/store"),
        ("example.com:8443/wp", "example.com:8443/wp"),
        ("  shop.example.com  ", "shop.example.com"),
        ("https://Shop.Example.com/Store/?lang=en", "shop.example.com/store"),
    ],
)
def test_woocommerce_shop_is_normalised_like_the_adapter(
    capsys: pytest.CaptureFixture[str], store: FakeStore, typed: str, stored: str
) -> None:
    out = main_ok(
        capsys,
        "channels",
        "add",
        "--platform",
        "woocommerce",
        "--shop",
        typed,
        "--secret",
        "wc-secret-1234",
    )
    assert [c.shop_id for c in store.channels] == [stored]
    assert out == f"saved woocommerce {stored}\n"


@pytest.mark.usefixtures("platforms")
@pytest.mark.parametrize(
    "typed",
    ["Demo.myshopify.com", "https://demo.myshopify.com/", "http://DEMO.myshopify.com/admin"],
)
def test_shopify_shop_is_stored_as_its_myshopify_domain(
    capsys: pytest.CaptureFixture[str], store: FakeStore, typed: str
) -> None:
    out = main_ok(
        capsys, "channels", "add", "--platform", "shopify", "--shop", typed, "--secret", "s" * 12
    )
    assert [c.shop_id for c in store.channels] == ["demo.myshopify.com"]
    assert out == "saved shopify demo.myshopify.com\n"


@pytest.mark.usefixtures("platforms")
def test_app_channel_needs_an_existing_app(
    capsys: pytest.CaptureFixture[str], store: FakeStore
) -> None:
    code, err = run(
        capsys, "channels", "add", "--platform", "lazada", "--shop", "1234567", "--app-key", "k9"
    )
    assert code == 2
    assert err == (
        "pipeline: error: no lazada app k9; create it first with "
        "`pipeline apps add --platform lazada --app-key k9 --secret -`\n"
    )
    assert store.channels == []
    store.known_apps.add(("lazada", "k9"))
    main_ok(
        capsys, "channels", "add", "--platform", "lazada", "--shop", "1234567", "--app-key", "k9"
    )
    assert store.channels == [Channel("lazada", "1234567", app_key="k9")]


@pytest.mark.usefixtures("platforms")
def test_shopee_app_keeps_the_callback_url_exactly(
    capsys: pytest.CaptureFixture[str], store: FakeStore
) -> None:
    url = "https://Hooks.example.com/webhooks/shopee/"
    main_ok(capsys, *APP_ADD[:2], "--platform", "shopee", *APP_ADD[2:], "--callback-url", url)
    (app,) = store.apps
    assert (app.platform, app.app_key, app.secret.value, app.callback_url) == (
        "shopee",
        "123456",
        "app-secret-1234",
        url,
    )


@pytest.mark.usefixtures("platforms")
def test_app_remove_is_refused_naming_the_channel_count(
    capsys: pytest.CaptureFixture[str], store: FakeStore
) -> None:
    code, err = run(capsys, "apps", "remove", "--platform", "lazada", "--app-key", "k1")
    assert code == 2
    assert "lazada app k1 is used by 3 channel(s); remove them first" in err
    code, err = run(capsys, "apps", "remove", "--platform", "lazada", "--app-key", "k2")
    assert err == "pipeline: error: no lazada app k2\n"


def test_locations_map_default_means_the_empty_location(
    capsys: pytest.CaptureFixture[str], store: FakeStore
) -> None:
    out = main_ok(
        capsys,
        "locations",
        "map",
        "--platform",
        "shopify",
        "--shop",
        "A.myshopify.com",
        "--location",
        "default",
        "--warehouse",
        "EU-1",
        "--name",
        "Berlin",
    )
    assert store.maps == [("shopify", "a.myshopify.com", "", "EU-1", "Berlin")]
    assert out == (
        "shopify a.myshopify.com location default -> warehouse EU-1 (new): moved 2 stock "
        "level(s) and 1 active reservation(s)\n"
    )


def test_schemas_export_needs_no_settings_or_database(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    connects: list[object],
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("PIPELINE_PARTITIONS", "abc")  # would fail load_settings
    out = main_ok(capsys, "schemas", "export", "--out", str(tmp_path / "out"))
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == sorted(schema_filename(schema_name(r)) for r in EVENT_RECORDS)
    assert out == f"wrote {len(EVENT_RECORDS)} schemas to {tmp_path / 'out'}\n"
    order = json.loads((tmp_path / "out" / "commerce.order.v1.json").read_text())
    assert order == event_schemas()["commerce.order/v1"]
    assert connects == []


def test_schemas_export_prints_one_object_without_out(capsys: pytest.CaptureFixture[str]) -> None:
    printed = json.loads(main_ok(capsys, "schemas", "export"))
    assert list(printed) == [schema_name(r) for r in EVENT_RECORDS]
    assert printed["commerce.fulfillment/v1"]["title"] == "FulfillmentEvent"


def test_schemas_export_to_an_unwritable_place_is_one_error_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, err = run(capsys, "schemas", "export", "--out", str(blocker / "sub"))
    assert code == 2
    assert err.startswith(f"pipeline: error: cannot write schemas to {blocker / 'sub'}")


def test_a_reader_that_goes_away_stops_the_command_quietly() -> None:
    """`pipeline dlq list | head`: no BrokenPipeError traceback once head has had enough."""
    script = (
        "from pipeline import cli\n"
        "def export(out):\n"
        "    for _ in range(100_000):\n"
        "        print('x' * 100)\n"
        "    return 0\n"
        "cli._export_schemas = export\n"
        "raise SystemExit(cli.main(['schemas', 'export']))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    assert proc.stdout.read(10) == b"x" * 10
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert err == ""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["rebuild", "--database", "nope"], "--database 'nope' is not a postgresql:// URL"),
        (
            ["rebuild", "--database", "postgresql://postgres@127.0.0.1:5432/pipeline"],
            "--database is the live DATABASE_URL",
        ),
        (["replay", "--from", "yesterday"], "'yesterday' is not a time"),
        (["replay", "--offsets", "0:9-3"], "ends before it starts"),
    ],
)
def test_replay_and_rebuild_mistakes_are_one_line_before_connecting(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    status, err = run(capsys, *argv)
    assert status == 2
    assert err.startswith("pipeline: error: ")
    assert message in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("rate", ["0", "-1", "fast", "100001"])
def test_a_replay_rate_must_be_a_sensible_number(
    capsys: pytest.CaptureFixture[str], rate: str
) -> None:
    status, err = run(capsys, "replay", "--rate", rate)
    assert status == 2
    assert "--rate" in err


def test_replay_canonical_is_reemit(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, "replay", "--canonical", "--shop", "x.myshopify.com")
    assert code == 2
    assert "--shop needs --platform" in err  # reemit's own rule; replay has no such one
