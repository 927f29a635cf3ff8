"""The issue-5 site fixture checked against reality: GeneratedSite and its manifests.

The manifests are derived from generation rules; here an independent BFS
fetches the real pages with our client, extracts links with
``runner.links.extract_html`` and judges them over HTTP, and must agree
exactly (statuses, source lines, verdicts). The docs tree: test_docs_tree_fixture.py.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import pytest
from protego import Protego
from servers.site import GeneratedSite
from servers.site_check import EXCLUDE, Headers, bfs, fetch, judge
from servers.site_manifest import Occurrence, SiteShape, crawl_manifest, link_manifest
from servers.site_pages import MISSING, render_page

import client
from runner.links import extract_html, extract_sitemap

SMALL = 500


@pytest.fixture(scope="module")
def site() -> Iterator[GeneratedSite]:
    with GeneratedSite(SMALL, crawl_delay=0.5) as generated:
        yield generated


@pytest.fixture
async def session() -> AsyncIterator[client.ClientSession]:
    async with client.ClientSession(connector=client.TCPConnector(limit=16)) as opened:
        yield opened


# -- HTTP behaviour ---------------------------------------------------------------


async def test_keep_alive_get_and_head_are_fast(
    site: GeneratedSite, session: client.ClientSession
) -> None:
    site.reset_counters()
    opened = site.connections_opened
    workers, each = 8, 250

    async def worker(k: int) -> None:
        for j in range(each):
            method = "HEAD" if j % 2 else "GET"
            status, _headers, body = await fetch(
                session, site.page_url((k * each + j) % SMALL), method=method
            )
            assert status == 200
            assert (body == b"") == (method == "HEAD")

    started = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(workers)))
    rate = workers * each / (time.perf_counter() - started)
    print(f"GeneratedSite: {rate:.0f} req/s over keep-alive (8 connections, GET/HEAD)")
    assert rate > 500
    assert site.connections_opened - opened <= workers  # every request reused a connection
    hits = site.hits
    assert sum(hits.values()) == workers * each
    assert hits["HEAD", "/p/1.html"] == 4
    assert hits["GET", "/p/0.html"] == 4


async def test_head_matches_get(site: GeneratedSite, session: client.ClientSession) -> None:
    status, got, body = await fetch(session, site.page_url(7))
    head_status, head, head_body = await fetch(session, site.page_url(7), method="HEAD")
    assert (status, head_status, head_body) == (200, 200, b"")
    for name in ("content-length", "etag", "last-modified", "content-type"):
        assert head[name] == got[name]
    assert int(got["content-length"]) == len(body)
    assert b"<title>Page 7</title>" in body


async def test_conditional_requests_get_304(
    site: GeneratedSite, session: client.ClientSession
) -> None:
    url = site.page_url(12)
    _status, got, _body = await fetch(session, url)
    etag, modified = got["etag"], got["last-modified"]
    assert etag == site.etag(12)
    assert modified == site.last_modified(12)
    site.reset_counters()
    cases: list[tuple[Headers, int]] = [
        ({"If-None-Match": etag}, 304),
        ({"If-None-Match": f'"other", W/{etag}'}, 304),  # weak comparison (RFC 9110 §13.1.2)
        ({"If-None-Match": "*"}, 304),
        ({"If-Modified-Since": modified}, 304),
        ({"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}, 200),
        ({"If-Modified-Since": "not a date"}, 200),
        ({"If-None-Match": '"other"', "If-Modified-Since": modified}, 200),  # INM wins
    ]
    for headers, expected in cases:
        status, answer, body = await fetch(session, url, headers=headers)
        assert status == expected, headers
        assert answer["etag"] == etag
        assert (body == b"") == (expected == 304)
    assert site.conditional == len(cases)
    assert site.not_modified == 4
    status, _answer, _body = await fetch(
        session, url, method="HEAD", headers={"If-None-Match": etag}
    )
    assert status == 304
    assert site.not_modified == 5


async def test_change_gives_new_validators_and_content_but_same_links(
    session: client.ClientSession,
) -> None:
    with GeneratedSite(300) as site:
        url = site.page_url(4)
        _status, before, old_body = await fetch(session, url)
        changed = site.change([3, "/p/4.html", site.page_url(5)])
        assert changed == [site.page_url(3), url, site.page_url(5)]
        status, after, new_body = await fetch(
            session, url, headers={"If-None-Match": before["etag"]}
        )
        assert status == 200
        assert after["etag"] != before["etag"]
        assert after["etag"] == site.etag(4) == '"p4-v1"'
        assert time_of(after["last-modified"]) > time_of(before["last-modified"])
        status, _, _ = await fetch(
            session, url, headers={"If-Modified-Since": before["last-modified"]}
        )
        assert status == 200
        assert len(new_body) > len(old_body)
        assert b"Revision 1" in new_body
        assert links_of(new_body, url) == links_of(old_body, url)
        status, _, _ = await fetch(session, url, headers={"If-None-Match": after["etag"]})
        assert status == 304
        with pytest.raises(ValueError, match="not a page"):
            site.change(["/r/3"])


async def test_a_second_crawl_revalidates_everything_but_the_changed_pages(
    session: client.ClientSession,
) -> None:
    with GeneratedSite(300) as site:
        crawl = site.expected_crawl(robots=False, assets=True)  # every kind of 200
        fetched = [url for url, status in crawl.items() if status == 200]
        validators = {}
        for url in fetched:
            _, headers, _ = await fetch(session, url)
            validators[url] = {"If-None-Match": headers["etag"]}
            validators[url]["If-Modified-Since"] = headers["last-modified"]
        changed = set(site.change(range(0, 300, 30)))
        site.reset_counters()
        fresh = set()
        for url in fetched:
            status, _, _ = await fetch(session, url, headers=validators[url])
            if status == 200:
                fresh.add(url)
            else:
                assert status == 304
        assert fresh == changed
        assert len(changed) == 10
        assert site.conditional == len(fetched)
        assert site.not_modified == len(fetched) - 10


def time_of(http_date: str) -> float:
    from email.utils import parsedate_to_datetime

    return parsedate_to_datetime(http_date).timestamp()


def links_of(body: bytes, url: str) -> list[tuple[int, str, str]]:
    return [(link.line, link.kind, link.url) for link in extract_html(body, url, source=url)]


async def test_robots_txt(site: GeneratedSite, session: client.ClientSession) -> None:
    status, headers, body = await fetch(session, site.url("/robots.txt"))
    assert status == 200
    assert headers["content-type"].startswith("text/plain")
    rules = Protego.parse(body.decode())
    assert not rules.can_fetch(site.url("/private/11.html"), "fetchrun")
    assert rules.can_fetch(site.page_url(11), "fetchrun")
    assert rules.crawl_delay("fetchrun") == 0.5
    assert list(rules.sitemaps) == [site.url("/sitemap.xml")]
    status, _, private = await fetch(session, site.url("/private/11.html"))
    assert status == 200
    assert b"Private 11" in private
    with GeneratedSite(3) as plain:
        _, _, body = await fetch(session, plain.url("/robots.txt"))
        assert b"Crawl-delay" not in body
        assert b"Disallow: /private/" in body


async def test_sitemaps_list_every_page_once(
    site: GeneratedSite, session: client.ClientSession
) -> None:
    _, headers, body = await fetch(session, site.url("/sitemap.xml"))
    links, is_index = extract_sitemap(body, source=site.url("/sitemap.xml"))
    assert not is_index
    assert headers["content-type"] == "application/xml"
    assert [link.url for link in links] == [site.page_url(i) for i in range(SMALL)]
    with GeneratedSite(2500) as big:
        _, _, body = await fetch(session, big.url("/sitemap.xml"))
        children, is_index = extract_sitemap(body, source=big.url("/sitemap.xml"))
        assert is_index
        assert [c.url for c in children] == [
            big.url("/sitemap-1.xml"),
            big.url("/sitemap-2.xml"),
        ]
        pages: list[str] = []
        for child in children:
            _, _, part = await fetch(session, child.url)
            found, nested = extract_sitemap(part, source=child.url)
            assert not nested
            pages += (link.url for link in found)
        assert pages == [big.page_url(i) for i in range(2500)]
        status, _, _ = await fetch(session, big.url("/sitemap-3.xml"))
        assert status == 404


@pytest.mark.parametrize("head_405", [True, False])
async def test_external_server_answers(session: client.ClientSession, head_405: bool) -> None:
    with GeneratedSite(20, head_405=head_405) as site:
        ext = site.external_url
        assert urlsplit(ext).netloc != urlsplit(site.base_url).netloc
        expected = {"/ok": 200, "/gone": 404, "/bot": 403, "/slow-down": 429, "/head-refused": 200}
        for path, status in expected.items():
            assert (await fetch(session, ext + path))[0] == status, path
        _, headers, body = await fetch(session, ext + "/bot")
        assert b"Just a moment" in body
        assert headers["cf-mitigated"] == "challenge"
        _, headers, _ = await fetch(session, ext + "/slow-down")
        assert headers["retry-after"] == "0"
        status, headers, _ = await fetch(session, ext + "/moved")
        assert (status, headers["location"]) == (301, "/ok")
        assert (await fetch(session, ext + "/moved", redirects=True))[0] == 200
        head = (await fetch(session, ext + "/head-refused", method="HEAD"))[0]
        assert head == (405 if head_405 else 200)
        assert site.external_hits["HEAD", "/head-refused"] == 1


async def test_big_site_needs_no_per_page_state(session: client.ClientSession) -> None:
    with GeneratedSite(200_000) as site:
        status, _, body = await fetch(session, site.page_url(199_999))
        assert status == 200
        assert b"<title>Page 199999</title>" in body
        assert (await fetch(session, site.page_url(200_000)))[0] == 404
        assert (await fetch(session, site.url("/p/007.html")))[0] == 404  # one URL per page
        assert site.version(199_999) == 0


# -- the manifests, against an independent BFS ----------------------------------------


@pytest.mark.parametrize(
    ("max_depth", "exclude", "robots", "assets"),
    [
        (10, EXCLUDE, True, False),
        (10, EXCLUDE, True, True),
        (3, None, False, False),
        (2, EXCLUDE, True, True),
    ],
)
async def test_expected_crawl_matches_a_real_bfs(
    site: GeneratedSite,
    session: client.ClientSession,
    max_depth: int,
    exclude: str | None,
    robots: bool,
    assets: bool,
) -> None:
    crawl = await bfs(
        site, session, max_depth=max_depth, exclude=exclude, robots=robots, assets=assets
    )
    expected = site.expected_crawl(max_depth, exclude=exclude, robots=robots, assets=assets)
    assert crawl.statuses == expected
    assert {200, 301, 404} <= set(expected.values())
    assert any("/private/" in url for url in expected) == (not robots)
    assert any("sort=" in url for url in expected) == (exclude is None)


def test_expected_crawl_depth_rule(site: GeneratedSite) -> None:
    assert site.expected_crawl(0) == {site.page_url(0): 200}
    assert site.expected_crawl(1) == {site.page_url(i): 200 for i in range(11)}
    first = site.expected_crawl(1, assets=True)
    assets = {site.url(p) for p in ("/static/app.css", "/static/missing.js", "/static/logo.png")}
    assert set(first) == {site.page_url(i) for i in range(11)} | assets
    assert first[site.url("/static/missing.js")] == 404
    second = site.expected_crawl(2)  # page 5 is at depth 1, so its redirect /r/5 at depth 2
    assert second[site.url("/r/5")] == 301
    assert site.url("/r/94") not in second
    assert site.url("/r/94") in site.expected_crawl(3)  # page 94 is at depth 2


async def test_expected_links_match_an_independent_check(
    site: GeneratedSite, session: client.ClientSession
) -> None:
    crawl = await bfs(site, session)
    rules = Protego.parse((await fetch(session, site.url("/robots.txt")))[2].decode())
    pattern = re.compile(EXCLUDE)
    verdicts: dict[str, str] = {}
    buckets: dict[str, set[Occurrence]] = {
        k: set() for k in ("ok", "broken", "indeterminate", "excluded", "robots")
    }
    for links in crawl.links.values():
        for link in links:
            target = link.url + (f"#{link.fragment}" if link.fragment else "")
            if target not in verdicts:
                verdicts[target] = await judge(session, site, link, rules, pattern)
            buckets[verdicts[target]].add((link.source, link.line, target))
    manifest = site.expected_links()
    assert len(crawl.links) == SMALL  # every page is parsed
    assert manifest.broken == buckets["broken"]
    assert manifest.indeterminate == buckets["indeterminate"]
    assert manifest.excluded == buckets["excluded"]
    assert manifest.robots == buckets["robots"]
    assert manifest.ok == buckets["ok"]
    assert manifest.ok_count == len(buckets["ok"])
    assert manifest.verdicts == verdicts
    assert all(buckets.values())  # every verdict occurs on a 500-page site


def test_manifest_lines_point_at_the_links_at_default_size() -> None:
    shape = SiteShape(5000, "http://127.0.0.1:1", "http://127.0.0.1:2")
    manifest = link_manifest(shape, exclude=EXCLUDE)
    missing_pages = sum(1 for i in range(5000) if i % MISSING[0] == MISSING[1])
    assert sum("/missing/" in target for _, _, target in manifest.broken) == missing_pages
    for source, line, target in manifest.broken | manifest.indeterminate | manifest.robots:
        i = int(source.rsplit("/", 1)[1].removesuffix(".html"))
        html_line = render_page(i, 0, 5000, shape.external).decode().split("\n")[line - 1]
        href = target.removeprefix(shape.base).removeprefix(f"/p/{i}.html")
        assert f'="{href}"' in html_line, (source, line, target)
    started = time.perf_counter()
    big = crawl_manifest(
        SiteShape(200_000, shape.base, shape.external),
        10,
        exclude=EXCLUDE,
        robots=True,
        assets=True,
    )
    assert time.perf_counter() - started < 10
    assert (
        sum(status == 200 for status in big.values()) == 200_000 + 3 - 1
    )  # + 2 assets, - missing.js
