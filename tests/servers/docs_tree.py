"""A generated docs tree (Markdown and HTML) with known good and broken links.

:func:`write_docs_tree` writes 31 documents (and one image) under *root*:
relative links between them (good, missing file, good and bad ``#fragment``),
Markdown heading anchors as GitHub slugs them, ids and ``<a name>`` in HTML,
reference-style links (used, collapsed, shortcut and one unused definition),
autolinks, links in code that are not links, and links to a
:class:`~servers.site.GeneratedSite` and its external server (200, 404, 403,
429, 301, HEAD-refused). The returned :class:`DocsManifest` says what a link
check with fragments on must report. Verdicts are derived, not typed in: a
relative target is broken when its file is not in the tree or its fragment is
not an anchor of that file; site targets are judged by
:func:`servers.site_manifest.link_verdict`.
"""

from __future__ import annotations

import posixpath
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from .docs_content import HTML_DOCS, MARKDOWN_DOCS, Line
from .site import GeneratedSite
from .site_manifest import Occurrence, link_verdict
from .site_pages import STATIC

_HEADING = re.compile(r"(#{1,6})[ \t]+(.*?)[ \t#]*$")
_FENCE = re.compile(r"(`{3,}|~{3,})")
_HTML_ANCHOR = re.compile(r"""\b(?:id|name)="([^"]+)\"""")
IMAGE = "docs/img/logo.png"  # the one non-document file in the tree


@dataclass(frozen=True, slots=True)
class DocsManifest:
    """What a link check of the tree (fragments on, external on) must report.

    Occurrences are ``(absolute file path as str, 1-based line, target as
    written in the file)``; reference-style uses carry their definition's target.
    """

    root: Path
    files: tuple[Path, ...]
    broken: frozenset[Occurrence]
    indeterminate: frozenset[Occurrence]
    ok: frozenset[Occurrence]

    @property
    def ok_count(self) -> int:
        """How many link occurrences are fine."""
        return len(self.ok)


def github_slug(text: str) -> str:
    """A heading's anchor as GitHub makes it (github-slugger), before de-duplication.

    Lower-cased; everything but letters, marks, digits, ``_``, ``-`` and
    spaces removed (so backticks and punctuation vanish); spaces become ``-``.
    """
    kept = []
    for char in text.lower():
        if char == " ":
            kept.append("-")
        elif char in "-_" or unicodedata.category(char)[0] in "LMN":
            kept.append(char)
    return "".join(kept)


@dataclass(slots=True)
class _Doc:
    rel: str
    lines: list[str]
    links: list[tuple[int, str]]  # (line, target as written)
    anchors: set[str]


def _markdown(rel: str, content: list[Line], subst: dict[str, str]) -> _Doc:
    doc = _Doc(rel, [], [], set())
    in_fence = False
    for item in content:
        text, written = (item, ()) if isinstance(item, str) else (item[0], item[1:])
        text, targets = _fill(text, written, subst)
        doc.lines.append(text)
        line = len(doc.lines)
        doc.links += ((line, target) for target in targets)
        if _FENCE.match(text):
            in_fence = not in_fence
        heading = None if in_fence else _HEADING.fullmatch(text)
        if heading is not None:
            slug = base = github_slug(heading[2])
            suffix = 0
            while slug in doc.anchors:  # github-slugger: foo, foo-1, foo-2 ...
                suffix += 1
                slug = f"{base}-{suffix}"
            doc.anchors.add(slug)
    return doc


def _html(rel: str, content: list[Line], subst: dict[str, str]) -> _Doc:
    doc = _Doc(rel, [], [], set())
    for item in content:
        text, written = (item, ()) if isinstance(item, str) else (item[0], item[1:])
        text, targets = _fill(text, written, subst)
        doc.lines.append(text)
        doc.links += ((len(doc.lines), target) for target in targets)
        doc.anchors.update(_HTML_ANCHOR.findall(text))
    return doc


def _fill(text: str, targets: tuple[str, ...], subst: dict[str, str]) -> tuple[str, list[str]]:
    """Put the site's base URLs into *targets*, then each target into a ``{}`` of *text*."""
    holes = text.count("{}")
    if holes not in (0, len(targets)):
        raise ValueError(f"{holes} placeholders for {len(targets)} targets: {text!r}")
    filled = []
    for target in targets:
        for key, value in subst.items():
            target = target.replace(key, value)
        filled.append(target)
        if "{}" in text:
            text = text.replace("{}", target, 1)
    for key, value in subst.items():
        text = text.replace(key, value)
    return text, filled


def write_docs_tree(root: Path, site: GeneratedSite) -> DocsManifest:
    """Write the tree under *root* (created if needed) and return its manifest."""
    subst = {"{site}": site.base_url, "{ext}": site.external_url}
    docs = [_markdown(rel, content, subst) for rel, content in MARKDOWN_DOCS.items()]
    docs += [_html(rel, content, subst) for rel, content in HTML_DOCS.items()]
    by_rel = {doc.rel: doc for doc in docs}
    files = []
    for doc in docs:
        path = root / doc.rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(doc.lines) + "\n", encoding="utf-8")
        files.append(path)
    image = root / IMAGE
    image.parent.mkdir(parents=True, exist_ok=True)
    image.write_bytes(STATIC["/static/logo.png"][2])
    buckets: dict[str, set[Occurrence]] = {"ok": set(), "broken": set(), "indeterminate": set()}
    shape = site.shape()
    for doc in docs:
        for line, target in doc.links:
            if target.startswith(("http://", "https://")):
                verdict: str = link_verdict(shape, target)
            else:
                verdict = _local_verdict(doc, target, by_rel)
            buckets[verdict].add((str(root / doc.rel), line, target))
    return DocsManifest(
        root=root,
        files=tuple(files),
        broken=frozenset(buckets["broken"]),
        indeterminate=frozenset(buckets["indeterminate"]),
        ok=frozenset(buckets["ok"]),
    )


def _local_verdict(doc: _Doc, target: str, by_rel: dict[str, _Doc]) -> str:
    """ok / broken for a relative *target* written in *doc*."""
    path, _, fragment = target.partition("#")
    path = path.partition("?")[0]
    if not path:
        linked: _Doc | None = doc
    else:
        rel = posixpath.normpath(posixpath.join(posixpath.dirname(doc.rel), path))
        if rel == IMAGE:
            return "broken" if fragment else "ok"
        linked = by_rel.get(rel)
    if linked is None or (fragment and fragment not in linked.anchors):
        return "broken"
    return "ok"
