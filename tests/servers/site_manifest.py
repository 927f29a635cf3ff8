"""What a correct crawler or link checker must find on a GeneratedSite, without crawling it.

Both manifests follow from the generation rules in :mod:`servers.site_pages`
(the same :func:`~servers.site_pages.route` the server answers with);
``tests/test_site_fixture.py`` checks them against an independent BFS over
the HTML the server really sends.

Crawl rules (:func:`crawl_manifest`): seed ``/p/0.html`` at depth 0; every link
of a fetched page is at the page's depth + 1; a 301 is a record of its own and
its ``Location`` is treated as a link *of the redirecting URL* (so the target
is at the redirect's depth + 1); URLs deeper than ``max_depth`` are not
fetched; only the site's own host:port is in scope; the exclude regex is
``re.search``-ed on the absolute URL (fragment dropped); ``/private/`` is
disallowed when robots are obeyed; only ``<a href>`` links are followed
unless ``assets`` (then page 0's img/link/script targets too, as runner.crawl's
NAVIGATIONAL kinds do not); 404 and 301 bodies and assets yield no links.
``/robots.txt`` and sitemaps are not part of the result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from .site_pages import (
    EXTERNAL_PATHS,
    PAGE_IDS,
    STATUS,
    page_hrefs,
    page_links,
    redirect_target,
    route,
)

Verdict = Literal["ok", "broken", "indeterminate", "excluded", "robots"]
Occurrence = tuple[str, int, str]  # (source page URL, 1-based line, target URL with #fragment)

# The external server's answers, as a link checker must judge them (after retries,
# HEAD -> GET fallback and redirects).
EXTERNAL_VERDICTS: dict[str, Verdict] = dict(
    zip(EXTERNAL_PATHS, ("ok", "broken", "indeterminate", "indeterminate", "ok", "ok"), strict=True)
)


@dataclass(frozen=True, slots=True)
class SiteShape:
    """The few numbers a manifest needs: page count and the two base URLs."""

    pages: int
    base: str  # http://127.0.0.1:PORT of the site
    external: str  # http://127.0.0.1:PORT2 of the companion ("external") server


@dataclass(frozen=True, slots=True)
class LinkManifest:
    """A link check of the whole site (seed /p/0.html, fragments on, external on).

    Each set holds ``(source page URL, line, target URL with #fragment)``;
    ``verdicts`` maps every distinct target (with fragment) to its verdict.
    """

    broken: frozenset[Occurrence]
    indeterminate: frozenset[Occurrence]
    excluded: frozenset[Occurrence]
    robots: frozenset[Occurrence]
    ok: frozenset[Occurrence]
    verdicts: dict[str, Verdict] = field(default_factory=dict)

    @property
    def ok_count(self) -> int:
        """How many link occurrences are fine."""
        return len(self.ok)


def crawl_manifest(
    shape: SiteShape, max_depth: int, *, exclude: str | None, robots: bool, assets: bool
) -> dict[str, int]:
    """Absolute URL -> status of every URL the crawl fetches (see the module docstring)."""
    pattern = re.compile(exclude) if exclude else None
    inside = shape.base + "/"
    seed = shape.base + "/p/0.html"
    found = {seed: 200}
    level = [seed]
    for _depth in range(max_depth):
        following: list[str] = []
        for url in level:
            for target in _outlinks(shape, url, assets):
                if target in found or not target.startswith(inside):
                    continue
                if pattern is not None and pattern.search(target):
                    continue
                path = target[len(shape.base) :].partition("?")[0]
                if robots and path.startswith("/private/"):
                    continue
                found[target] = STATUS[route(path, shape.pages)[0]]
                following.append(target)
        if not following:
            break
        level = following
    return found


def _outlinks(shape: SiteShape, url: str, assets: bool) -> list[str]:
    """Absolute URLs (no fragment) that fetching *url* leads to."""
    path = url[len(shape.base) :].partition("?")[0]
    kind, n = route(path, shape.pages)
    if kind == "redirect":
        return [shape.base + redirect_target(n, shape.pages)]
    if kind != "page":
        return []
    targets = []
    for tag, href in page_hrefs(n, shape.pages, shape.external):
        if assets or tag == "a":
            targets.append(_resolve(shape, url, href).partition("#")[0])
    return targets


def _resolve(shape: SiteShape, source: str, href: str) -> str:
    """*href* as written on *source* made absolute (fragment kept)."""
    if href.startswith("#"):
        return source.partition("#")[0] + href
    if href.startswith("/"):
        return shape.base + href
    return href


def link_manifest(shape: SiteShape, *, exclude: str | None) -> LinkManifest:
    """Every link occurrence on every page, sorted by verdict.

    Every page is parsed (the tree is 10-ary, so any practical site is within
    the default max_depth of 10).
    """
    pattern = re.compile(exclude) if exclude else None
    buckets: dict[Verdict, set[Occurrence]] = {
        "ok": set(),
        "broken": set(),
        "indeterminate": set(),
        "excluded": set(),
        "robots": set(),
    }
    verdicts: dict[str, Verdict] = {}
    for i in range(shape.pages):
        source = f"{shape.base}/p/{i}.html"
        for link in page_links(i, shape.pages, shape.external):
            target = _resolve(shape, source, link.href)
            verdict = verdicts.get(target)
            if verdict is None:
                verdict = verdicts[target] = link_verdict(shape, target, pattern)
            buckets[verdict].add((source, link.line, target))
    return LinkManifest(
        broken=frozenset(buckets["broken"]),
        indeterminate=frozenset(buckets["indeterminate"]),
        excluded=frozenset(buckets["excluded"]),
        robots=frozenset(buckets["robots"]),
        ok=frozenset(buckets["ok"]),
        verdicts=verdicts,
    )


def link_verdict(shape: SiteShape, target: str, pattern: re.Pattern[str] | None = None) -> Verdict:
    """The verdict a link checker must give the absolute *target* (``#fragment`` kept)."""
    url, _, fragment = target.partition("#")
    if url.startswith(shape.external + "/"):
        return EXTERNAL_VERDICTS.get(url[len(shape.external) :], "broken")
    if pattern is not None and pattern.search(url):
        return "excluded"
    path = url[len(shape.base) :].partition("?")[0]
    if path.startswith("/private/"):
        return "robots"
    kind, n = route(path, shape.pages)
    if kind == "redirect":  # followed: the target is a page with no fragment asked for
        kind, n = route(redirect_target(n, shape.pages), shape.pages)
    if STATUS[kind] >= 400:
        return "broken"
    if fragment and (kind != "page" or fragment not in PAGE_IDS):
        return "broken"
    return "ok"
