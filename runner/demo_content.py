"""The demo site's content: pages, the items API, robots.txt, sitemap and errors.

Split out of ``demo_site`` (which keeps the server): every builder here returns a
``_Response`` and is deterministic, so most are cached. ``page_items`` tells
tests what ``/pages/n`` lists without parsing its HTML.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import re
from dataclasses import dataclass
from functools import cache
from html import escape
from http import HTTPStatus
from urllib.parse import parse_qs

PAGE_COUNT = 20
API_TOTAL = 200
API_PER_PAGE = 20

_HTML = "text/html; charset=utf-8"
_JSON = "application/json; charset=utf-8"
_TEXT = "text/plain; charset=utf-8"
_XML = "application/xml; charset=utf-8"


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    body: bytes
    content_type: str = _HTML
    headers: tuple[tuple[str, str], ...] = ()


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
