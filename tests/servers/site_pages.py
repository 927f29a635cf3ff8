"""The generation rules of :class:`servers.site.GeneratedSite`: pages from their number.

Page ``i`` (``/p/{i}.html``, ``0 <= i < pages``) is computed, never stored.
Its links, one per line of HTML, in this order:

* page 0 only, in ``<head>``: ``<link rel=stylesheet href=/static/app.css>``
  (200) and ``<script src=/static/missing.js>`` (404); first in ``<body>``:
  ``<img src=/static/logo.png>`` (200);
* its children ``/p/{10i+1}.html`` .. ``/p/{10i+10}.html`` (those < pages);
* ``/p/0.html`` (home), on every page;
* when ``i % m == r`` for the rule ``(m, r)`` below, in this order:

  ========== ========= ===============================================
  rule       (m, r)    links
  ========== ========= ===============================================
  MISSING    (97, 3)   ``/missing/{i}.html`` (404)
  REDIRECT   (89, 5)   ``/r/{i}`` (301 to ``/p/{(i+1) % pages}.html``)
  SORTED     (83, 7)   ``/p/{i}.html?sort=asc`` (200: page i again)
  PRIVATE    (79, 11)  ``/private/{i}.html`` (robots-disallowed; 200)
  FRAGMENT   (73, 13)  ``/p/{j}.html#sec-1`` and ``/p/{j}.html#nope``,
                       ``j = (i + 2) % pages``
  SELF       (61, 19)  ``#sec-2`` (same page)
  EXTERNAL   (67, 17)  the external server's :data:`EXTERNAL_PATHS`
  ========== ========= ===============================================

Every page has ``id="sec-1"`` .. ``id="sec-3"`` and a ``<title>``; a changed
page (version ``v``) ends with ``v`` extra paragraphs after every link, so
link lines never move.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

Tag = Literal["a", "img", "link", "script"]
Kind = Literal["page", "redirect", "private", "static", "none"]
Rule = tuple[int, int]

MISSING: Rule = (97, 3)
REDIRECT: Rule = (89, 5)
SORTED: Rule = (83, 7)
PRIVATE: Rule = (79, 11)
FRAGMENT: Rule = (73, 13)
SELF: Rule = (61, 19)
EXTERNAL: Rule = (67, 17)

STATUS: dict[Kind, int] = {"page": 200, "redirect": 301, "private": 200, "static": 200, "none": 404}
CHILDREN = 10
PAGE_IDS = frozenset({"sec-1", "sec-2", "sec-3"})
# The external server's endpoints, linked in this order (see external_response).
EXTERNAL_PATHS = ("/ok", "/gone", "/bot", "/slow-down", "/head-refused", "/moved")


def _png_1x1() -> bytes:
    """A valid 1x1 transparent PNG (chunk CRCs computed, not typed in)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x00\x00\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


STATIC = {  # path -> (status, content type, body)
    "/static/app.css": (200, "text/css", b"body { font-family: sans-serif; }\n"),
    "/static/logo.png": (200, "image/png", _png_1x1()),
}
_HEAD_LINES = 5  # doctype, html, head, meta charset, title
_FILLER = (
    "Generated page for crawler and link-checker tests. Each link sits on a line "
    "of its own so its source line is known."
)


@dataclass(frozen=True, slots=True)
class PageLink:
    """One link of a page: 1-based ``line`` in its HTML, element ``tag``, ``href`` as written."""

    line: int
    tag: Tag
    href: str


def applies(rule: Rule, i: int) -> bool:
    """Whether page *i* carries the links of *rule*."""
    return i % rule[0] == rule[1]


def _number(text: str, pages: int) -> int | None:
    """*text* as a page number: ASCII digits, no leading zero, below *pages*."""
    if not (text.isascii() and text.isdigit()) or (text[0] == "0" and len(text) > 1):
        return None
    n = int(text)
    return n if n < pages else None


def route(path: str, pages: int) -> tuple[Kind, int]:
    """What the site serves at *path* (no query): the kind and page number (0 if none).

    Statuses: page 200, redirect 301, private 200, static 200, none 404.
    """
    n: int | None = None
    kind: Kind = "none"
    if path.startswith("/p/") and path.endswith(".html"):
        n, kind = _number(path[3:-5], pages), "page"
    elif path.startswith("/r/"):
        n, kind = _number(path[3:], pages), "redirect"
    elif path.startswith("/private/") and path.endswith(".html"):
        n, kind = _number(path[9:-5], pages), "private"
    elif path in STATIC:
        return "static", 0
    return (kind, n) if n is not None else ("none", 0)


def redirect_target(n: int, pages: int) -> str:
    """The Location (a path) of ``/r/{n}``."""
    return f"/p/{(n + 1) % pages}.html"


def depth_of(i: int) -> int:
    """Tree depth of page *i* (page 0 is depth 0; parent of i is (i - 1) // 10)."""
    depth = 0
    while i:
        i = (i - 1) // CHILDREN
        depth += 1
    return depth


def _body_hrefs(i: int, pages: int, external: str) -> Iterator[tuple[Tag, str, str]]:
    """(tag, href, text) of the links in page *i*'s ``<body>``, in order."""
    if i == 0:
        yield "img", "/static/logo.png", "logo"
    first = CHILDREN * i + 1
    for child in range(first, min(first + CHILDREN, pages)):
        yield "a", f"/p/{child}.html", f"Page {child}"
    yield "a", "/p/0.html", "Home"
    if applies(MISSING, i):
        yield "a", f"/missing/{i}.html", "Missing"
    if applies(REDIRECT, i):
        yield "a", f"/r/{i}", "Moved"
    if applies(SORTED, i):
        yield "a", f"/p/{i}.html?sort=asc", "Sorted"
    if applies(PRIVATE, i):
        yield "a", f"/private/{i}.html", "Private"
    if applies(FRAGMENT, i):
        j = (i + 2) % pages
        yield "a", f"/p/{j}.html#sec-1", "Section"
        yield "a", f"/p/{j}.html#nope", "No section"
    if applies(SELF, i):
        yield "a", "#sec-2", "Details"
    if applies(EXTERNAL, i):
        for path in EXTERNAL_PATHS:
            yield "a", external + path, "External " + path[1:]


def page_links(i: int, pages: int, external: str) -> list[PageLink]:
    """Every link of page *i* with its line, in document order."""
    links: list[PageLink] = []
    line = _HEAD_LINES
    if i == 0:
        links += (
            PageLink(line + 1, "link", "/static/app.css"),
            PageLink(line + 2, "script", "/static/missing.js"),
        )
        line += 2
    line += 5  # </head>, <body>, <h1>, <p>, <ul>
    for tag, href, _text in _body_hrefs(i, pages, external):
        line += 1
        links.append(PageLink(line, tag, href))
    return links


def page_hrefs(i: int, pages: int, external: str) -> Iterator[tuple[Tag, str]]:
    """(tag, href) of page *i*'s links without line bookkeeping (for the manifest BFS)."""
    if i == 0:
        yield "link", "/static/app.css"
        yield "script", "/static/missing.js"
    for tag, href, _text in _body_hrefs(i, pages, external):
        yield tag, href


def render_page(i: int, version: int, pages: int, external: str) -> bytes:
    """The HTML of page *i* at *version* (0 = as generated)."""
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>Page {i}</title>",
    ]
    if i == 0:
        lines += (
            '<link rel="stylesheet" href="/static/app.css">',
            '<script src="/static/missing.js"></script>',
        )
    lines += ("</head>", "<body>", f'<h1 id="sec-1">Page {i}</h1>', f"<p>{_FILLER}</p>", "<ul>")
    for tag, href, text in _body_hrefs(i, pages, external):
        if tag == "img":
            lines.append(f'<li><img src="{href}" alt="{text}"></li>')
        else:
            lines.append(f'<li><a href="{href}">{text}</a></li>')
    lines += ("</ul>", '<h2 id="sec-2">Details</h2>', f"<p>Page {i} of {pages}.</p>")
    lines.append('<h2 id="sec-3">History</h2>')
    lines += (
        f"<p>Revision {v}: the text changed, the links did not.</p>" for v in range(1, version + 1)
    )
    lines += ("</body>", "</html>", "")
    return "\n".join(lines).encode()


def render_private(i: int) -> bytes:
    """A robots-disallowed page: it exists (200) and links nowhere."""
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<title>Private {i}</title>\n<p>Secret.</p>\n'.encode()
    )


def robots_txt(base: str, crawl_delay: float | None) -> bytes:
    """``/robots.txt``: /private/ disallowed for everyone, the sitemap, maybe a Crawl-delay."""
    lines = ["User-agent: *", "Disallow: /private/"]
    if crawl_delay is not None:
        lines.append(f"Crawl-delay: {crawl_delay:g}")
    lines += ("", f"Sitemap: {base}/sitemap.xml", "")
    return "\n".join(lines).encode()


def sitemap_children(pages: int) -> int:
    """Child sitemaps behind /sitemap.xml: 0 (a plain urlset) up to 1,000 pages, else >= 2.

    The protocol caps a sitemap at 50,000 URLs, so big sites get more children.
    """
    if pages <= 1000:
        return 0
    return max(2, -(-pages // 50_000))


def sitemap_range(pages: int, child: int) -> range:
    """The page numbers listed by child sitemap *child* (1-based)."""
    count = sitemap_children(pages)
    size = -(-pages // count)
    return range((child - 1) * size, min(child * size, pages))


def sitemap_urlset(base: str, numbers: range) -> bytes:
    """A ``<urlset>`` listing ``/p/{n}.html`` for every n in *numbers*."""
    head = '<?xml version="1.0" encoding="UTF-8"?>\n'
    head += '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
    body = "".join(f"<url><loc>{base}/p/{n}.html</loc></url>\n" for n in numbers)
    return (head + body + "</urlset>\n").encode()


def sitemap_index(base: str, children: int) -> bytes:
    """A ``<sitemapindex>`` of ``/sitemap-1.xml`` .. ``/sitemap-{children}.xml``."""
    head = '<?xml version="1.0" encoding="UTF-8"?>\n'
    head += '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
    body = "".join(
        f"<sitemap><loc>{base}/sitemap-{k}.xml</loc></sitemap>\n" for k in range(1, children + 1)
    )
    return (head + body + "</sitemapindex>\n").encode()
