"""CountingServer: a small, fast HTTP/1.1 keep-alive server that counts for pool tests.

It answers every request with ``200`` and :attr:`CountingServer.body`. The query
string can change one response:

* ``?delay=0.1``      answer after 0.1 s (the request stays "in flight" meanwhile)
* ``?status=503``     another status code (204/304 get no body)
* ``?size=N``         a body of N ``x`` bytes instead of ``body``
* ``?close=1``        answer with ``Connection: close`` and close the connection
* ``?header=K:V``     an extra response header (repeatable)

Requests are parsed with ``httptools``; responses on one connection go out in
request order (pipelining is honoured). Counts are kept globally (``stats``) and
per ``Host`` header (``by_host``); a connection belongs to the Host of its first
request.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qsl

import httptools

from .endpoint import LOOPBACK, make_url

_NO_BODY_STATUSES = frozenset({204, 304})
_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


@dataclass(slots=True)
class Counts:
    """Counters for the whole server or one Host."""

    connections: int = 0  # opened, ever
    open: int = 0  # open now
    max_open: int = 0
    requests: int = 0  # completed requests received
    in_flight: int = 0  # received, not yet answered
    max_in_flight: int = 0

    def opened(self) -> None:
        """Count a connection opening."""
        self.connections += 1
        self.open += 1
        self.max_open = max(self.max_open, self.open)

    def started(self) -> None:
        """Count a request received (and now in flight)."""
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)


@dataclass(slots=True)
class RequestRecord:
    """One request as the server saw it."""

    method: str
    target: str  # the raw request-target, e.g. "/a?b=1"
    host: str
    headers: list[tuple[str, str]]
    body: bytes
    connection: int  # index into CountingServer.requests_per_connection
    keep_alive: bool


@dataclass(slots=True)
class _Reply:
    record: RequestRecord
    status: int
    delay: float
    size: int | None
    close: bool
    extra: list[tuple[str, str]] = field(default_factory=list)


def _plan_reply(record: RequestRecord) -> _Reply:
    url = httptools.parse_url(record.target.encode("latin-1"))
    reply = _Reply(record, 200, 0.0, None, not record.keep_alive)
    for key, value in parse_qsl((url.query or b"").decode("latin-1")):
        if key == "delay":
            reply.delay = float(value)
        elif key == "status":
            reply.status = int(value)
        elif key == "size":
            reply.size = int(value)
        elif key == "close":
            reply.close = reply.close or value not in ("", "0")
        elif key == "header":
            name, _, val = value.partition(":")
            reply.extra.append((name.strip(), val.strip()))
    return reply


class _CountingProtocol(asyncio.Protocol):
    """One connection: parse with httptools, answer in order, keep counts."""

    def __init__(self, server: CountingServer) -> None:
        self._server = server
        self._index = -1  # set when the connection (and any TLS handshake) is made
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._host_counts: Counts | None = None
        self._pending: deque[_Reply] = deque()
        self._busy = False
        self._timer: asyncio.TimerHandle | None = None
        self._url = bytearray()
        self._headers: list[tuple[str, str]] = []
        self._body = bytearray()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # -- asyncio.Protocol ------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._index = len(self._server.requests_per_connection)
        self._server.requests_per_connection.append(0)
        self._server.stats.opened()
        self._server._conns.add(self)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._abort()
        except httptools.HttpParserError:
            self._write(_BAD_REQUEST)
            self._abort(graceful=True)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        unanswered = len(self._pending) + self._busy
        self._pending.clear()
        for counts in self._all_counts():
            counts.open -= 1
            counts.in_flight -= unanswered
        self._server._conns.discard(self)
        if not self.closed.done():
            self.closed.set_result(None)

    # -- httptools callbacks ---------------------------------------------------
    def on_message_begin(self) -> None:
        self._url.clear()
        self._headers = []
        self._body.clear()

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        host = next((v for k, v in self._headers if k.lower() == "host"), "")
        record = RequestRecord(
            method=self._parser.get_method().decode("latin-1"),
            target=self._url.decode("latin-1"),
            host=host,
            headers=self._headers,
            body=bytes(self._body),
            connection=self._index,
            keep_alive=self._parser.should_keep_alive(),
        )
        self._count_request(record)
        self._pending.append(_plan_reply(record))
        self._next()

    # -- replies ---------------------------------------------------------------
    def _count_request(self, record: RequestRecord) -> None:
        server = self._server
        server.requests.append(record)
        server.requests_per_connection[self._index] += 1
        if self._host_counts is None:
            self._host_counts = server.by_host.setdefault(record.host, Counts())
            self._host_counts.opened()
        for counts in self._all_counts():
            counts.started()

    def _next(self) -> None:
        if self._busy or not self._pending:
            return
        reply = self._pending.popleft()
        self._busy = True
        if reply.delay > 0:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(reply.delay, self._answer, reply)
        else:
            self._answer(reply)

    def _answer(self, reply: _Reply) -> None:
        self._timer = None
        self._busy = False
        for counts in self._all_counts():
            counts.in_flight -= 1
        self._write(self._server._render(reply))
        if reply.close:
            self._abort(graceful=True)
        else:
            self._next()

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _abort(self, *, graceful: bool = False) -> None:
        if self._transport is None:
            return
        if graceful:
            self._transport.close()  # flushes the reply first
        else:
            self._transport.abort()

    def _all_counts(self) -> list[Counts]:
        if self._host_counts is None:
            return [self._server.stats]
        return [self._server.stats, self._host_counts]


class CountingServer:
    """HTTP/1.1 keep-alive server on 127.0.0.1 that counts connections and requests.

    Create it inside the loop that will serve it, ``await start()``, and
    ``await close()`` at the end (the ``counting_server`` fixture does both).
    """

    def __init__(
        self,
        *,
        body: bytes = b"ok",
        headers: Sequence[tuple[str, str]] = (),
        ssl: ssl.SSLContext | None = None,
    ) -> None:
        self.body = body
        self.headers: list[tuple[str, str]] = list(headers)
        self.stats = Counts()
        self.by_host: dict[str, Counts] = {}
        self.requests: list[RequestRecord] = []
        self.requests_per_connection: list[int] = []
        self._ssl = ssl
        self._server: asyncio.Server | None = None
        self._conns: set[_CountingProtocol] = set()
        self.host = LOOPBACK
        self.port = 0

    @property
    def scheme(self) -> str:
        return "https" if self._ssl is not None else "http"

    @property
    def base(self) -> str:
        """``scheme://127.0.0.1:port``."""
        return f"{self.scheme}://{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        """The absolute URL of *path* on this server."""
        return make_url(self.scheme, self.host, self.port, path)

    async def start(self) -> None:
        """Listen on 127.0.0.1, port 0."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _CountingProtocol(self), LOOPBACK, 0, ssl=self._ssl
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and close every connection (abortively)."""
        if self._server is None:
            return
        self._server.close()
        conns = list(self._conns)
        for conn in conns:
            conn._abort()
        await asyncio.gather(*(conn.closed for conn in conns))
        await self._server.wait_closed()
        self._server = None

    def _render(self, reply: _Reply) -> bytes:
        """The response bytes for one planned reply."""
        status = reply.status
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        lines = [f"HTTP/1.1 {status} {reason}"]
        body = b"x" * reply.size if reply.size is not None else self.body
        bodyless = reply.record.method == "HEAD" or status in _NO_BODY_STATUSES
        payload = b"" if bodyless else body
        if status not in _NO_BODY_STATUSES:
            lines.append(f"Content-Length: {len(body)}")
        lines.extend(f"{k}: {v}" for k, v in (*self.headers, *reply.extra))
        if reply.close:
            lines.append("Connection: close")
        lines.append("\r\n")
        return "\r\n".join(lines).encode("latin-1") + payload
