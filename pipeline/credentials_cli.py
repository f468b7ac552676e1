"""`pipeline apps | channels | locations`: who may send webhooks, with which secrets, and where
their stock counts.

Every argument is checked before the database is reached, so a typo costs no connection and
never half-applies. Shop-scope platforms (Shopify, WooCommerce) sign each shop with its own
secret; app-scope platforms (Shopee, Lazada, TikTok Shop) sign every shop with one app secret.
"""

from __future__ import annotations

import argparse
import getpass
import re
import sys
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from pipeline.channels import AppCredential, Channel, ChannelStore, mask
from pipeline.cli_common import CliError, shop_arg, with_db
from pipeline.locations import LocationStore
from pipeline.platforms import registry
from pipeline.settings import Secret, Settings

_APP_KEY_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
_LOCATION_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_WAREHOUSE_RE = re.compile(r"^[A-Za-z0-9._:/-]{1,200}$")
# Platforms that sign the callback URL as registered, so the app must record it.
_SIGNS_CALLBACK_URL = frozenset({"shopee"})
_MIN_SECRET = 8


def _scope(platform: str) -> str:
    return registry.ADAPTERS[platform].credential_scope


def _secret(text: str, flag: str = "--secret") -> Secret:
    """The secret given, or read from standard input for '-' (prompted, unechoed, on a
    terminal); a CliError when it is empty or too short."""
    if text != "-":
        if len(text) < _MIN_SECRET:
            raise CliError(
                f"{flag} must be at least {_MIN_SECRET} characters (use '-' to read it from stdin)"
            )
        return Secret(text)
    value = _read_stdin_secret(flag).strip()
    if not value:
        raise CliError(f"{flag} -: the secret read from standard input was empty")
    if len(value) < _MIN_SECRET:
        raise CliError(
            f"{flag} -: the secret read from standard input is shorter than {_MIN_SECRET} "
            "characters"
        )
    return Secret(value)


def _read_stdin_secret(flag: str) -> str:
    # A terminal gets a prompt instead of a silent wait, and the secret is not echoed.
    if sys.stdin.isatty():
        return getpass.getpass(f"{flag.removeprefix('--')}: ")
    return sys.stdin.readline()


def _app_key(text: str) -> str:
    key = text.strip()
    if not _APP_KEY_RE.match(key):
        raise CliError(
            f"--app-key {text!r} is not an app key (1-128 letters, digits, '.', '-', '_')"
        )
    return key


def _callback_url(platform: str, text: str | None) -> str | None:
    if platform not in _SIGNS_CALLBACK_URL:
        if text is not None:
            raise CliError(f"--callback-url is only for Shopee apps; {platform} does not sign it")
        return None
    if text is None:
        raise CliError(
            f"{platform} apps need --callback-url: {platform} signs the URL as registered"
        )
    url = text.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in url):
        raise CliError(
            f"--callback-url {text!r} is not an http(s) URL; give it exactly as registered "
            f"with {platform}"
        )
    return url  # not normalised: the platform signs these exact characters


def _app_platform(platform: str) -> None:
    if _scope(platform) != "app":
        raise CliError(
            f"{platform} signs each shop with its own secret, not an app's; use "
            f"`pipeline channels add --platform {platform} --shop SHOP --secret -`"
        )


def _location(text: str) -> str:
    location = text.strip()
    if location == "default":
        return ""
    if not _LOCATION_RE.match(location):
        raise CliError(
            f"--location {text!r} is not a location id (letters, digits, '.', '-', '_'; "
            "'default' for the channel's default location)"
        )
    return location


def add_parsers(sub: Any) -> None:
    """The `apps`, `channels` and `locations` subcommands."""
    platforms = sorted(registry.ADAPTERS)

    apps = sub.add_parser("apps", help="app credentials (Shopee, Lazada, TikTok Shop)")
    app_sub = apps.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = app_sub.add_parser("add", help="register an app and its signing secret")
    add.add_argument("--platform", required=True, choices=platforms)
    add.add_argument("--app-key", required=True, help="the app's public key (partner id)")
    add.add_argument("--secret", required=True, help="the app's signing secret, or '-' for stdin")
    add.add_argument("--callback-url", help="Shopee: the push URL exactly as registered")
    add.add_argument("--replace", action="store_true", help="overwrite an existing app")
    app_sub.add_parser("list", help="list apps (secrets masked)")
    remove = app_sub.add_parser("remove", help="forget an app no channel uses")
    remove.add_argument("--platform", required=True, choices=platforms)
    remove.add_argument("--app-key", required=True)
    rotate = app_sub.add_parser("rotate", help="start or finish rotating an app's secret")
    rotate.add_argument("--platform", required=True, choices=platforms)
    rotate.add_argument("--app-key", required=True)
    _rotation_flags(rotate)

    channels = sub.add_parser("channels", help="shops whose webhooks are accepted")
    ch_sub = channels.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = ch_sub.add_parser("add", help="add a shop and what verifies its webhooks")
    add.add_argument("--platform", required=True, choices=platforms)
    add.add_argument("--shop", required=True, help="shop id (Shopify: the myshopify.com domain)")
    cred = add.add_mutually_exclusive_group()
    cred.add_argument("--secret", help="Shopify/WooCommerce: the shop's secret, or '-' for stdin")
    cred.add_argument("--app-key", help="Shopee/Lazada/TikTok Shop: the app that signs for it")
    add.add_argument("--currency", help="the shop's currency (ISO 4217)")
    add.add_argument("--replace", action="store_true", help="overwrite an existing channel")
    ch_sub.add_parser("list", help="list channels (secrets masked)")
    remove = ch_sub.add_parser("remove", help="stop accepting a shop's webhooks")
    remove.add_argument("--platform", required=True, choices=platforms)
    remove.add_argument("--shop", required=True)
    rotate = ch_sub.add_parser("rotate", help="start or finish rotating a shop's secret")
    rotate.add_argument("--platform", required=True, choices=platforms)
    rotate.add_argument("--shop", required=True)
    _rotation_flags(rotate)

    locations = sub.add_parser("locations", help="which warehouse a platform location counts in")
    loc_sub = locations.add_subparsers(dest="action", required=True, metavar="ACTION")
    mapping = loc_sub.add_parser("map", help="count a location's stock in a warehouse")
    mapping.add_argument("--platform", required=True, choices=platforms)
    mapping.add_argument("--shop", required=True)
    mapping.add_argument(
        "--location", required=True, help="the platform's location id ('default' if it has none)"
    )
    mapping.add_argument("--warehouse", required=True, help="warehouse code (created if new)")
    mapping.add_argument("--name", help="the warehouse's name")
    listing = loc_sub.add_parser("list", help="locations and their warehouses")
    listing.add_argument("--unmapped", action="store_true", help="only locations nobody mapped")


def _rotation_flags(parser: argparse.ArgumentParser) -> None:
    step = parser.add_mutually_exclusive_group(required=True)
    step.add_argument(
        "--secret", help="the new secret ('-' for stdin); the current one stays valid beside it"
    )
    step.add_argument(
        "--finish", action="store_true", help="retire the old secret: only the new one verifies"
    )


async def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run an `apps`, `channels` or `locations` command."""
    if args.command == "apps":
        return await _apps(settings, args)
    if args.command == "channels":
        return await _channels(settings, args)
    return await _locations(settings, args)


async def _apps(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "list":
        return await with_db(settings, _list_apps)
    platform = args.platform
    _app_platform(platform)
    key = _app_key(args.app_key)

    if args.action == "add":
        app = AppCredential(
            platform, key, _secret(args.secret), _callback_url(platform, args.callback_url)
        )

        async def add(pool: asyncpg.Pool) -> int:
            if not await ChannelStore(pool).add_app(app, replace=args.replace):
                raise CliError(
                    f"{platform} app {key} exists; pass --replace to change it, or rotate its "
                    f"secret with `pipeline apps rotate --platform {platform} --app-key {key}`"
                )
            print(f"saved {platform} app {key}")
            return 0

        return await with_db(settings, add)

    if args.action == "remove":

        async def remove(pool: asyncpg.Pool) -> int:
            store = ChannelStore(pool)
            if not await store.remove_app(platform, key):
                app = await _find_app(store, platform, key)
                raise CliError(
                    f"{platform} app {key} is used by {app.channels} channel(s); remove them "
                    "first (`pipeline channels remove`)"
                )
            print(f"removed {platform} app {key}")
            return 0

        return await with_db(settings, remove)

    return await _rotate_app(settings, platform, key, args)


async def _rotate_app(settings: Settings, platform: str, key: str, args: argparse.Namespace) -> int:
    new = None if args.finish else _secret(args.secret)
    command = f"pipeline apps rotate --platform {platform} --app-key {key}"

    async def rotate(pool: asyncpg.Pool) -> int:
        store = ChannelStore(pool)
        if not await store.rotate_app(platform, key, new):
            await _find_app(store, platform, key)
            raise CliError(_rotation_refused(f"{platform} app {key}", command, new is None))
        if new is None:
            print(f"{platform} app {key}: rotation finished, only the current secret verifies")
        else:
            print(
                f"{platform} app {key}: rotating, the old and new secrets both verify until "
                "`--finish`"
            )
        return 0

    return await with_db(settings, rotate)


def _rotation_refused(what: str, command: str, finishing: bool) -> str:
    """Why a rotation step changed nothing, and the command that would."""
    if finishing:
        return f"no rotation of {what} is under way; start one with `{command} --secret -`"
    return f"a rotation of {what} is under way; finish it first with `{command} --finish`"


async def _find_app(store: ChannelStore, platform: str, key: str) -> AppCredential:
    """The app, or a CliError saying there is none."""
    for app in await store.list_apps():
        if app.platform == platform and app.app_key == key:
            return app
    raise CliError(f"no {platform} app {key}")


async def _list_apps(pool: asyncpg.Pool) -> int:
    print(
        f"{'PLATFORM':<12} {'APP KEY':<32} {'SECRET':<10} {'ROTATING':<8} {'CHANNELS':<8} "
        "CALLBACK URL"
    )
    for app in await ChannelStore(pool).list_apps():
        rotating = "yes" if app.previous_secret is not None else "no"
        print(
            f"{app.platform:<12} {app.app_key:<32} {mask(app.secret.value):<10} {rotating:<8} "
            f"{app.channels:<8} {app.callback_url or '-'}"
        )
    return 0


async def _channels(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "list":
        return await with_db(settings, _list_channels)
    platform = args.platform
    shop = shop_arg(platform, args.shop)
    if args.action == "remove":
        return await _remove_channel(settings, platform, shop)
    if args.action == "rotate":
        return await _rotate_channel(settings, platform, shop, args)
    return await _add_channel(settings, _channel_from_args(platform, shop, args), args.replace)


async def _remove_channel(settings: Settings, platform: str, shop: str) -> int:
    async def remove(pool: asyncpg.Pool) -> int:
        if not await ChannelStore(pool).remove(platform, shop):
            raise CliError(f"no {platform} channel for shop {shop}")
        print(f"removed {platform} {shop}")
        return 0

    return await with_db(settings, remove)


def _channel_from_args(platform: str, shop: str, args: argparse.Namespace) -> Channel:
    """The channel `channels add` describes: an app key or a secret, as the platform signs."""
    currency = args.currency.strip().upper() if args.currency else None
    if currency is not None and not _CURRENCY_RE.match(currency):
        raise CliError(f"--currency {args.currency!r} is not an ISO 4217 code such as USD")
    if _scope(platform) == "app":
        if args.secret is not None:
            raise CliError(
                f"{platform} signs every shop with its app's secret: pass --app-key, not --secret"
            )
        if args.app_key is None:
            raise CliError(f"{platform} channels need --app-key (the app that signs for the shop)")
        return Channel(platform, shop, currency=currency, app_key=_app_key(args.app_key))
    if args.app_key is not None:
        raise CliError(
            f"--app-key is only for app-signed platforms; {platform} signs each shop with its "
            "own --secret"
        )
    if args.secret is None:
        raise CliError(f"{platform} channels need --secret (the shop's signing secret)")
    return Channel(platform, shop, _secret(args.secret), currency)


async def _add_channel(settings: Settings, channel: Channel, replace: bool) -> int:
    platform, shop = channel.platform, channel.shop_id

    async def add(pool: asyncpg.Pool) -> int:
        store = ChannelStore(pool)
        if channel.app_key is not None and not await store.app_exists(platform, channel.app_key):
            raise CliError(
                f"no {platform} app {channel.app_key}; create it first with "
                f"`pipeline apps add --platform {platform} --app-key {channel.app_key} --secret -`"
            )
        if not await store.add(channel, replace=replace):
            raise CliError(f"{platform} shop {shop} exists; pass --replace to change it")
        print(f"saved {platform} {shop}")
        return 0

    return await with_db(settings, add)


async def _rotate_channel(
    settings: Settings, platform: str, shop: str, args: argparse.Namespace
) -> int:
    if _scope(platform) == "app":
        raise CliError(
            f"{platform} shops are verified with their app's secret; rotate it with "
            f"`pipeline apps rotate --platform {platform} --app-key KEY`"
        )
    new = None if args.finish else _secret(args.secret)
    command = f"pipeline channels rotate --platform {platform} --shop {shop}"

    async def rotate(pool: asyncpg.Pool) -> int:
        store = ChannelStore(pool)
        if not await store.rotate(platform, shop, new):
            if await store.get(platform, shop) is None:
                raise CliError(f"no {platform} channel for shop {shop}")
            raise CliError(_rotation_refused(f"{platform} shop {shop}", command, new is None))
        if new is None:
            print(f"{platform} {shop}: rotation finished, only the current secret verifies")
        else:
            print(
                f"{platform} {shop}: rotating, the old and new secrets both verify until --finish"
            )
        return 0

    return await with_db(settings, rotate)


async def _list_channels(pool: asyncpg.Pool) -> int:
    print(f"{'PLATFORM':<12} {'SHOP':<40} {'CURRENCY':<8} {'ROTATING':<8} SECRET")
    for ch in await ChannelStore(pool).list():
        rotating = "yes" if ch.rotating else "no"
        print(
            f"{ch.platform:<12} {ch.shop_id:<40} {ch.currency or '-':<8} {rotating:<8} "
            f"{ch.masked_secret}"
        )
    return 0


async def _locations(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "list":
        unmapped: bool = args.unmapped

        async def listing(pool: asyncpg.Pool) -> int:
            print(
                f"{'PLATFORM':<12} {'SHOP':<40} {'LOCATION':<20} {'WAREHOUSE':<40} "
                f"{'MAPPED':<6} LEVELS"
            )
            for loc in await LocationStore(pool).list(unmapped):
                print(
                    f"{loc.platform:<12} {loc.shop_id:<40} {loc.location:<20} "
                    f"{loc.warehouse_code:<40} {'yes' if loc.mapped else 'no':<6} {loc.levels}"
                )
            return 0

        return await with_db(settings, listing)

    platform = args.platform
    shop = shop_arg(platform, args.shop)
    location = _location(args.location)
    code = args.warehouse.strip()
    if not _WAREHOUSE_RE.match(code):
        raise CliError(
            f"--warehouse {args.warehouse!r} is not a warehouse code "
            "(1-200 letters, digits, '.', '-', '_', ':', '/')"
        )
    name = args.name.strip() if args.name is not None else None
    if name is not None and not 0 < len(name) <= 200:
        raise CliError("--name must be 1-200 characters")

    async def mapping(pool: asyncpg.Pool) -> int:
        done = await LocationStore(pool).map(platform, shop, location, code, name)
        if done is None:
            raise CliError(f"no {platform} channel for shop {shop}")
        print(
            f"{platform} {shop} location {location or 'default'} -> warehouse {code}"
            f"{' (new)' if done.warehouse_created else ''}: moved {done.levels_moved} stock "
            f"level(s) and {done.reservations_moved} active reservation(s)"
        )
        return 0

    return await with_db(settings, mapping)
