"""The one record every link extractor returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urljoin

LinkKind = Literal[
    "a",
    "link",
    "img",
    "script",
    "iframe",
    "source",
    "srcset",
    "meta-refresh",
    "markdown",
    "markdown-ref",
    "autolink",
    "sitemap",
    "sitemap-index",
]

# HTML "strip leading and trailing ASCII whitespace"; the URL parser also drops
# tabs and newlines anywhere (WHATWG URL §4.4), which editors leave in long hrefs.
_ASCII_WS = " \t\n\r\f"
_DROP = str.maketrans("", "", "\t\n\r")


@dataclass(frozen=True, slots=True)
class Link:
    """One link found in a document.

    ``url`` is absolute when the base was (resolved with ``urljoin``) and has
    no fragment; ``fragment`` holds the part after ``#`` (None when absent or
    empty). Non-HTTP schemes (``mailto:``, ``javascript:``, ``tel:``,
    ``data:`` …) are returned as written: callers filter by scheme.
    ``line`` is 1-based; ``text`` is the link text or alt text when known.
    """

    url: str
    fragment: str | None
    source: str
    line: int
    kind: LinkKind
    text: str | None = None


def make_link(
    raw: str, base: str, *, source: str, line: int, kind: LinkKind, text: str | None = None
) -> Link:
    """Resolve *raw* against *base* and split off its fragment."""
    cleaned = raw.strip(_ASCII_WS).translate(_DROP)
    # Partition: urldefrag would parse and re-serialise the URL a second time.
    url, hash_, fragment = urljoin(base, cleaned).partition("#")
    return Link(url, fragment if hash_ and fragment else None, source, line, kind, text)


def collapse(text: str | None) -> str | None:
    """*text* with runs of whitespace collapsed; None when nothing is left."""
    if text is None:
        return None
    joined = " ".join(text.split())
    return joined or None
