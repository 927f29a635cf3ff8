"""Links and fragment targets of an HTML document.

Parser choice, measured (CPython 3.11, lxml 6.1) on a 200 KB page with 2,700
links: libxml2 through ``lxml.etree.HTMLParser`` parses and walks it in ~4 ms,
stdlib ``html.parser`` needs ~31 ms for the same walk. lxml is already a
dependency (``runner.extract``), recovers from malformed markup the way
browsers roughly do, and gives each element's ``sourceline``. We use etree's
parser, not ``lxml.html``'s (that one builds a Python proxy class per element).

Lines: libxml2 gives the line where an element's start tag *ends* (its
``>``), so a start tag spread over several lines reports its last line; and
its HTML parser counts lines in 16 bits, so elements past line 65,535 report
65,535. ``<base href>`` is the first ``base`` element with an
``href`` (HTML §4.2.3); with no base the document URL is the base. Links in
``<template>`` contents and in CSS/JS text are not extracted. URLs with other
schemes (``javascript:``, ``mailto:``, ``data:`` …) are returned unchanged for
callers to filter.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urljoin

from lxml import etree

from ..extract_title import html_encoding
from .model import Link, LinkKind, collapse, make_link

# Elements whose attributes carry links, and which attribute gives which kind.
_ATTRS: dict[str, tuple[tuple[str, LinkKind], ...]] = {
    "a": (("href", "a"),),
    "area": (("href", "a"),),
    "link": (("href", "link"),),
    "img": (("src", "img"), ("srcset", "srcset")),
    "script": (("src", "script"),),
    "iframe": (("src", "iframe"),),
    "source": (("src", "source"), ("srcset", "srcset")),
}
_TAGS = (*_ATTRS, "meta")
_SPACE = " \t\n\r\f"
# HTML §4.2.5.3 "shared declarative refresh steps": time, separator, "url=".
_REFRESH = re.compile(r"[ \t\n\r\f]*[0-9.]*[ \t\n\r\f]*[;,]?[ \t\n\r\f]*", re.ASCII)
# Plain strings, not lxml's "smart" ones that keep the whole tree alive.
_IDS = etree.XPath("//@id | //a/@name", smart_strings=False)
_URL_EQ = re.compile(r"url[ \t\n\r\f]*=[ \t\n\r\f]*", re.ASCII | re.IGNORECASE)


def extract_html(
    body: bytes | str, base_url: str, *, source: str, charset: str | None = None
) -> list[Link]:
    """Every link in *body*, in document order, resolved against ``<base href>``.

    *base_url* is the document's URL; *charset* the HTTP charset if any (else
    a BOM, ``<meta charset>`` or UTF-8). A document libxml2 cannot read at all
    yields no links.
    """
    root = _parse(body, charset)
    if root is None:
        return []
    base = _base(root, base_url)
    links: list[Link] = []
    for element in root.iter(*_TAGS):
        tag = element.tag
        line = element.sourceline or 1
        if tag == "meta":
            target = _refresh_target(element)
            if target is not None:
                links.append(make_link(target, base, source=source, line=line, kind="meta-refresh"))
            continue
        for attr, kind in _ATTRS[str(tag)]:
            value = element.get(attr)
            if value is None:
                continue
            if kind == "srcset":
                links.extend(
                    make_link(url, base, source=source, line=line, kind=kind)
                    for url in srcset_urls(value)
                )
            else:
                links.append(
                    make_link(value, base, source=source, line=line, kind=kind, text=_text(element))
                )
    return links


def html_ids(body: bytes | str, *, charset: str | None = None) -> set[str]:
    """The fragment targets of *body*: every ``id`` and every ``<a name>``."""
    root = _parse(body, charset)
    if root is None:
        return set()
    found = _IDS(root)
    return (
        {value for value in found if isinstance(value, str)} if isinstance(found, list) else set()
    )


def srcset_urls(value: str) -> Iterator[str]:
    """The URLs of a ``srcset`` attribute (HTML §4.8.4.3.10), descriptors dropped.

    URLs may contain commas, so candidates are split the way the spec does:
    a URL runs to whitespace, and a trailing comma ends it; descriptors run to
    the next comma outside parentheses.
    """
    pos, end = 0, len(value)
    while True:
        while pos < end and (value[pos] in _SPACE or value[pos] == ","):
            pos += 1
        if pos >= end:
            return
        start = pos
        while pos < end and value[pos] not in _SPACE:
            pos += 1
        url = value[start:pos]
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            pos = _skip_descriptors(value, pos)
        if url:
            yield url


def _skip_descriptors(value: str, pos: int) -> int:
    depth = 0
    while pos < len(value):
        char = value[pos]
        if char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        elif char == "," and not depth:
            return pos + 1
        pos += 1
    return pos


def _parse(body: bytes | str, charset: str | None) -> etree._Element | None:
    encoding: str | None = "utf-8"
    if isinstance(body, str):
        data = body.encode("utf-8", "replace")
    else:
        data, encoding = body, html_encoding(charset, body)
    if not data.strip():
        return None
    try:
        return etree.fromstring(data, etree.HTMLParser(encoding=encoding, no_network=True))
    except (etree.LxmlError, LookupError):
        return None  # unreadable (or an unknown charset name): no links to report


def _base(root: etree._Element, base_url: str) -> str:
    for element in root.iter("base"):
        href = element.get("href")
        if href is not None:
            return urljoin(base_url, href.strip(_SPACE))
    return base_url


def _text(element: etree._Element) -> str | None:
    if element.tag in ("a", "area"):
        return collapse("".join(element.itertext()) or element.get("alt"))
    if element.tag == "img":
        return collapse(element.get("alt"))
    return None


def _refresh_target(element: etree._Element) -> str | None:
    if (element.get("http-equiv") or "").strip(_SPACE).lower() != "refresh":
        return None
    content = element.get("content")
    if content is None:
        return None
    prefix = _REFRESH.match(content)  # every part is optional, so it always matches
    rest = content[prefix.end() :] if prefix is not None else content
    if not rest:
        return None  # a plain reload of the same page
    match = _URL_EQ.match(rest)
    if match is not None:
        rest = rest[match.end() :]
    if rest[:1] in ("'", '"'):
        quote, rest = rest[0], rest[1:]
        rest = rest.split(quote, 1)[0]
    return rest or None
