"""GeneratedSite: a big, fast, computed website on 127.0.0.1 for crawl and link-check tests.

The site and a companion "external" server (another port, so another
host:port) run on a private event loop in a background thread, so both sync
tests and subprocess crawlers (the kill test) can use them. Pages are computed
from their number (rules in :mod:`servers.site_pages`); only pages changed
with :meth:`GeneratedSite.change` are remembered, so 200,000 pages cost no
memory. What a correct crawl or link check finds comes from
:meth:`~GeneratedSite.expected_crawl` and :meth:`~GeneratedSite.expected_links`
(:mod:`servers.site_manifest`).

Site routes: ``/p/{i}.html`` (200, any query), ``/r/{i}`` (301),
``/missing/...`` (404), ``/private/{i}.html`` (200, disallowed by robots.txt),
``/static/app.css`` and ``/static/logo.png`` (200), ``/robots.txt``,
``/sitemap.xml`` (and ``/sitemap-{k}.xml`` above 1,000 pages); anything else 404.
External routes: ``/ok`` 200, ``/gone`` 404, ``/bot`` 403 (a bot-challenge
page), ``/slow-down`` 429 with ``Retry-After: 0``, ``/head-refused`` (405 to
HEAD when ``head_405``, else 200; 200 to GET), ``/moved`` 301 to ``/ok``.

Pages carry a strong ETag (``"p{i}-v{version}"``) and a Last-Modified that
moves one hour later per change; private pages and static assets carry
fixed validators (so every 200 of a crawl can be re-validated). If-None-Match
(weak comparison, RFC 9110 §13.1.2) or else If-Modified-Since (§13.1.3) get 304.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from email.utils import formatdate, mktime_tz, parsedate_tz
from types import TracebackType

from .bgloop import BackgroundLoop
from .site_http import HttpCore, Request, Response
from .site_manifest import LinkManifest, SiteShape, crawl_manifest, link_manifest
from .site_pages import (
    STATIC,
    redirect_target,
    render_page,
    render_private,
    robots_txt,
    route,
    sitemap_children,
    sitemap_index,
    sitemap_range,
    sitemap_urlset,
)

HTML = ("Content-Type", "text/html; charset=utf-8")
TEXT = ("Content-Type", "text/plain; charset=utf-8")
XML = ("Content-Type", "application/xml")
_NOT_FOUND = Response(404, [TEXT], b"not found\n")
_BOT_PAGE = (
    b"<!DOCTYPE html><html><head><title>Just a moment...</title></head>"
    b"<body><noscript>Enable JavaScript and cookies to continue</noscript>"
    b'<div id="challenge-platform">Checking if the site connection is secure</div></body></html>\n'
)
_HOUR = 3600


class GeneratedSite:
    """A generated site of *pages* pages plus an external companion server.

    ``crawl_delay`` adds ``Crawl-delay: N`` to robots.txt; ``head_405`` makes
    the external ``/head-refused`` answer HEAD with 405 (GET is always 200).
    Use as a context manager or call :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self, pages: int = 5000, *, crawl_delay: float | None = None, head_405: bool = True
    ) -> None:
        if pages < 1:
            raise ValueError("a site needs at least one page")
        self.pages = pages
        self.crawl_delay = crawl_delay
        self.head_405 = head_405
        self._lock = threading.Lock()
        self._versions: dict[int, int] = {}
        self._hits: Counter[tuple[str, str]] = Counter()
        self._external_hits: Counter[tuple[str, str]] = Counter()
        self._conditional = 0
        self._not_modified = 0
        # Last-Modified of version 0 a month ago, so later versions stay in the past.
        self._born = int(time.time()) - 30 * 24 * _HOUR
        self._site = HttpCore(self._handle)
        self._external = HttpCore(self._handle_external)
        self._bg: BackgroundLoop | None = None

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> GeneratedSite:
        """Start both servers on a background loop; returns self."""
        if self._bg is None:
            self._bg = BackgroundLoop()
            self._bg.run(self._site.start())
            self._bg.run(self._external.start())
        return self

    def stop(self) -> None:
        """Stop both servers; re-raise the first handler error, if any."""
        if self._bg is not None:
            self._bg.run(self._site.close())
            self._bg.run(self._external.close())
            self._bg.close()
            self._bg = None
        errors = self._site.errors + self._external.errors
        if errors:
            raise RuntimeError("GeneratedSite handler failed") from errors[0]

    def __enter__(self) -> GeneratedSite:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the site (after start())."""
        if not self._site.port:
            raise RuntimeError("GeneratedSite is not started")
        return self._site.base_url

    @property
    def external_url(self) -> str:
        """``http://127.0.0.1:PORT2`` of the external companion server."""
        if not self._external.port:
            raise RuntimeError("GeneratedSite is not started")
        return self._external.base_url

    def url(self, path: str) -> str:
        """The site's absolute URL of *path* (which starts with ``/``)."""
        return self.base_url + path

    def page_url(self, i: int) -> str:
        """The absolute URL of page *i*."""
        return f"{self.base_url}/p/{i}.html"

    # -- counters --------------------------------------------------------------
    @property
    def hits(self) -> Counter[tuple[str, str]]:
        """A snapshot: requests per (method, request-target with query) on the site."""
        with self._lock:
            return self._hits.copy()

    @property
    def external_hits(self) -> Counter[tuple[str, str]]:
        """A snapshot: requests per (method, request-target) on the external server."""
        with self._lock:
            return self._external_hits.copy()

    @property
    def conditional(self) -> int:
        """Site requests that carried If-None-Match or If-Modified-Since."""
        return self._conditional

    @property
    def connections_opened(self) -> int:
        """Connections the site accepted since it started (keep-alive keeps this low)."""
        return self._site.opened

    @property
    def not_modified(self) -> int:
        """304 answers sent."""
        return self._not_modified

    def reset_counters(self) -> None:
        """Zero every counter (hits, external_hits, conditional, not_modified)."""
        with self._lock:
            self._hits.clear()
            self._external_hits.clear()
            self._conditional = self._not_modified = 0

    # -- content versions --------------------------------------------------------
    def change(self, pages: Iterable[int | str]) -> list[str]:
        """New content for these pages (numbers, paths or URLs); returns their URLs.

        Each gets a new ETag, a Last-Modified one hour later and one more
        paragraph after its links (links and their lines are unchanged).
        """
        numbers = [self._page_number(page) for page in pages]
        with self._lock:
            for n in numbers:
                self._versions[n] = self._versions.get(n, 0) + 1
        return [self.page_url(n) for n in numbers]

    def version(self, i: int) -> int:
        """How many times page *i* was changed."""
        return self._versions.get(i, 0)

    def etag(self, i: int) -> str:
        """Page *i*'s current ETag (with its quotes)."""
        return f'"p{i}-v{self.version(i)}"'

    def last_modified(self, i: int) -> str:
        """Page *i*'s current Last-Modified, as an HTTP-date."""
        return formatdate(self._born + self.version(i) * _HOUR, usegmt=True)

    def _page_number(self, page: int | str) -> int:
        if isinstance(page, int):
            kind, n = ("page", page) if 0 <= page < self.pages else ("none", 0)
        else:
            path = page.removeprefix(self.base_url) if "://" in page else page
            kind, n = route(path, self.pages)
        if kind != "page":
            raise ValueError(f"not a page of this site: {page!r}")
        return n

    # -- manifests ---------------------------------------------------------------
    def shape(self) -> SiteShape:
        """Page count and base URLs, as the manifest functions take them."""
        return SiteShape(self.pages, self.base_url, self.external_url)

    def expected_crawl(
        self,
        max_depth: int = 10,
        *,
        exclude: str | None = r"[?&]sort=",
        robots: bool = True,
        assets: bool = False,
    ) -> dict[str, int]:
        """Absolute URL -> status for every URL a same-host crawl from /p/0.html fetches.

        By default only ``<a href>`` links are followed, as runner.crawl does
        (assets are not pages); ``assets=True`` also fetches page 0's
        img/link/script targets.
        Rules in :mod:`servers.site_manifest`.
        """
        return crawl_manifest(
            self.shape(), max_depth, exclude=exclude, robots=robots, assets=assets
        )

    def expected_links(self, *, exclude: str | None = r"[?&]sort=") -> LinkManifest:
        """The verdict of every link occurrence in a whole-site link check."""
        return link_manifest(self.shape(), exclude=exclude)

    # -- handlers (on the background loop) -----------------------------------------
    def _handle(self, request: Request) -> Response:
        headers = request.headers
        conditional = "if-none-match" in headers or "if-modified-since" in headers
        with self._lock:
            self._hits[request.method, request.target] += 1
            if conditional:
                self._conditional += 1
        if request.method not in ("GET", "HEAD"):
            return Response(405, [("Allow", "GET, HEAD"), TEXT], b"method not allowed\n")
        path = request.target.partition("?")[0]
        kind, n = route(path, self.pages)
        if kind == "page":
            version = self._versions.get(n, 0)
            return self._cacheable(
                headers,
                f'"p{n}-v{version}"',
                self._born + version * _HOUR,
                HTML,
                lambda: render_page(n, version, self.pages, self.external_url),
            )
        if kind == "redirect":
            return Response(301, [("Location", redirect_target(n, self.pages)), TEXT], b"moved\n")
        if kind == "private":
            return self._cacheable(
                headers, f'"private{n}"', self._born, HTML, lambda: render_private(n)
            )
        if kind == "static":
            _status, content_type, body = STATIC[path]
            etag = f'"static-{path.rsplit("/", 1)[1]}"'
            return self._cacheable(
                headers, etag, self._born, ("Content-Type", content_type), lambda: body
            )
        return self._special(path)

    def _cacheable(
        self,
        headers: dict[str, str],
        etag: str,
        modified: int,
        content_type: tuple[str, str],
        body: Callable[[], bytes],
    ) -> Response:
        """304 when the request's validators match, else 200 with *body()*; both
        carry ETag and Last-Modified."""
        validators = [("ETag", etag), ("Last-Modified", formatdate(modified, usegmt=True))]
        if _not_modified(headers, etag, modified):
            with self._lock:
                self._not_modified += 1
            return Response(304, validators)
        return Response(200, [content_type, *validators], body())

    def _special(self, path: str) -> Response:
        if path == "/robots.txt":
            return Response(200, [TEXT], robots_txt(self.base_url, self.crawl_delay))
        children = sitemap_children(self.pages)
        if path == "/sitemap.xml":
            if children:
                return Response(200, [XML], sitemap_index(self.base_url, children))
            return Response(200, [XML], sitemap_urlset(self.base_url, range(self.pages)))
        if path.startswith("/sitemap-") and path.endswith(".xml"):
            number = path[9:-4]
            if number.isascii() and number.isdigit() and 1 <= int(number) <= children:
                numbers = sitemap_range(self.pages, int(number))
                return Response(200, [XML], sitemap_urlset(self.base_url, numbers))
        return _NOT_FOUND

    def _handle_external(self, request: Request) -> Response:
        with self._lock:
            self._external_hits[request.method, request.target] += 1
        path = request.target.partition("?")[0]
        if path == "/ok":
            return Response(200, [HTML], b"<!DOCTYPE html><title>OK</title><p>ok</p>\n")
        if path == "/bot":
            # What bot walls send (Cloudflare's managed challenge marks itself this way).
            return Response(403, [HTML, ("cf-mitigated", "challenge")], _BOT_PAGE)
        if path == "/slow-down":
            return Response(429, [TEXT, ("Retry-After", "0")], b"too many requests\n")
        if path == "/head-refused":
            if request.method == "HEAD" and self.head_405:
                return Response(405, [("Allow", "GET"), TEXT], b"use GET\n")
            return Response(200, [HTML], b"<!DOCTYPE html><title>GET only</title><p>ok</p>\n")
        if path == "/moved":
            return Response(301, [("Location", "/ok"), TEXT], b"moved\n")
        return _NOT_FOUND


def _not_modified(headers: dict[str, str], etag: str, modified: int) -> bool:
    """RFC 9110 §13.2.2 steps 3-4 for GET/HEAD: If-None-Match wins over If-Modified-Since."""
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        if if_none_match.strip() == "*":
            return True
        return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))
    if_modified_since = headers.get("if-modified-since")
    if if_modified_since is None:
        return False
    parsed = parsedate_tz(if_modified_since)
    if parsed is None:
        return False  # an invalid date is ignored (§13.1.3)
    return modified <= mktime_tz(parsed)
