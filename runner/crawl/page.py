"""One attempt at one frontier entry: robots check, conditional GET or HEAD, links out.

The engine calls ``EntryFetcher.__call__`` like ``runner.fetch.fetch_attempt``
(same signature, same ``Attempt`` result); what the crawler needs beyond the
record (links, fragment ids, validators, a redirect's target) is left in a
``PageInfo`` keyed by the spec's ``index`` and taken by the crawler when the
outcome arrives.

* Pages are fetched with GET; HTML (and sitemap XML) bodies are buffered up to
  ``max_body`` and parsed once for links and, when asked, fragment ids.
* A page with stored validators and a stored body is asked for with
  ``If-None-Match`` / ``If-Modified-Since``; a 304 takes links, size and hash
  from the stored body (``unchanged``).
* Link-check entries ("link") are asked with HEAD first; a refused or failed
  HEAD (405, 501, any status not accepted) is asked again with GET, since
  many servers answer HEAD wrongly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

import client
from jobs import RequestSpec

from ..fetch import (
    Attempt,
    FetchSettings,
    PhaseClock,
    classify,
    read_body,
    request_kwargs,
    take_head,
)
from ..links import Link, SitemapError, extract_html, extract_sitemap, html_ids
from ..outcome import ErrorInfo, Timings
from .state import Validators

if TYPE_CHECKING:
    from ..sinks.bodies import BodySink, BodyStore
    from .robots import RobotsPolicy

# Statuses after which a HEAD is not worth repeating as GET: the answer would be the same.
_HEAD_FINAL_ERRORS = frozenset({"dns", "connect", "tls", "blocked_address", "invalid_url"})
PARSE_LIMIT = 8 * 1024 * 1024  # bytes of a body parsed for links (held in memory)
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_XML_TYPES = ("application/xml", "text/xml")


@dataclass(slots=True)
class PageInfo:
    """The crawler's side of an attempt (never part of the record as such)."""

    links: list[Link] = field(default_factory=list)
    ids: frozenset[str] | None = None  # fragment targets, when the body was HTML and asked for
    validators: Validators | None = None  # to keep for the next run
    unchanged: bool = False  # a 304 answered from the stored body
    location: str | None = None  # an unfollowed redirect's absolute target
    robots: bool = False  # robots.txt disallows it: not fetched
    challenge: bool = False  # the answer looks like a bot wall
    method: str = "GET"


@dataclass(frozen=True, slots=True)
class Plan:
    """How to fetch one entry."""

    kind: str  # "page" | "link"
    want_links: bool  # parse the body for links
    want_ids: bool  # parse the body for fragment ids
    validators: Validators | None = None  # send conditional headers from these


class EntryFetcher:
    """The engine's fetch function for crawl and link-check runs."""

    def __init__(
        self,
        *,
        store: BodyStore | None,
        max_body: int | None,
        robots: RobotsPolicy | None,
        accept: frozenset[int],
        plan_for: Callable[[int], Plan],
    ) -> None:
        self._store = store
        self._max_body = max_body
        self._robots = robots
        self._accept = accept
        self._plan_for = plan_for
        self.info: dict[int, PageInfo] = {}
        # Called with a URL of each host seen for the first time, once its robots.txt is
        # known (the crawl paces hosts by their Crawl-delay).
        self.on_host: Callable[[str], None] | None = None
        self._hosts: set[str] = set()

    def take(self, index: int) -> PageInfo:
        """The side info of the last attempt at spec ``index`` (removed)."""
        return self.info.pop(index, None) or PageInfo()

    async def __call__(
        self, session: client.ClientSession, spec: RequestSpec, settings: FetchSettings
    ) -> Attempt:
        info = PageInfo()
        self.info[spec.index] = info
        plan = self._plan_for(spec.index)
        # robots.txt governs crawling: pages we fetch to follow their links. A link
        # check's single request to a URL some page links to is not crawling (and
        # asking every external host for its robots.txt would double the requests).
        if self._robots is not None and plan.kind == "page":
            allowed = await self._robots.allowed(spec.url)
            self._first_visit(spec.url)
            if not allowed:
                info.robots = True
                return Attempt(error=ErrorInfo("robots", "disallowed by robots.txt"))
        if plan.kind == "link" and not plan.want_ids:
            info.method = "HEAD"
            head = await self._fetch(session, replace_method(spec, "HEAD"), plan, info)
            if head.status in self._accept or (
                head.error is not None and head.error.kind in _HEAD_FINAL_ERRORS
            ):
                return head
            info.method = "GET"
        return await self._fetch(session, spec, plan, info)

    def _first_visit(self, url: str) -> None:
        host = urlsplit(url).netloc
        if host in self._hosts or self.on_host is None:
            return
        if len(self._hosts) >= 100_000:  # bounded: a re-visit only re-applies the pacing
            self._hosts.clear()
        self._hosts.add(host)
        self.on_host(url)

    async def _fetch(
        self, session: client.ClientSession, spec: RequestSpec, plan: Plan, info: PageInfo
    ) -> Attempt:
        clock = PhaseClock()
        kwargs = request_kwargs(spec, clock)
        stored = plan.validators if spec.method == "GET" else None
        if stored is not None:
            kwargs["headers"] = (*spec.headers, *conditional_headers(stored))
        started = time.perf_counter()
        attempt = Attempt()
        ttfb: float | None = None
        sink: BodySink | None = None
        body: _Prefix | None = None
        try:
            async with session.request(spec.method, spec.url, **kwargs) as resp:
                ttfb = time.perf_counter() - started
                take_head(attempt, resp)
                final = attempt.final_url or spec.url
                headers = resp.headers
                info.challenge = _looks_like_challenge(resp.status, headers)
                if 300 <= resp.status < 400 and resp.status != 304:
                    location = headers.get("Location")
                    if location is not None:
                        info.location = urljoin(final, location.strip())
                if resp.status == 304 and stored is not None:
                    await resp.read()
                    await self._unchanged(attempt, info, plan, stored, final)
                else:
                    ctype = (attempt.content_type or "").split(";", 1)[0].strip().lower()
                    parse = (
                        spec.method == "GET"
                        and 200 <= resp.status < 300
                        and (ctype in _HTML_TYPES or (plan.want_links and ctype in _XML_TYPES))
                    )
                    if parse and (plan.want_links or plan.want_ids):
                        body = _Prefix()
                    if self._store is not None and plan.kind == "page" and resp.status == 200:
                        sink = self._store.open("GET", spec.url)
                    await read_body(
                        resp, self._max_body, sink, attempt, body.feed if body is not None else None
                    )
                    if sink is not None:
                        attempt.body_path = str(await sink.commit())
                        sink = None
                        info.validators = Validators(
                            etag=headers.get("ETag"),
                            last_modified=headers.get("Last-Modified"),
                            body_path=attempt.body_path,
                            sha256=attempt.sha256,
                            size=attempt.size,
                            content_type=attempt.content_type,
                        )
                    if body is not None:
                        _parse(bytes(body.data), final, ctype, resp.charset, plan, info, spec.url)
        except asyncio.CancelledError:
            if sink is not None:
                await asyncio.shield(sink.abort())
            raise
        except Exception as exc:  # every per-request failure becomes a value
            attempt.error = classify(exc)
            info.links, info.ids = [], None
            if sink is not None:
                await sink.abort()
        attempt.timings = Timings(
            dns=clock.dns, connect=clock.connect, ttfb=ttfb, total=time.perf_counter() - started
        )
        return attempt

    async def _unchanged(
        self, attempt: Attempt, info: PageInfo, plan: Plan, stored: Validators, final: str
    ) -> None:
        """A 304: the stored body stands in for the one not sent."""
        info.unchanged = True
        info.validators = stored
        attempt.body_path = stored.body_path
        attempt.sha256 = stored.sha256
        attempt.size = stored.size
        attempt.content_type = stored.content_type
        if stored.body_path is None or not (plan.want_links or plan.want_ids):
            return
        try:
            data = await asyncio.to_thread(Path(stored.body_path).read_bytes)
        except OSError:
            return  # removed since: the next run fetches it whole (no validators kept)
        ctype = (stored.content_type or "").split(";", 1)[0].strip().lower()
        _parse(data, final, ctype, None, plan, info, final)


def replace_method(spec: RequestSpec, method: str) -> RequestSpec:
    """``spec`` sent with another method."""
    return replace(spec, options=replace(spec.options, method=method))


def conditional_headers(stored: Validators) -> tuple[tuple[str, str], ...]:
    """RFC 9110 §13.1: If-None-Match wins over If-Modified-Since; send both when known."""
    pairs: list[tuple[str, str]] = []
    if stored.etag:
        pairs.append(("If-None-Match", stored.etag))
    if stored.last_modified:
        pairs.append(("If-Modified-Since", stored.last_modified))
    return tuple(pairs)


def _looks_like_challenge(status: int, headers: client.CIMultiDictProxy[str]) -> bool:
    """Bot walls: Cloudflare's ``cf-mitigated: challenge``, or 503s from such fronts."""
    if headers.get("cf-mitigated", "").lower() == "challenge":
        return True
    return status == 503 and "cloudflare" in headers.get("Server", "").lower()


class _Prefix:
    """The first ``PARSE_LIMIT`` bytes of a body, for link extraction."""

    __slots__ = ("data",)

    def __init__(self) -> None:
        self.data = bytearray()

    def feed(self, chunk: bytes) -> None:
        room = PARSE_LIMIT - len(self.data)
        if room > 0:
            self.data += chunk[:room]


def _parse(
    data: bytes,
    base: str,
    ctype: str,
    charset: str | None,
    plan: Plan,
    info: PageInfo,
    source: str,
) -> None:
    if ctype in _XML_TYPES:
        if plan.want_links:
            try:
                info.links = extract_sitemap(data, source=source)[0]
            except SitemapError:
                info.links = []
        return
    if plan.want_links:
        info.links = extract_html(data, base, source=source, charset=charset)
    if plan.want_ids:
        info.ids = frozenset(html_ids(data, charset=charset))
