"""A small local website for ``fetchrun demo`` and for trying job files by hand.

``start_demo_site()`` serves it from the caller's event loop on 127.0.0.1::

    /                   index: links to every page below
    /pages/1 .. /pages/20  HTML (~2 KB, ~20 KB and ~200 KB) with priced items
    /api/items?page=N   JSON listing (``meta.total`` items, 20 a page)
    /moved              301 to /pages/1
    /missing            404
    /slow               200 after ``slow_delay`` seconds
    /flaky              503 + Retry-After twice, then 200 (per site instance)
    /gzip               gzip-encoded HTML when the client accepts gzip
    /robots.txt, /sitemap.xml

It only answers; it never sends traffic anywhere. Requests are parsed by
httptools; heads, bodies, connections and idle time are capped so a
misbehaving client cannot make it grow without bound.
``python -m runner.demo_site`` serves it until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from functools import lru_cache
from http import HTTPStatus
from types import TracebackType

import httptools

from .demo_content import (
    _MOVED,
    _SLOW,
    _api,
    _error,
    _gzip,
    _html,
    _index,
    _page,
    _Response,
    _robots,
    _sitemap,
)

# Re-exported: tests and other callers import these public names from here.
from .demo_content import API_PER_PAGE as API_PER_PAGE
from .demo_content import API_TOTAL as API_TOTAL
from .demo_content import PAGE_COUNT as PAGE_COUNT
from .demo_content import page_items as page_items

_MAX_HEAD = 64 * 1024  # request line + headers (bytes)
_MAX_BODY = 1024 * 1024  # request bodies are read and dropped; past this, 413
_MAX_CONNECTIONS = 256
_IDLE_TIMEOUT = 15.0  # seconds without a byte from an open connection
_WRITE_TIMEOUT = 30.0  # seconds for a client to take one response
_READ_SIZE = 64 * 1024

_UNKNOWN = "<unknown>"  # the stats key of every path the site does not serve


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    target: bytes
    accept_encoding: str
    keep_alive: bool
    http10: bool


_PAGE_PATH = re.compile(r"/pages/([1-9][0-9]?)")


def _page_number(path: str) -> int | None:
    match = _PAGE_PATH.fullmatch(path)
    n = int(match[1]) if match else 0
    return n if 1 <= n <= PAGE_COUNT else None


@lru_cache(maxsize=1)
def _http_date(second: int) -> str:
    return formatdate(second, usegmt=True)


# ---------------------------------------------------------------- protocol


class _HeadTooLarge(Exception):
    """Raised inside a parser callback: the request head is over _MAX_HEAD."""


class _RequestReader:
    """httptools callbacks: turns the bytes of one connection into ``_Request`` values."""

    def __init__(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self.done: list[_Request] = []
        self._url: list[bytes] = []
        self._accept: list[str] = []
        self._in_head = False
        self._head_bytes = self._head_size = self._body_bytes = 0
        self._keep_alive = True
        self.upgrade = False  # the parser stopped at an Upgrade request: close after it

    def feed(self, data: bytes) -> _Response | None:
        """Parse *data*; the error response to send (then close), if any."""
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.upgrade = True  # RFC 9110 §7.8: a server may ignore Upgrade
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _HeadTooLarge):
                return _error(431)
            raise
        except httptools.HttpParserError:
            return _error(400)
        if self._in_head:
            # A backstop for what httptools buffers before on_header: it counts
            # whole reads, so it can only trip once the head is over _MAX_HEAD.
            self._head_bytes += len(data)
            if self._head_bytes > _MAX_HEAD + _READ_SIZE:
                return _error(431)
        if self._body_bytes > _MAX_BODY:
            return _error(413)
        return None

    def on_message_begin(self) -> None:
        self._url.clear()
        self._accept.clear()
        self._in_head, self._head_bytes, self._head_size, self._body_bytes = True, 0, 0, 0

    def _grow_head(self, size: int) -> None:
        self._head_size += size
        if self._head_size > _MAX_HEAD:
            raise _HeadTooLarge

    def on_url(self, url: bytes) -> None:
        self._grow_head(len(url))
        self._url.append(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._grow_head(len(name) + len(value) + 4)  # ": " and CRLF
        if name.lower() == b"accept-encoding":
            self._accept.append(value.decode("latin-1"))

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._keep_alive = self._parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)

    def on_message_complete(self) -> None:
        method = self._parser.get_method().decode("latin-1")
        http10 = self._parser.get_http_version() == "1.0"
        keep = self._keep_alive and self._body_bytes <= _MAX_BODY
        accept = ", ".join(self._accept)
        self.done.append(_Request(method, b"".join(self._url), accept, keep, http10))


def _head(resp: _Response, keep_alive: bool, http10: bool) -> bytes:
    lines = [
        f"HTTP/1.1 {resp.status} {HTTPStatus(resp.status).phrase}",
        f"Date: {_http_date(int(time.time()))}",
        "Server: fetchrun-demo",
        f"Content-Type: {resp.content_type}",
        f"Content-Length: {len(resp.body)}",
    ]
    lines.extend(f"{name}: {value}" for name, value in resp.headers)
    if not keep_alive:
        lines.append("Connection: close")
    elif http10:
        lines.append("Connection: keep-alive")  # RFC 9112 §9.3: 1.0 needs it spelled out
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1")


# ---------------------------------------------------------------- the site


class DemoSite:
    """A running demo site; build it with :func:`start_demo_site`."""

    base_url: str
    stats: dict[str, int]

    def __init__(self, *, slow_delay: float, retry_after: int) -> None:
        self.base_url = ""
        self.stats = {}  # requests per served path; the rest under "<unknown>"
        self._slow_delay = slow_delay
        self._retry_after = retry_after
        self._flaky_calls = 0
        self._server: asyncio.Server | None = None
        self._conns: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._errors: list[Exception] = []
        self._closed = False

    async def _start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, host, port)
        bound_host, bound_port = self._server.sockets[0].getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self.base_url = f"http://{shown}:{bound_port}"

    async def close(self) -> None:
        """Stop listening and close every connection; idempotent.

        Re-raises the first unexpected error a connection handler hit (a bug here).
        """
        if self._closed:
            return
        self._closed = True
        if self._server is not None:
            self._server.close()
        conns = list(self._conns.items())
        for task, _ in conns:
            task.cancel()
        await asyncio.gather(*(task for task, _ in conns), return_exceptions=True)
        for _, writer in conns:  # wait until each socket is really closed
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        if self._server is not None:
            await self._server.wait_closed()
        if self._errors:
            raise self._errors[0]

    async def __aenter__(self) -> DemoSite:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if self._closed or task is None or len(self._conns) >= _MAX_CONNECTIONS:
            writer.close()
            return
        self._conns[task] = writer
        try:
            await self._converse(reader, writer)
        except OSError:
            pass  # peer gone, idle too long or not reading (TimeoutError is an OSError)
        except asyncio.CancelledError:
            # Only close() cancels us. End normally: CPython 3.11's start_server
            # done-callback calls task.exception(), which raises on a cancelled task.
            if not self._closed:
                raise
        except Exception as exc:  # a bug: kept for close() to raise where tests look
            self._errors.append(exc)
        finally:
            writer.close()
            # Once cancelled by close(), the task is awaited and the socket closed there.
            if not self._closed:
                del self._conns[task]
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests = _RequestReader()
        while True:
            async with asyncio.timeout(_IDLE_TIMEOUT):
                data = await reader.read(_READ_SIZE)
            if not data:
                return
            failure = requests.feed(data)
            done, requests.done = requests.done, []
            for req in done:  # pipelined requests are answered in order (RFC 9112 §9.3.2)
                keep_alive = req.keep_alive and not requests.upgrade and not self._closed
                resp = await self._answer(req)
                await self._send(writer, resp, keep_alive, req.method == "HEAD", req.http10)
                if not keep_alive:
                    return
            if failure is not None:
                await self._send(writer, failure, keep_alive=False)
                return

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        resp: _Response,
        keep_alive: bool,
        head_only: bool = False,
        http10: bool = False,
    ) -> None:
        writer.write(_head(resp, keep_alive, http10))
        if not head_only:  # RFC 9110 §9.3.2: HEAD gets GET's head, without the content
            writer.write(resp.body)
        async with asyncio.timeout(_WRITE_TIMEOUT):
            await writer.drain()

    async def _answer(self, req: _Request) -> _Response:
        try:
            url = httptools.parse_url(req.target)
        except httptools.HttpParserInvalidURLError:
            self._count(_UNKNOWN)
            return _error(400)
        path = url.path.decode("latin-1") if url.path else "/"
        query = url.query.decode("latin-1") if url.query else ""
        page = _page_number(path)
        known = page is not None or path in _ROUTES
        self._count(path if known else _UNKNOWN)
        if not known:
            return _error(404)
        if req.method not in ("GET", "HEAD"):
            return _error(405, (("Allow", "GET, HEAD"),))
        if page is not None:
            return _page(page)
        if path == "/slow":
            await asyncio.sleep(self._slow_delay)
        return _ROUTES[path](self, req, query)

    def _flaky(self) -> _Response:
        self._flaky_calls += 1
        if self._flaky_calls <= 2:
            return _error(503, (("Retry-After", str(self._retry_after)),))
        return _Response(200, _html("Flaky page", "<p>Third time lucky.</p>"))

    def _count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1


# Each route: (site, request, query) -> response. "/slow" sleeps in _answer first.
_ROUTES: dict[str, Callable[[DemoSite, _Request, str], _Response]] = {
    "/": lambda site, req, query: _index(),
    "/api/items": lambda site, req, query: _api(query),
    "/moved": lambda site, req, query: _MOVED,  # relative Location: RFC 9110 §10.2.2
    "/missing": lambda site, req, query: _error(404),
    "/slow": lambda site, req, query: _SLOW,
    "/flaky": lambda site, req, query: site._flaky(),
    "/gzip": lambda site, req, query: _gzip(req.accept_encoding),
    "/robots.txt": lambda site, req, query: _robots(site.base_url),
    "/sitemap.xml": lambda site, req, query: _sitemap(site.base_url),
}


async def start_demo_site(
    host: str = "127.0.0.1", port: int = 0, *, slow_delay: float = 1.0, retry_after: int = 1
) -> DemoSite:
    """Start serving in the running loop; port 0 picks a free port (see ``base_url``)."""
    site = DemoSite(slow_delay=slow_delay, retry_after=retry_after)
    await site._start(host, port)
    return site


async def _serve_forever(host: str, port: int, slow_delay: float, retry_after: int) -> None:
    async with await start_demo_site(
        host, port, slow_delay=slow_delay, retry_after=retry_after
    ) as site:
        print(f"fetchrun demo site at {site.base_url}  (Ctrl-C to stop)", flush=True)
        print(f"  export DEMO_BASE={site.base_url}", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    """``python -m runner.demo_site [--host H] [--port P]``: serve until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m runner.demo_site", description="Serve the fetchrun demo site."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--slow-delay", type=float, default=1.0, metavar="SECONDS")
    parser.add_argument("--retry-after", type=int, default=1, metavar="SECONDS")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(args.host, args.port, args.slow_delay, args.retry_after))


if __name__ == "__main__":
    main()
