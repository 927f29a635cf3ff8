"""Link checks of local trees: HTML and Markdown files on disk.

Every link found is recorded where it appears. Links to other local files
(relative paths, ``file:`` URLs) are checked here, on the filesystem, with
their ``#fragment`` against the ids of the target (HTML ``id``/``name``, or
Markdown headings slugged the way GitHub renders them); http(s) links go to
the frontier as "link" entries for the engine.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from ..links import Link, extract_html, extract_markdown, html_ids
from .state import CachedResult, Entry, Occurrence, StateStore
from .urlnorm import authority_of, normalize

HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown", ".mdown", ".mkd"})
MAX_FILE = 16 * 1024 * 1024  # larger files are skipped: not documents a person wrote
_SKIP_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", ".tox"})
_HEADING = re.compile(r" {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_HTML_ANCHOR = re.compile(r"""<[^>]*\b(?:id|name)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_SLUG_DROP = re.compile(r"[^\w\- ]", re.UNICODE)


def documents(targets: Sequence[str]) -> Iterator[Path]:
    """The HTML and Markdown files of ``targets`` (files as given, directories walked, sorted)."""
    for target in targets:
        path = Path(target)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
                for name in sorted(files):
                    if Path(name).suffix.lower() in HTML_SUFFIXES | MARKDOWN_SUFFIXES:
                        yield Path(root) / name
        else:
            yield path


def shown(path: Path) -> str:
    """``path`` as reports show it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


def links_of(path: Path) -> list[Link]:
    """The links of one document (none when it cannot be read as text)."""
    try:
        if path.stat().st_size > MAX_FILE:
            return []
        data = path.read_bytes()
    except OSError:
        return []
    base = path.resolve().as_uri()
    if path.suffix.lower() in MARKDOWN_SUFFIXES:
        return extract_markdown(data.decode("utf-8", "replace"), base, source=shown(path))
    return extract_html(data, base, source=shown(path))


def anchors_of(path: Path) -> frozenset[str] | None:
    """Fragment targets of a local document; None when it is not HTML or Markdown."""
    suffix = path.suffix.lower()
    try:
        if suffix in HTML_SUFFIXES:
            return frozenset(html_ids(path.read_bytes()))
        if suffix in MARKDOWN_SUFFIXES:
            return markdown_anchors(path.read_text("utf-8", "replace"))
    except OSError:
        return frozenset()
    return None


def markdown_anchors(text: str) -> frozenset[str]:
    """Heading anchors as GitHub makes them (lower-case, punctuation dropped, spaces to
    hyphens, ``-1``/``-2`` for repeats), plus explicit HTML ``id``/``name`` attributes."""
    found: set[str] = set(_HTML_ANCHOR.findall(text))
    counts: dict[str, int] = {}
    fence: str | None = None
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(("```", "~~~")):
            marker = stripped[:3]
            fence = None if fence == marker else (fence or marker)
            continue
        if fence is not None:
            continue
        match = _HEADING.match(line)
        if match is None:
            continue
        slug = _slug(match.group(2))
        n = counts.get(slug, 0)
        counts[slug] = n + 1
        found.add(slug if n == 0 else f"{slug}-{n}")
    return frozenset(found)


def _slug(heading: str) -> str:
    # Rendered text: code and emphasis markers and link targets go; "_" stays (snake_case).
    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading)
    text = unicodedata.normalize("NFC", text).strip().lower()
    return _SLUG_DROP.sub("", text).replace(" ", "-")


class LocalScan:
    """Scans local targets into the store: occurrences, local results, remote entries."""

    def __init__(self, store: StateStore, exclude: Sequence[re.Pattern[str]]) -> None:
        self._store = store
        self._exclude = exclude
        self._anchors: dict[str, frozenset[str] | None] = {}
        self.files = 0

    def run(self, targets: Sequence[str]) -> None:
        for path in documents(targets):
            self.files += 1
            self._document(path)

    def _document(self, path: Path) -> None:
        occurrences: list[Occurrence] = []
        remote: list[Entry] = []
        for link in links_of(path):
            scheme = urlsplit(link.url).scheme.lower()
            if scheme == "file":
                occurrences.append(
                    Occurrence(link.url, link.fragment, link.source, link.line, link.kind)
                )
                self._check_file(link.url)
                continue
            target = normalize(link.url)
            if target is None:
                continue  # mailto:, tel:, javascript: ...
            occurrences.append(Occurrence(target, link.fragment, link.source, link.line, link.kind))
            if not any(p.search(target) for p in self._exclude):
                remote.append(Entry(target, authority_of(target), 1, "link", link.source))
        self._store.complete(path.resolve().as_uri(), None, links=remote, occurrences=occurrences)

    def _check_file(self, url: str) -> None:
        if url in self._anchors:
            return
        path = Path(url2pathname(unquote(urlsplit(url).path)))
        if path.is_dir():
            index = next(
                (path / n for n in ("index.html", "README.md") if (path / n).is_file()), None
            )
            ids = anchors_of(index) if index is not None else None
            result = CachedResult(url, "ok", None, "", None, 0.0, ids)
        elif path.is_file():
            result = CachedResult(url, "ok", None, "", None, 0.0, anchors_of(path))
        else:
            result = CachedResult(url, "broken", None, "file not found", None, 0.0, None)
        self._anchors[url] = result.ids
        self._store.complete(url, None, result=result)
