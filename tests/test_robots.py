"""RobotsPolicy against real loopback servers serving robots.txt variants (RFC 9309)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from servers import ScriptedConnection, ScriptedServer, http_response, parse_wire

import client
from runner.crawl.robots import MAX_ROBOTS_BYTES, RobotsPolicy, robots_url
from runner.crawl.urlnorm import host_key

UA = "fetchrun/0.1 (+https://example.invalid/bot)"

Route = bytes | Callable[[ScriptedConnection], Awaitable[None]]


class Site:
    """A keep-alive HTTP server answering per path; counts requests per path."""

    def __init__(self, server: ScriptedServer) -> None:
        self.server = server
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        server.serve(self._handle)

    def robots(self, text: str, status: int = 200) -> None:
        self.routes["/robots.txt"] = http_response(status, text.encode())

    def url(self, path: str = "/") -> str:
        return self.server.url(path)

    @property
    def key(self) -> str:
        return host_key(self.url())

    async def _handle(self, conn: ScriptedConnection) -> None:
        while True:
            raw = await conn.read_request()
            path = raw.split(b" ", 2)[1].decode()
            self.hits[path] += 1
            route = self.routes.get(path, http_response(404, b"no"))
            if isinstance(route, bytes):
                await conn.send(route)
            else:
                await route(conn)
                return


async def make_site() -> Site:
    server = ScriptedServer()
    await server.start()
    return Site(server)


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    made = await make_site()
    yield made
    await made.server.close()


@pytest.fixture
async def other_site() -> AsyncIterator[Site]:
    made = await make_site()
    yield made
    await made.server.close()


@pytest.fixture
async def session() -> AsyncIterator[client.ClientSession]:
    async with client.ClientSession() as made:
        yield made


@pytest.fixture
async def policy(session: client.ClientSession) -> AsyncIterator[RobotsPolicy]:
    made = RobotsPolicy(session, UA, timeout=2.0)
    yield made
    await made.close()


async def verdicts(policy: RobotsPolicy, site: Site, *paths: str) -> dict[str, bool]:
    return {path: await policy.allowed(site.url(path)) for path in paths}


# -- rules -----------------------------------------------------------------------------


async def test_disallow_paths_apply_to_our_product_token(policy: RobotsPolicy, site: Site) -> None:
    site.robots(
        "User-agent: otherbot\nDisallow: /\n\n"
        "User-agent: fetchrun\nDisallow: /private\nDisallow: /tmp/\n\n"
        "User-agent: *\nDisallow: /everyone-else\n"
    )
    assert policy.token == "fetchrun"
    assert await verdicts(policy, site, "/", "/private", "/private/x", "/tmp", "/tmp/a") == {
        "/": True,
        "/private": False,
        "/private/x": False,
        "/tmp": True,
        "/tmp/a": False,
    }
    # our group replaces "*" entirely (RFC 9309 §2.2.1)
    assert await policy.allowed(site.url("/everyone-else")) is True
    assert site.hits["/robots.txt"] == 1
    _, headers, _ = parse_wire(site.server.requests[0])
    assert headers["User-Agent"] == UA  # the full string is sent, the token is matched


async def test_star_group_applies_when_no_group_names_us(policy: RobotsPolicy, site: Site) -> None:
    site.robots("User-agent: googlebot\nDisallow: /g\n\nUser-agent: *\nDisallow: /all\n")
    assert await verdicts(policy, site, "/g", "/all/x", "/ok") == {
        "/g": True,
        "/all/x": False,
        "/ok": True,
    }


async def test_longest_match_wins_and_allow_overrides(policy: RobotsPolicy, site: Site) -> None:
    site.robots(
        "User-agent: *\nDisallow: /docs/\nAllow: /docs/public/\nDisallow: /docs/public/drafts\n"
    )
    assert await verdicts(
        policy, site, "/docs/", "/docs/x", "/docs/public/", "/docs/public/a", "/docs/public/drafts1"
    ) == {
        "/docs/": False,
        "/docs/x": False,
        "/docs/public/": True,
        "/docs/public/a": True,
        "/docs/public/drafts1": False,
    }


async def test_wildcard_and_end_anchor(policy: RobotsPolicy, site: Site) -> None:
    site.robots("User-agent: *\nDisallow: /*.pdf$\nDisallow: /*?sessionid=\nDisallow: /a*/b\n")
    assert await verdicts(
        policy, site, "/x.pdf", "/d/x.pdf", "/x.pdf?dl=1", "/x.pdfx", "/p?sessionid=1", "/p?q=1",
        "/abc/b", "/ab",
    ) == {
        "/x.pdf": False,
        "/d/x.pdf": False,
        "/x.pdf?dl=1": True,
        "/x.pdfx": True,
        "/p?sessionid=1": False,
        "/p?q=1": True,
        "/abc/b": False,
        "/ab": True,
    }  # fmt: skip


async def test_rules_match_percent_encoding_either_way(policy: RobotsPolicy, site: Site) -> None:
    site.robots("User-agent: *\nDisallow: /caf%C3%A9\nDisallow: /~joe\n")
    assert await policy.allowed(site.url("/café/menu")) is False
    assert await policy.allowed(site.url("/%7Ejoe/x")) is False
    assert await policy.allowed(site.url("/cafe")) is True


async def test_crawl_delay_and_request_rate(
    policy: RobotsPolicy, site: Site, other_site: Site
) -> None:
    site.robots("User-agent: *\nCrawl-delay: 5\n\nUser-agent: fetchrun\nCrawl-delay: 2.5\n")
    other_site.robots("User-agent: *\nRequest-rate: 1/4\n")
    assert policy.crawl_delay(site.key) is None  # nothing fetched yet
    assert await policy.allowed(site.url("/")) is True
    assert await policy.allowed(other_site.url("/")) is True
    assert policy.crawl_delay(site.key) == 2.5
    assert policy.crawl_delay(other_site.key) == 4.0
    assert policy.crawl_delay("unknown.example") is None


async def test_no_crawl_delay_and_bad_crawl_delay(policy: RobotsPolicy, site: Site) -> None:
    site.robots("User-agent: *\nCrawl-delay: soon\nDisallow: /x\n")
    assert await policy.allowed(site.url("/")) is True
    assert policy.crawl_delay(site.key) is None


async def test_sitemaps_are_normalized_and_deduplicated(policy: RobotsPolicy, site: Site) -> None:
    site.robots(
        "Sitemap: HTTP://Example.COM:80/sitemap.xml\n"
        "User-agent: *\nDisallow:\n"
        "Sitemap: http://example.com/sitemap.xml#x\n"
        "Sitemap: https://cdn.example/news.xml\n"
        "Sitemap: /relative.xml\n"
        "Sitemap: ftp://example.com/s.xml\n"
    )
    assert policy.sitemaps(site.key) == []
    assert await policy.allowed(site.url("/any")) is True
    assert policy.sitemaps(site.key) == [
        "http://example.com/sitemap.xml",
        "https://cdn.example/news.xml",
    ]


async def test_a_byte_order_mark_does_not_hide_the_first_line(
    policy: RobotsPolicy, site: Site
) -> None:
    site.routes["/robots.txt"] = http_response(200, b"\xef\xbb\xbfUser-agent: *\nDisallow: /x\n")
    assert await policy.allowed(site.url("/x")) is False


async def test_robots_txt_itself_is_always_allowed(policy: RobotsPolicy, site: Site) -> None:
    site.robots("User-agent: *\nDisallow: /\n")
    assert await policy.allowed(site.url("/page")) is False
    assert await policy.allowed(site.url("/robots.txt")) is True


# -- fetch outcomes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "allowed"),
    [
        (404, True),  # unavailable: no rules (§2.3.1.3)
        (410, True),
        (401, True),
        (403, True),
        (429, False),  # a rate limit is not an absence of rules
        (500, False),  # unreachable: complete disallow (§2.3.1.4)
        (503, False),
    ],
)
async def test_status_outcomes(
    policy: RobotsPolicy, site: Site, status: int, allowed: bool
) -> None:
    site.robots("User-agent: *\nAllow: /\n", status=status)
    assert await policy.allowed(site.url("/page")) is allowed
    assert await policy.allowed(site.url("/other")) is allowed
    assert site.hits["/robots.txt"] == 1  # the outcome is cached, whatever it was
    assert policy.crawl_delay(site.key) is None
    assert policy.sitemaps(site.key) == []


async def test_redirect_to_another_robots_txt_is_followed(
    policy: RobotsPolicy, site: Site, other_site: Site
) -> None:
    target = other_site.url("/robots.txt")
    site.routes["/robots.txt"] = http_response(301, headers=[("Location", target)])
    other_site.robots("User-agent: *\nDisallow: /secret\n")
    # The rules fetched through the redirect govern the origin that was asked (§2.3.1.2).
    assert await policy.allowed(site.url("/secret/x")) is False
    assert await policy.allowed(site.url("/open")) is True
    assert other_site.hits["/robots.txt"] == 1
    # The redirect target's own origin is not thereby known: it gets its own fetch.
    assert await policy.allowed(other_site.url("/secret")) is False
    assert other_site.hits["/robots.txt"] == 2


async def test_five_redirects_are_followed(policy: RobotsPolicy, site: Site) -> None:
    chain(site, 5)
    site.routes["/r5"] = http_response(200, b"User-agent: *\nDisallow: /deep\n")
    assert await policy.allowed(site.url("/deep")) is False
    assert site.hits["/r5"] == 1


async def test_more_than_five_redirects_mean_no_robots_txt(
    policy: RobotsPolicy, site: Site
) -> None:
    chain(site, 6)
    site.routes["/r6"] = http_response(200, b"User-agent: *\nDisallow: /\n")
    assert await policy.allowed(site.url("/deep")) is True  # §2.3.1.2: "unavailable"
    assert site.hits["/r6"] == 0


def chain(site: Site, hops: int) -> None:
    """/robots.txt -> /r1 -> ... -> /r<hops>."""
    names = ["/robots.txt", *(f"/r{i}" for i in range(1, hops + 1))]
    for here, there in itertools.pairwise(names):
        site.routes[here] = http_response(302, headers=[("Location", there)])


async def test_oversized_body_is_cut_at_the_cap(policy: RobotsPolicy, site: Site) -> None:
    head = "User-agent: *\nDisallow: /early\n"
    filler = "# " + "x" * 98 + "\n"
    body = head + filler * (MAX_ROBOTS_BYTES // len(filler) + 1) + "Disallow: /late\n"
    assert len(body) > MAX_ROBOTS_BYTES
    site.robots(body)
    assert await policy.allowed(site.url("/early")) is False
    assert await policy.allowed(site.url("/late")) is True  # beyond 500 KiB: never read


async def test_a_huge_body_is_not_read_to_its_end(
    session: client.ClientSession, site: Site
) -> None:
    async def endless(conn: ScriptedConnection) -> None:
        await conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n")
        await conn.send(b"User-agent: *\nDisallow: /x\n")
        line = b"#" * 1023 + b"\n"
        while True:  # until the client hangs up (then a write fails: peer gone)
            await conn.send(line * 64)

    site.routes["/robots.txt"] = endless
    policy = RobotsPolicy(session, UA, timeout=5.0)
    started = time.monotonic()
    assert await policy.allowed(site.url("/x")) is False
    assert await policy.allowed(site.url("/y")) is True
    assert time.monotonic() - started < 3.0


async def test_a_partial_last_line_at_the_cap_is_dropped(policy: RobotsPolicy, site: Site) -> None:
    rule = "Disallow: /cut\n"
    group = "User-agent: *\n"
    # one long comment line so that exactly "Disallow: /c" fits under the cap
    head = group + "#" * (MAX_ROBOTS_BYTES - len(group) - len("Disallow: /c") - 1) + "\n"
    body = head + rule
    cut = MAX_ROBOTS_BYTES - len(head)
    assert 0 < cut < len(rule)
    site.robots(body + "#" * 100)
    assert await policy.allowed(site.url("/c")) is True
    assert await policy.allowed(site.url("/cut")) is True


async def test_slow_server_times_out_to_disallow(session: client.ClientSession, site: Site) -> None:
    async def slow(conn: ScriptedConnection) -> None:
        await conn.sleep(30)

    site.routes["/robots.txt"] = slow
    policy = RobotsPolicy(session, UA, timeout=0.3)
    started = time.monotonic()
    assert await policy.allowed(site.url("/page")) is False
    assert time.monotonic() - started < 2.0
    assert await policy.allowed(site.url("/other")) is False
    assert policy.fetches == 1


async def test_connection_refused_and_reset_mean_disallow(
    policy: RobotsPolicy, site: Site, unused_port: int
) -> None:
    assert await policy.allowed(f"http://127.0.0.1:{unused_port}/x") is False

    async def reset(conn: ScriptedConnection) -> None:
        conn.reset()

    site.routes["/robots.txt"] = reset
    assert await policy.allowed(site.url("/x")) is False


async def test_urls_that_are_not_http_are_never_allowed(policy: RobotsPolicy) -> None:
    assert await policy.allowed("ftp://127.0.0.1/x") is False
    assert await policy.allowed("/relative") is False
    assert policy.fetches == 0


# -- sharing, caching, memory --------------------------------------------------------


async def test_concurrent_calls_for_one_host_share_one_fetch(
    policy: RobotsPolicy, site: Site
) -> None:
    async def slowly(conn: ScriptedConnection) -> None:
        await conn.sleep(0.2)
        await conn.send(http_response(200, b"User-agent: *\nDisallow: /odd\n"))

    site.routes["/robots.txt"] = slowly
    paths = [f"/odd/{i}" if i % 2 else f"/even/{i}" for i in range(50)]
    results = await asyncio.gather(*(policy.allowed(site.url(p)) for p in paths))
    assert results == [i % 2 == 0 for i in range(50)]
    assert site.hits["/robots.txt"] == 1
    assert policy.fetches == 1


async def test_one_waiter_cancelled_does_not_cancel_the_shared_fetch(
    policy: RobotsPolicy, site: Site
) -> None:
    async def slowly(conn: ScriptedConnection) -> None:
        await conn.sleep(0.2)
        await conn.send(http_response(200, b"User-agent: *\nDisallow: /no\n"))

    site.routes["/robots.txt"] = slowly
    first = asyncio.create_task(policy.allowed(site.url("/no")))
    second = asyncio.create_task(policy.allowed(site.url("/no")))
    await asyncio.sleep(0.05)
    first.cancel()
    assert await second is False
    with pytest.raises(asyncio.CancelledError):
        await first
    assert site.hits["/robots.txt"] == 1


async def test_close_cancels_fetches_in_progress(session: client.ClientSession, site: Site) -> None:
    async def slow(conn: ScriptedConnection) -> None:
        await conn.sleep(30)

    site.routes["/robots.txt"] = slow
    policy = RobotsPolicy(session, UA, timeout=60.0)
    waiter = asyncio.create_task(policy.allowed(site.url("/x")))
    await asyncio.sleep(0.05)
    await policy.close()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert "pending=0" in repr(policy)


async def test_hosts_are_kept_in_a_bounded_lru(session: client.ClientSession) -> None:
    sites = [await make_site() for _ in range(3)]
    try:
        for made in sites:
            made.robots("User-agent: *\nDisallow: /x\n")
        policy = RobotsPolicy(session, UA, max_hosts=2)
        a, b, c = sites
        for made in (a, b, a, c):  # a used after b: b is the least recent when c comes
            assert await policy.allowed(made.url("/x")) is False
        assert "origins=2" in repr(policy)
        assert policy.fetches == 3
        assert await policy.allowed(a.url("/x")) is False  # still cached
        assert policy.fetches == 3
        assert await policy.allowed(b.url("/x")) is False  # evicted: fetched again
        assert (a.hits["/robots.txt"], b.hits["/robots.txt"], c.hits["/robots.txt"]) == (1, 2, 1)
    finally:
        for made in sites:
            await made.server.close()


async def test_rules_are_refetched_after_max_age(session: client.ClientSession, site: Site) -> None:
    now = [1000.0]
    policy = RobotsPolicy(session, UA, max_age=60.0, clock=lambda: now[0])
    site.robots("User-agent: *\nDisallow: /x\n")
    assert await policy.allowed(site.url("/x")) is False
    site.robots("User-agent: *\nDisallow: /y\n")
    now[0] += 59.0
    assert await policy.allowed(site.url("/x")) is False  # still the cached copy
    now[0] += 1.0
    assert await policy.allowed(site.url("/x")) is True
    assert await policy.allowed(site.url("/y")) is False
    assert site.hits["/robots.txt"] == 2


async def test_http_and_https_of_one_host_are_separate_origins(
    policy: RobotsPolicy, site: Site
) -> None:
    site.robots("User-agent: *\nDisallow: /x\n")
    assert await policy.allowed(site.url("/x")) is False
    # same host key, other scheme: nothing cached for it (and nothing listens for TLS)
    https = site.url("/x").replace("http://", "https://")
    assert await policy.allowed(https) is False  # unreachable: disallow
    assert policy.fetches == 2


# -- helpers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://Example.COM:80/a/b?c#d", "http://example.com/robots.txt"),
        ("https://h:8443/x", "https://h:8443/robots.txt"),
        ("https://h:443", "https://h/robots.txt"),
        ("http://[::1]:8080/", "http://[::1]:8080/robots.txt"),
    ],
)
def test_robots_url(url: str, expected: str) -> None:
    assert robots_url(url) == expected


def test_robots_url_refuses_non_http() -> None:
    with pytest.raises(ValueError, match="http"):
        robots_url("ftp://h/")


@pytest.mark.parametrize(
    ("agent", "token"),
    [
        ("fetchrun/0.1 (+https://x.invalid)", "fetchrun"),
        ("My_Bot-2/1.0", "My_Bot-"),
        ("  fetchrun", "fetchrun"),
        ("Mozilla/5.0 (compatible; fetchrun)", "Mozilla"),
    ],
)
def test_product_token(session: client.ClientSession, agent: str, token: str) -> None:
    assert RobotsPolicy(session, agent).token == token


def test_max_hosts_must_be_positive(session: client.ClientSession) -> None:
    with pytest.raises(ValueError, match="max_hosts"):
        RobotsPolicy(session, UA, max_hosts=0)
