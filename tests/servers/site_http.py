"""The HTTP/1.1 core under :class:`servers.site.GeneratedSite`: small and fast.

One asyncio protocol per connection parses requests with httptools, calls a
synchronous *handler* and writes the answer at once, so keep-alive and
pipelined requests are answered in order. HEAD gets the GET head with no body;
204/304 never carry a body (RFC 9110 §6.4.1). Request bodies are ignored.
A handler that raises is recorded in :attr:`HttpCore.errors` (the site's
``stop()`` re-raises it) and the client gets a 500, so a bug in the fixture
fails the test instead of looking like a flaky network.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from functools import lru_cache
from http import HTTPStatus

import httptools

from .endpoint import LOOPBACK

_BODYLESS = frozenset({204, 304})
_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
_MAX_TARGET = 16 * 1024  # a test server, not a hostile-input one: just keep memory bounded


@dataclass(slots=True)
class Request:
    """One parsed request: method, raw request-target and lower-cased header names."""

    method: str
    target: str
    headers: dict[str, str]


@dataclass(slots=True)
class Response:
    """What a handler answers; the core adds Date, Content-Length and Connection."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""


Handler = Callable[[Request], Response]


@lru_cache(maxsize=4)
def _http_date(second: int) -> str:
    return formatdate(second, usegmt=True)


@lru_cache(maxsize=64)
def _status_line(status: int) -> str:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    return f"HTTP/1.1 {status} {reason}\r\n"


def render(request: Request, response: Response, keep_alive: bool) -> bytes:
    """The bytes of *response* to *request* (no body for HEAD, 204 and 304)."""
    status = response.status
    parts = [_status_line(status), "Date: ", _http_date(int(time.time())), "\r\n"]
    for name, value in response.headers:
        parts += (name, ": ", value, "\r\n")
    if status not in _BODYLESS:
        parts += ("Content-Length: ", str(len(response.body)), "\r\n")
    if not keep_alive:
        parts.append("Connection: close\r\n")
    parts.append("\r\n")
    head = "".join(parts).encode("latin-1")
    if request.method == "HEAD" or status in _BODYLESS:
        return head
    return head + response.body


class _Connection(asyncio.Protocol):
    """One client connection: httptools in, handler, bytes out."""

    def __init__(self, core: HttpCore) -> None:
        self._core = core
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._headers: dict[str, str] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._core.connections.add(transport)
        self._core.opened += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._core.connections.discard(self._transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._close()  # no upgrades here
        except httptools.HttpParserError:
            self._write(_BAD_REQUEST)
            self._close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > _MAX_TARGET:
            raise ValueError("request-target too long")  # httptools turns it into a parser error

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_message_complete(self) -> None:
        parser = self._parser
        method = parser.get_method().decode("latin-1")
        request = Request(method, self._url.decode("latin-1"), self._headers)
        keep_alive = parser.should_keep_alive()
        try:
            response = self._core.handler(request)
        except Exception as exc:  # recorded and re-raised by the site's stop()
            self._core.errors.append(exc)
            response = Response(500, [("Content-Type", "text/plain")], b"fixture error\n")
        self._write(render(request, response, keep_alive))
        if not keep_alive:
            self._close()

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()  # flushes what was written first


class HttpCore:
    """A listening socket on 127.0.0.1 (port 0) answering with *handler*.

    ``await start()`` and ``await close()`` run in the loop that serves it.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.errors: list[Exception] = []
        self.connections: set[asyncio.Transport] = set()
        self.opened = 0  # connections accepted, ever
        self.port = 0
        self._server: asyncio.Server | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://{LOOPBACK}:{self.port}"

    async def start(self) -> None:
        """Listen on 127.0.0.1, port 0."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), LOOPBACK, 0, backlog=512)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and drop every open connection."""
        if self._server is None:
            return
        self._server.close()
        for transport in list(self.connections):
            transport.abort()
        await self._server.wait_closed()
        self._server = None
