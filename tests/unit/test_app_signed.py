"""Signature checks of the app-signed platforms (Shopee, TikTok Shop, Lazada): one app secret
signs hex HMAC-SHA256 over something the app registered plus the raw body. Each platform's
known-answer vector is spelled out below; every check runs against all three."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import orjson
import pytest

from pipeline.platforms import lazada, shopee, tiktok
from pipeline.platforms.base import Credentials, PlatformAdapter
from tests.unit.platform_cases import Fixtures


@dataclass(frozen=True)
class Vector:
    """A platform's known-answer vector, and what is signed with the body: the app key
    (TikTok Shop, Lazada) or the registered callback URL (Shopee)."""

    platform: str
    adapter: PlatformAdapter
    header: str
    signed_with: Literal["app_key", "callback_url"]
    secret: str
    extra: str
    body: bytes
    digest: str
    other_extra: str
    # The same body with a change that must break the signature.
    altered: bytes
    # (secret, extra, body) -> signature, and -> the headers the platform sends.
    sign: Callable[[str, str, bytes], str]
    headers: Callable[[str, str, bytes], dict[str, str]]

    def creds(self, *secrets: str) -> Credentials:
        """Credentials holding `secrets` and this vector's app key or callback URL."""
        return self.creds_with(self.extra, *secrets)

    def creds_with(self, extra: str | None, *secrets: str) -> Credentials:
        """Credentials holding `secrets` and another app key or callback URL (or none)."""
        if self.signed_with == "app_key":
            return Credentials(secrets=secrets, app_key=extra)
        return Credentials(secrets=secrets, callback_url=extra)


def _reindented(body: bytes) -> bytes:
    """The same JSON with other white space: a proxy that re-serialises the body."""
    return orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2)


_TIKTOK_BODY = Fixtures("tiktok").bytes("order_status_unpaid")
_LAZADA_BODY = Fixtures("lazada").bytes("trade_order_unpaid")

SHOPEE = Vector(
    platform="shopee",
    adapter=shopee.ShopeeAdapter(),
    header=shopee.SIGNATURE_HEADER,
    signed_with="callback_url",
    secret="PARTNER_KEY",
    extra="http://localhost/webhook",
    body=b"HELLO",
    digest="b43c7e4cad148d440597015f1da5a0b9335895110ca4399785593bbf6e0e329e",
    other_extra="http://localhost/webhook/",
    altered=b"HELLO ",
    sign=shopee.sign,
    headers=lambda secret, url, body: shopee.delivery_headers(secret, body, callback_url=url),
)
TIKTOK = Vector(
    platform="tiktok",
    adapter=tiktok.TikTokAdapter(),
    header=tiktok.SIGNATURE_HEADER,
    signed_with="app_key",
    secret="test_app_secret",
    extra="test_app_key",
    body=_TIKTOK_BODY,
    digest="81538e1d4c8981ff04acb001b3f833cd13b4a2d982061caffabde4d39dfd3950",
    other_extra="other_app_key",
    altered=_reindented(_TIKTOK_BODY),
    sign=tiktok.sign,
    headers=lambda secret, key, body: tiktok.delivery_headers(secret, body, app_key=key),
)
LAZADA = Vector(
    platform="lazada",
    adapter=lazada.LazadaAdapter(),
    header=lazada.SIGNATURE_HEADER,
    signed_with="app_key",
    secret="test_app_secret",
    extra="test_app_key",
    body=_LAZADA_BODY,
    digest="78dbd08a8a9feccf92389396b8e0bfd270075805a0cc400593f9931f4bcaf58b",
    other_extra="other_app_key",
    altered=_reindented(_LAZADA_BODY),
    sign=lazada.sign,
    headers=lazada.delivery_headers,
)

each_platform = pytest.mark.parametrize(
    "case", [SHOPEE, TIKTOK, LAZADA], ids=lambda case: case.platform
)


@each_platform
def test_sign_matches_the_known_answer_vector(case: Vector) -> None:
    assert case.sign(case.secret, case.extra, case.body) == case.digest


@each_platform
def test_verify_accepts_the_known_answer_vector(case: Vector) -> None:
    assert case.adapter.verify(case.creds(case.secret), {case.header: case.digest}, case.body)


@each_platform
def test_verify_accepts_an_uppercase_hex_signature(case: Vector) -> None:
    headers = {case.header: case.digest.upper()}
    assert case.adapter.verify(case.creds(case.secret), headers, case.body)


@each_platform
def test_verify_accepts_either_secret_during_a_rotation(case: Vector) -> None:
    headers = {case.header: case.digest}
    assert case.adapter.verify(case.creds("old-secret", case.secret), headers, case.body)
    assert case.adapter.verify(case.creds(case.secret, "new-secret"), headers, case.body)


@each_platform
def test_verify_rejects_a_wrong_secret(case: Vector) -> None:
    near = case.secret[:-1] + case.secret[-1].swapcase()
    headers = {case.header: case.digest}
    assert not case.adapter.verify(case.creds(near, "other"), headers, case.body)


@each_platform
def test_verify_rejects_what_another_app_key_or_callback_url_signed(case: Vector) -> None:
    other = case.creds_with(case.other_extra, case.secret)
    assert not case.adapter.verify(other, {case.header: case.digest}, case.body)


@each_platform
def test_verify_without_an_app_key_or_callback_url_is_false(case: Vector) -> None:
    missing = case.creds_with(None, case.secret)
    assert not case.adapter.verify(missing, {case.header: case.digest}, case.body)


@each_platform
def test_verify_with_no_secrets_is_false(case: Vector) -> None:
    assert not case.adapter.verify(case.creds(), {case.header: case.digest}, case.body)


@each_platform
def test_verify_rejects_a_missing_signature(case: Vector) -> None:
    assert not case.adapter.verify(case.creds(case.secret), {}, case.body)


@each_platform
@pytest.mark.parametrize(
    "given",
    [
        "",
        "  ",
        pytest.param(lambda d: d[:-1], id="truncated-1"),
        pytest.param(lambda d: d[:-2], id="truncated-2"),
        pytest.param(lambda d: "sha256=" + d, id="prefixed"),
        "é" * 64,
    ],
)
def test_verify_rejects_blank_truncated_or_odd_signatures(
    case: Vector, given: str | Callable[[str], str]
) -> None:
    value = given(case.digest) if callable(given) else given
    assert not case.adapter.verify(case.creds(case.secret), {case.header: value}, case.body)


@each_platform
def test_verify_rejects_a_changed_body(case: Vector) -> None:
    assert case.altered != case.body
    headers = {case.header: case.digest}
    assert not case.adapter.verify(case.creds(case.secret), headers, case.altered)


@each_platform
def test_delivery_headers_carry_the_signature(case: Vector) -> None:
    headers = case.headers(case.secret, case.extra, case.body)
    assert headers[case.header] == case.digest
    assert case.adapter.verify(case.creds(case.secret), headers, case.body)


@each_platform
def test_delivery_headers_verify_under_other_credentials(case: Vector) -> None:
    headers = case.headers("secret-1", case.other_extra, case.body)
    credentials = case.creds_with(case.other_extra, "secret-1")
    assert case.adapter.verify(credentials, headers, case.body)
    assert not case.adapter.verify(case.creds(case.secret), headers, case.body)
