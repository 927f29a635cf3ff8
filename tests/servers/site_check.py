"""An independent crawler and link judge over a running GeneratedSite.

Used to check the site's manifests against what the server really sends:
everything here goes over HTTP with our client and reads links with
``runner.links``; nothing looks at the generation rules.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from protego import Protego

import client
from runner.links import Link, extract_html, html_ids

from .site import GeneratedSite

EXCLUDE = r"[?&]sort="
Headers = dict[str, str]


async def fetch(
    session: client.ClientSession,
    url: str,
    *,
    method: str = "GET",
    headers: Headers | None = None,
    redirects: bool = False,
) -> tuple[int, Headers, bytes]:
    """Status, lower-cased headers and body of one request (no redirects unless asked)."""
    async with session.request(method, url, headers=headers, allow_redirects=redirects) as response:
        body = await response.read()
        return response.status, {k.lower(): v for k, v in response.headers.items()}, body


@dataclass
class Crawl:
    """What :func:`bfs` saw: status per fetched URL and the links of each parsed page."""

    statuses: dict[str, int] = field(default_factory=dict)
    links: dict[str, list[Link]] = field(default_factory=dict)  # per parsed HTML page


async def bfs(
    site: GeneratedSite,
    session: client.ClientSession,
    *,
    max_depth: int = 10,
    exclude: str | None = EXCLUDE,
    robots: bool = True,
    assets: bool = True,
) -> Crawl:
    """Crawl the real site level by level: GET, no automatic redirects, same host:port only."""
    _, _, robots_txt = await fetch(session, site.url("/robots.txt"))
    rules = Protego.parse(robots_txt.decode()) if robots else None
    pattern = re.compile(exclude) if exclude else None
    host = urlsplit(site.base_url).netloc
    crawl, level, depth = Crawl(), [site.page_url(0)], 0
    seen = set(level)
    while level:
        answers = await asyncio.gather(*(fetch(session, url) for url in level))
        following: list[str] = []
        for url, (status, headers, body) in zip(level, answers, strict=True):
            crawl.statuses[url] = status
            targets: list[str] = []
            if status in (301, 302, 303, 307, 308):
                targets.append(urljoin(url, headers["location"]))
            elif status == 200 and headers["content-type"].startswith("text/html"):
                links = crawl.links[url] = extract_html(body, url, source=url)
                targets += (link.url for link in links if assets or link.kind == "a")
            for target in targets if depth < max_depth else ():
                if target in seen or urlsplit(target).netloc != host:
                    continue
                if pattern is not None and pattern.search(target):
                    continue
                if rules is not None and not rules.can_fetch(target, "fetchrun"):
                    continue
                seen.add(target)
                following.append(target)
        level, depth = following, depth + 1
    return crawl


async def judge(
    session: client.ClientSession,
    site: GeneratedSite,
    link: Link,
    rules: Protego,
    pattern: re.Pattern[str],
) -> str:
    """A link checker's verdict, found over HTTP (redirects followed, ids from the final page)."""
    if urlsplit(link.url).netloc == urlsplit(site.base_url).netloc:
        if pattern.search(link.url):
            return "excluded"
        if not rules.can_fetch(link.url, "fetchrun"):
            return "robots"
    status, _, body = await fetch(session, link.url, redirects=True)
    if status in (403, 429):
        return "indeterminate"
    if status >= 400 or (link.fragment and link.fragment not in html_ids(body)):
        return "broken"
    return "ok"
