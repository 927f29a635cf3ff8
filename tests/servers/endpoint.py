"""Address helpers shared by every loopback test server."""

from __future__ import annotations

import socket
from dataclasses import dataclass

LOOPBACK = "127.0.0.1"


def make_url(scheme: str, host: str, port: int, path: str = "/") -> str:
    """Join ``scheme://host:port`` and *path* (a leading ``/`` is added if missing)."""
    if not path.startswith("/"):
        path = "/" + path
    return f"{scheme}://{host}:{port}{path}"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a running server listens: ``host``, ``port``, ``base`` and ``url(path)``."""

    host: str
    port: int
    scheme: str = "http"

    @property
    def base(self) -> str:
        """``scheme://host:port`` with no trailing slash."""
        return f"{self.scheme}://{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        """The absolute URL of *path* on this server."""
        return make_url(self.scheme, self.host, self.port, path)


def unused_tcp_port() -> int:
    """A loopback port that was free a moment ago (nothing listens on it now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port
