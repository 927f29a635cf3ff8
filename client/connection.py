"""``Connection``: the pool's view of one socket, with an explicit state.

One object per socket for its whole life (not one per checkout, as in
aiohttp), so checking a pooled connection out allocates nothing.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import asyncio

    from .protocol import ResponseProtocol


class ConnectionKey(NamedTuple):
    """What makes two connections interchangeable.

    Connections with different TLS settings, SNI names or proxies are never
    shared (security.md TLS-02).
    """

    host: str
    port: int | None
    is_ssl: bool
    ssl: Any
    proxy: Any
    proxy_auth: Any
    proxy_headers_hash: int | None
    server_hostname: str | None = None
    # Ours: set for a CONNECT tunnel through ``proxy``, to the proxy headers it carries.
    connect_headers: tuple[tuple[str, str], ...] | None = None


class ConnState(enum.Enum):
    ACTIVE = "active"  # checked out, carrying an exchange
    IDLE = "idle"  # in the pool, reusable
    CLOSED = "closed"


class Releaser:
    """What a connection reports back to (the connector)."""

    def _release(self, conn: Connection, reusable: bool) -> None:  # pragma: no cover
        """An active connection is done: pool it (``reusable``) or free its slot."""
        raise NotImplementedError

    def _forget(self, conn: Connection) -> None:  # pragma: no cover
        """An idle connection closed: drop it from the pool."""
        raise NotImplementedError


class Connection:
    """A socket checked out from, or resting in, a connector's pool."""

    __slots__ = ("_owner", "idle_since", "key", "protocol", "requests", "state")

    def __init__(self, owner: Releaser, key: ConnectionKey, protocol: ResponseProtocol) -> None:
        self._owner = owner
        self.key = key
        self.protocol = protocol
        self.state = ConnState.ACTIVE
        self.idle_since = 0.0
        self.requests = 0
        protocol.on_complete = self._on_complete
        protocol.on_lost = self._on_lost

    def __repr__(self) -> str:
        return (
            f"<Connection {self.key.host}:{self.key.port} {self.state.value} "
            f"requests={self.requests}>"
        )

    @property
    def transport(self) -> asyncio.Transport | None:
        return self.protocol.transport

    @property
    def closed(self) -> bool:
        return self.state is ConnState.CLOSED

    @property
    def reused(self) -> bool:
        """True when this connection already carried an earlier exchange."""
        return self.requests > 1

    def is_reusable(self) -> bool:
        return self.state is not ConnState.CLOSED and self.protocol.reusable

    def has_expired(self, now: float, keepalive_timeout: float | None) -> bool:
        return keepalive_timeout is not None and now - self.idle_since > keepalive_timeout

    def release(self) -> None:
        """Give the connection back: pooled if its exchange ended cleanly, else closed."""
        if self.state is ConnState.ACTIVE:
            if self.protocol.reusable:
                self._owner._release(self, True)
            else:
                self.close()

    def close(self) -> None:
        """Close the socket; an unfinished exchange is abandoned."""
        if self.state is ConnState.CLOSED:
            return
        was_active = self.state is ConnState.ACTIVE
        self.state = ConnState.CLOSED
        self.protocol.abandon()
        self._owner._release(self, False) if was_active else self._owner._forget(self)

    # -- protocol callbacks --------------------------------------------------

    def _on_complete(self, reusable: bool) -> None:
        if self.state is ConnState.ACTIVE:
            if reusable:
                self._owner._release(self, True)
            else:
                self.close()

    def _on_lost(self) -> None:
        if self.state is ConnState.ACTIVE:
            self.state = ConnState.CLOSED
            self._owner._release(self, False)
        elif self.state is ConnState.IDLE:
            self.state = ConnState.CLOSED
            self._owner._forget(self)
