"""Checks of the endpoint settings, so a malformed URL is refused in one line naming the
variable, before a client library turns it into a traceback."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_POSTGRES_SCHEMES = ("postgresql", "postgres")
_REDIS_SCHEMES = ("redis", "rediss", "unix")


class EndpointError(ValueError):
    """An endpoint setting that no client could connect with; the text names the fix."""


def masked(url: str) -> str:
    """The URL with any password replaced, for logs and error messages."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url


def _check_port(env: str, shown: str, port: str) -> None:
    if not (port.isdigit() and 0 < int(port) < 65536):
        raise EndpointError(f"{env}={shown!r}: port {port!r} is not a number from 1 to 65535")


def _check_host_port(env: str, shown: str, entry: str, *, port_required: bool) -> None:
    """`host`, `host:port` or `[v6]:port`; a port, when there, must be a TCP port."""
    host, port = entry, ""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest.removeprefix(":")
    elif ":" in entry:
        host, _, port = entry.rpartition(":")
    if not host:
        raise EndpointError(f"{env}={shown!r}: a host is missing")
    if port_required and not port:
        raise EndpointError(f"{env}={shown!r}: {entry!r} has no port (host:port)")
    if port:
        _check_port(env, shown, port)


def check_database_url(env: str, url: str) -> None:
    """A libpq-style URL asyncpg accepts: postgresql://user:password@host:port/db?sslmode=..."""
    shown = masked(url)
    parts = urlsplit(url)
    if parts.scheme not in _POSTGRES_SCHEMES or "://" not in url:
        raise EndpointError(
            f"{env}={shown!r} is not a Postgres URL (postgresql://user@host:5432/database)"
        )
    hosts = parts.netloc.rpartition("@")[2]
    for entry in filter(None, hosts.split(",")):  # asyncpg takes several hosts; none: a socket
        _check_host_port(env, shown, entry, port_required=False)
    for mode in parse_qs(parts.query).get("sslmode", []):
        if mode not in SSL_MODES:
            raise EndpointError(
                f"{env}={shown!r}: sslmode {mode!r} is not one of {', '.join(SSL_MODES)}"
            )


def check_redis_url(env: str, url: str) -> None:
    """redis://[user:password@]host[:port][/db], rediss:// or unix://."""
    shown = masked(url)
    parts = urlsplit(url)
    if parts.scheme not in _REDIS_SCHEMES or "://" not in url:
        raise EndpointError(f"{env}={shown!r} is not a Redis URL (redis://host:6379/0)")
    if parts.scheme == "unix":
        return
    _check_host_port(env, shown, parts.netloc.rpartition("@")[2], port_required=False)
    database = parts.path.strip("/")
    if database and not database.isdigit():
        raise EndpointError(f"{env}={shown!r}: database {database!r} is not a number")


def check_bootstrap_servers(env: str, servers: str) -> None:
    """Comma-separated host:port pairs, without a scheme."""
    for entry in (s.strip() for s in servers.split(",")):
        if "://" in entry:
            raise EndpointError(f"{env}={servers!r}: give host:port without a scheme ({entry!r})")
        _check_host_port(env, servers, entry, port_required=True)
