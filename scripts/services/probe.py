#!/usr/bin/env python3
"""Small stdlib-only helpers for scripts/services.sh.

probe.py endpoint PREFIX VALUE    print shell assignments PREFIX_HOST, _PORT, _DB, _USER,
                                  _PASSWORD, _LOCAL for a URL or Kafka bootstrap list
probe.py tcp HOST PORT            exit 0 if a TCP connect succeeds
probe.py kafka HOST PORT          exit 0 if a Kafka broker answers an ApiVersions request
probe.py postgres HOST PORT       exit 0 if a PostgreSQL server answers an SSLRequest
probe.py redis HOST PORT [PASS]   exit 0 if Redis answers PING with PONG
"""

import shlex
import socket
import struct
import sys
from urllib.parse import unquote, urlsplit

TIMEOUT = 3.0
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0", ""}  # noqa: S104 - names, not a bind
DEFAULT_PORTS = {"postgresql": 5432, "postgres": 5432, "redis": 6379, "rediss": 6379}


def endpoint(prefix: str, value: str) -> None:
    value = value.strip()
    if "://" not in value:  # Kafka bootstrap list: host:port[,host:port...]
        value = "kafka://" + value.split(",")[0].strip()
    else:
        scheme, rest = value.split("://", 1)
        value = scheme + "://" + rest.split(",")[0]
    parts = urlsplit(value)
    scheme = parts.scheme.split("+")[0]  # postgresql+asyncpg -> postgresql
    host = parts.hostname or "127.0.0.1"
    port = parts.port or DEFAULT_PORTS.get(scheme, 9092)
    db = parts.path.lstrip("/")
    fields = {
        "HOST": host,
        "PORT": str(port),
        "DB": db,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "LOCAL": "1" if host in LOCAL_HOSTS else "0",
    }
    for key, val in fields.items():
        print(f"{prefix}_{key}={shlex.quote(val)}")


def connect(host: str, port: str) -> socket.socket:
    return socket.create_connection((host, int(port)), timeout=TIMEOUT)


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


def kafka(host: str, port: str) -> None:
    # ApiVersions v0: header (api_key=18, version=0, correlation_id, client_id), empty body.
    client = b"services.sh"
    body = struct.pack(">hhih", 18, 0, 4242, len(client)) + client
    with connect(host, port) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        (size,) = struct.unpack(">i", recv_exact(sock, 4))
        corr, err = struct.unpack(">ih", recv_exact(sock, min(size, 6)))
    if corr != 4242 or err != 0:
        raise RuntimeError(f"unexpected ApiVersions reply corr={corr} err={err}")


def postgres(host: str, port: str) -> None:
    # SSLRequest: any PostgreSQL server answers b"S" or b"N" before authentication.
    with connect(host, port) as sock:
        sock.sendall(struct.pack(">ii", 8, 80877103))
        reply = recv_exact(sock, 1)
    if reply not in (b"S", b"N"):
        raise RuntimeError(f"unexpected SSLRequest reply {reply!r}")


def redis(host: str, port: str, password: str = "") -> None:
    with connect(host, port) as sock:
        if password:
            sock.sendall(f"AUTH {password}\r\n".encode())
            if not sock.recv(64).startswith(b"+OK"):
                raise RuntimeError("AUTH failed")
        sock.sendall(b"PING\r\n")
        reply = sock.recv(64)
    if not reply.startswith(b"+PONG"):
        raise RuntimeError(f"unexpected PING reply {reply!r}")


def main(argv: list[str]) -> int:
    cmd, args = argv[0], argv[1:]
    try:
        if cmd == "endpoint":
            endpoint(*args)
        elif cmd == "tcp":
            connect(*args).close()
        elif cmd == "kafka":
            kafka(*args)
        elif cmd == "postgres":
            postgres(*args)
        elif cmd == "redis":
            redis(*args)
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except (OSError, RuntimeError, ValueError, struct.error):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
