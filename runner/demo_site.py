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
import gzip
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from functools import cache, lru_cache
from html import escape
from http import HTTPStatus
from types import TracebackType
from urllib.parse import parse_qs

import httptools

PAGE_COUNT = 20
API_TOTAL = 200
API_PER_PAGE = 20

_MAX_HEAD = 64 * 1024  # request line + headers (bytes)
_MAX_BODY = 1024 * 1024  # request bodies are read and dropped; past this, 413
_MAX_CONNECTIONS = 256
_IDLE_TIMEOUT = 15.0  # seconds without a byte from an open connection
_WRITE_TIMEOUT = 30.0  # seconds for a client to take one response
_READ_SIZE = 64 * 1024

_HTML = "text/html; charset=utf-8"
_JSON = "application/json; charset=utf-8"
_TEXT = "text/plain; charset=utf-8"
_XML = "application/xml; charset=utf-8"
_UNKNOWN = "<unknown>"  # the stats key of every path the site does not serve


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    body: bytes
    content_type: str = _HTML
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    target: bytes
    accept_encoding: str
    keep_alive: bool
    http10: bool


# ---------------------------------------------------------------- content

_WORDS = (
    "sturdy", "compact", "blue", "oak", "steel", "quiet", "handmade", "classic", "light",
    "water-proof", "folding", "vintage", "modular", "warm", "bright", "portable", "lamp",
    "chair", "kettle", "bag", "clock", "shelf", "mug", "rug", "with", "for", "and", "a",
)  # fmt: skip


def _item_count(n: int) -> int:
    # Three size classes so the demo exercises small, medium and large bodies.
    return 860 if n % 5 == 0 else 85 if n % 3 == 0 else 7


@cache
def _first_item(n: int) -> int:
    return 1 if n == 1 else _first_item(n - 1) + _item_count(n - 1)


def _price(k: int) -> str:
    cents = k * 37 % 9000 + 100
    return f"{cents // 100}.{cents % 100:02d}"


def _sentence(k: int) -> str:
    return " ".join(_WORDS[(k * 7 + j * 11) % len(_WORDS)] for j in range(24)).capitalize()


def page_items(n: int) -> list[tuple[str, str]]:
    """``(name, price)`` of every item on ``/pages/n``, in page order (for scraping tests)."""
    first = _first_item(n)
    return [(f"Name {k}", _price(k)) for k in range(first, first + _item_count(n))]


def _html(title: str, body: str, head: str = "") -> bytes:
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title>{head}</head>\n<body>\n{body}\n</body></html>\n"
    ).encode()


@cache
def _page(n: int) -> _Response:
    nav = ['<a href="/">Home</a>']
    if n > 1:
        nav.append(f'<a class="prev" href="/pages/{n - 1}">Previous</a>')
    if n < PAGE_COUNT:
        nav.append(f'<a class="next" href="/pages/{n + 1}">Next</a>')
    first = _first_item(n)
    items = "\n".join(
        f'<div class="item"><h2>Name {k}</h2><span class="price">{_price(k)}</span>'
        f"<p>{_sentence(k)}.</p></div>"
        for k in range(first, first + _item_count(n))
    )
    related = n * 7 % PAGE_COUNT + 1
    body = (
        f"<nav>{' '.join(nav)}</nav>\n<h1>Catalogue page {n}</h1>\n"
        f'<p>Related: <a href="/pages/{related}">page {related}</a>, '
        f'<a href="/api/items?page=1">the items API</a>.</p>\n{items}'
    )
    canonical = f'<link rel="canonical" href="/pages/{n}">'
    return _Response(200, _html(f"Catalogue page {n} of {PAGE_COUNT}", body, canonical))


_INDEX_LINKS = (
    ("/api/items?page=1", "Items API"), ("/moved", "A moved page"),
    ("/missing", "A missing page"), ("/slow", "A slow page"), ("/flaky", "A flaky page"),
    ("/gzip", "A compressed page"), ("/robots.txt", "robots.txt"), ("/sitemap.xml", "Sitemap"),
)  # fmt: skip


@cache
def _index() -> _Response:
    pages = [(f"/pages/{n}", f"Page {n}") for n in range(1, PAGE_COUNT + 1)]
    items = "\n".join(f'<li><a href="{p}">{label}</a></li>' for p, label in (*pages, *_INDEX_LINKS))
    return _Response(
        200, _html("fetchrun demo site", f"<h1>fetchrun demo site</h1>\n<ul>\n{items}\n</ul>")
    )


def _api(query: str) -> _Response:
    values = parse_qs(query).get("page", ["1"])
    if not re.fullmatch(r"[0-9]{1,6}", values[-1]):  # ASCII: "²".isdigit() is True
        return _json(400, {"error": "page must be a positive integer"})
    page, pages = int(values[-1]), -(-API_TOTAL // API_PER_PAGE)
    if not 1 <= page <= pages:
        return _json(404, {"error": f"no page {page}; pages are 1..{pages}"})
    first = (page - 1) * API_PER_PAGE + 1
    last = min(first + API_PER_PAGE, API_TOTAL + 1)
    data = {
        "items": [{"id": k, "name": f"Name {k}", "price": _price(k)} for k in range(first, last)],
        "meta": {"page": page, "per_page": API_PER_PAGE, "total": API_TOTAL, "pages": pages},
        "links": {"next": f"/api/items?page={page + 1}" if page < pages else None},
    }
    return _json(200, data)


def _json(status: int, data: object) -> _Response:
    return _Response(status, json.dumps(data, separators=(",", ":")).encode(), _JSON)


def _error(status: int, extra: tuple[tuple[str, str], ...] = ()) -> _Response:
    phrase = f"{status} {HTTPStatus(status).phrase}"
    return _Response(status, _html(phrase, f"<h1>{phrase}</h1>"), headers=extra)


@cache
def _gzip_plain() -> bytes:
    lines = "\n".join(f"<p>Line {i}: {_sentence(i)}.</p>" for i in range(1, 201))
    return _html("Compressed page", f"<h1>Compressed page</h1>\n{lines}")


@cache
def _gzip_body() -> bytes:
    return gzip.compress(_gzip_plain(), mtime=0)  # mtime=0: the same bytes every run


def _gzip(accept_encoding: str) -> _Response:
    vary = ("Vary", "Accept-Encoding")
    if _accepts_gzip(accept_encoding):
        return _Response(200, _gzip_body(), headers=(("Content-Encoding", "gzip"), vary))
    return _Response(200, _gzip_plain(), headers=(vary,))


@cache
def _robots(base_url: str) -> _Response:
    text = f"User-agent: *\nDisallow: /private/\nSitemap: {base_url}/sitemap.xml\n"
    return _Response(200, text.encode(), _TEXT)


@cache
def _sitemap(base_url: str) -> _Response:
    urls = "".join(
        f"<url><loc>{base_url}/pages/{n}</loc></url>\n" for n in range(1, PAGE_COUNT + 1)
    )
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n{urls}</urlset>\n'
    )
    return _Response(200, xml.encode(), _XML)


_MOVED = _Response(
    301, _html("Moved", '<a href="/pages/1">Moved</a>'), headers=(("Location", "/pages/1"),)
)
_SLOW = _Response(200, _html("Slow page", "<p>Sorry for the wait.</p>"))
_CODING = re.compile(r"\s*([^;\s]+)\s*(?:;\s*q\s*=\s*([0-9.]+))?")


def _accepts_gzip(header: str) -> bool:
    """RFC 9110 §12.5.3: gzip's own q-value if listed, else ``*``'s, else not accepted."""
    weights: dict[str, float] = {}
    for part in header.lower().split(","):
        match = _CODING.match(part)
        if match:
            with contextlib.suppress(ValueError):
                weights[match[1]] = float(match[2]) if match[2] else 1.0
    weight = weights.get("gzip", weights.get("x-gzip", weights.get("*", 0.0)))
    return weight > 0


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
