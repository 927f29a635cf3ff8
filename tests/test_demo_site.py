"""The built-in demo site (runner.demo_site) and the demo job (sample_jobs/demo.yaml).

Checked twice over: with raw sockets and a tiny response reader (exact bytes,
keep-alive, pipelining, HEAD) and with our own client (redirects, gzip).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

import client
from jobs import count_requests, iter_requests, load_job
from runner.demo_site import API_TOTAL, PAGE_COUNT, DemoSite, page_items, start_demo_site

ROOT = Path(__file__).resolve().parent.parent
DEMO_JOB = ROOT / "sample_jobs" / "demo.yaml"
SLOW = 0.05
MIB = 1024 * 1024  # the site reads request bodies up to 1 MiB; one byte more gets 413

Head = dict[str, str]


@pytest.fixture
async def site() -> AsyncIterator[DemoSite]:
    demo = await start_demo_site(slow_delay=SLOW, retry_after=2)
    yield demo
    await demo.close()


class Conn:
    """One raw connection to the site, with a minimal HTTP/1.1 response reader."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, site: DemoSite) -> Conn:
        host, port = site.base_url.removeprefix("http://").split(":")
        return cls(*await asyncio.open_connection(host, int(port)))

    async def send(self, *requests: str) -> None:
        self.writer.write("".join(requests).encode("latin-1"))
        await self.writer.drain()

    async def response(self, head_only: bool = False) -> tuple[int, Head, bytes]:
        raw = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *lines = raw.decode("latin-1").split("\r\n")[:-2]
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.lower()] = value.strip()
        length = 0 if head_only else int(headers["content-length"])
        return int(status_line.split()[1]), headers, await self.reader.readexactly(length)

    async def at_eof(self) -> bool:
        return await asyncio.wait_for(self.reader.read(1), 2) == b""

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def get(path: str, *extra: str, method: str = "GET", version: str = "1.1") -> str:
    return "".join([f"{method} {path} HTTP/{version}\r\nHost: demo\r\n", *extra, "\r\n"])


async def fetch(site: DemoSite, request: str, head_only: bool = False) -> tuple[int, Head, bytes]:
    conn = await Conn.open(site)
    try:
        await conn.send(request)
        return await conn.response(head_only)
    finally:
        await conn.close()


# ------------------------------------------------------------------ content


async def test_index_links_to_every_page(site: DemoSite) -> None:
    status, headers, body = await fetch(site, get("/"))
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert int(headers["content-length"]) == len(body)
    assert abs(parsedate_to_datetime(headers["date"]).timestamp() - time.time()) < 5
    html = body.decode()
    assert "<title>fetchrun demo site</title>" in html
    hrefs = set(re.findall(r'href="([^"]+)"', html))
    pages = {f"/pages/{n}" for n in range(1, PAGE_COUNT + 1)}
    others = {"/api/items?page=1", "/moved", "/missing", "/slow", "/flaky", "/gzip"}
    assert pages | others | {"/robots.txt", "/sitemap.xml"} <= hrefs


async def test_pages_are_complete_and_deterministic(site: DemoSite) -> None:
    async with client.ClientSession() as session:
        for n in range(1, PAGE_COUNT + 1):
            async with session.get(f"{site.base_url}/pages/{n}") as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
                html = await resp.text()
            assert f"<title>Catalogue page {n} of {PAGE_COUNT}</title>" in html
            assert f'<link rel="canonical" href="/pages/{n}">' in html
            found = re.findall(r'<h2>(Name \d+)</h2><span class="price">(\d+\.\d\d)</span>', html)
            assert found == page_items(n)
            assert (f'<a class="next" href="/pages/{n + 1}">' in html) == (n < PAGE_COUNT)
        async with session.get(f"{site.base_url}/pages/3") as again:
            assert await again.text() == (await fetch(site, get("/pages/3")))[2].decode()


async def test_page_sizes_mix_small_medium_large(site: DemoSite) -> None:
    sizes = [len((await fetch(site, get(f"/pages/{n}")))[2]) for n in range(1, PAGE_COUNT + 1)]
    buckets = {"2K": 0, "20K": 0, "200K": 0}
    for size in sizes:
        if 1_500 <= size <= 3_000:
            buckets["2K"] += 1
        elif 15_000 <= size <= 30_000:
            buckets["20K"] += 1
        elif 150_000 <= size <= 250_000:
            buckets["200K"] += 1
    assert sum(buckets.values()) == PAGE_COUNT
    assert min(buckets.values()) >= 3


async def test_item_names_are_unique_across_pages() -> None:
    names = [name for n in range(1, PAGE_COUNT + 1) for name, _ in page_items(n)]
    assert len(names) == len(set(names))
    assert names[0] == "Name 1"


@pytest.mark.parametrize("path", ["/pages/0", "/pages/21", "/pages/01", "/nope", "/pages/1/x"])
async def test_unknown_paths_are_404(site: DemoSite, path: str) -> None:
    status, headers, body = await fetch(site, get(path))
    assert status == 404
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert b"404 Not Found" in body
    assert site.stats == {"<unknown>": 1}


async def test_api_pages_add_up_to_total(site: DemoSite) -> None:
    ids: list[int] = []
    async with client.ClientSession() as session:
        page: int | None = 1
        while page is not None:
            async with session.get(f"{site.base_url}/api/items", params={"page": page}) as r:
                assert r.status == 200
                assert r.headers["Content-Type"] == "application/json; charset=utf-8"
                data = await r.json()
            assert data["meta"]["total"] == API_TOTAL
            ids += [item["id"] for item in data["items"]]
            nxt = data["links"]["next"]
            page = int(nxt.rpartition("=")[2]) if nxt else None
    assert ids == list(range(1, API_TOTAL + 1))


@pytest.mark.parametrize(
    ("query", "status", "first_id"),
    [
        ("", 200, 1),
        ("?page=2", 200, 21),
        ("?page=11", 404, None),
        ("?page=x", 400, None),
        ("?page=%C2%B2", 400, None),
    ],
)
async def test_api_query_handling(
    site: DemoSite, query: str, status: int, first_id: int | None
) -> None:
    got, _, body = await fetch(site, get(f"/api/items{query}"))
    data = json.loads(body)
    assert got == status
    if first_id is None:
        assert data["error"]
    else:
        assert data["items"][0]["id"] == first_id


async def test_moved_is_a_301_to_page_1(site: DemoSite) -> None:
    status, headers, _ = await fetch(site, get("/moved"))
    assert (status, headers["location"]) == (301, "/pages/1")
    async with client.ClientSession() as session, session.get(f"{site.base_url}/moved") as r:
        assert r.status == 200
        assert str(r.url) == f"{site.base_url}/pages/1"
        assert [h.status for h in r.history] == [301]
    assert (site.stats["/moved"], site.stats["/pages/1"]) == (2, 1)


async def test_missing_is_404(site: DemoSite) -> None:
    async with client.ClientSession() as session, session.get(f"{site.base_url}/missing") as r:
        assert r.status == 404
        assert "<title>404 Not Found</title>" in await r.text()


async def test_slow_waits_slow_delay(site: DemoSite) -> None:
    start = time.monotonic()
    status, _, _ = await fetch(site, get("/slow"))
    assert status == 200
    assert time.monotonic() - start >= SLOW


async def test_flaky_fails_twice_with_retry_after_on_one_connection(site: DemoSite) -> None:
    conn = await Conn.open(site)
    seen = []
    for _ in range(4):
        await conn.send(get("/flaky"))
        status, headers, _ = await conn.response()
        seen.append((status, headers.get("retry-after")))
    await conn.close()
    assert seen == [(503, "2"), (503, "2"), (200, None), (200, None)]


async def test_flaky_counter_is_per_site(site: DemoSite) -> None:
    async with client.ClientSession() as session:
        for expected in (503, 503, 200):
            async with session.get(f"{site.base_url}/flaky") as r:
                assert r.status == expected
        async with await start_demo_site(retry_after=7) as other:
            async with session.get(f"{other.base_url}/flaky") as r:
                assert (r.status, r.headers["Retry-After"]) == (503, "7")


async def test_robots_and_sitemap(site: DemoSite) -> None:
    status, headers, body = await fetch(site, get("/robots.txt"))
    assert (status, headers["content-type"]) == (200, "text/plain; charset=utf-8")
    assert f"Sitemap: {site.base_url}/sitemap.xml" in body.decode()
    status, headers, body = await fetch(site, get("/sitemap.xml"))
    assert (status, headers["content-type"]) == (200, "application/xml; charset=utf-8")
    locs = re.findall(r"<loc>([^<]+)</loc>", body.decode())
    assert locs == [f"{site.base_url}/pages/{n}" for n in range(1, PAGE_COUNT + 1)]


# ------------------------------------------------------------------ encoding


@pytest.mark.parametrize(
    ("accept", "gzipped"),
    [("gzip", True), ("deflate, gzip;q=0.5", True), ("*", True), ("gzip;q=0", False),
     ("identity", False), (None, False), ("br, *;q=0", False)],
)  # fmt: skip
async def test_gzip_follows_accept_encoding(
    site: DemoSite, accept: str | None, gzipped: bool
) -> None:
    extra = [f"Accept-Encoding: {accept}\r\n"] if accept is not None else []
    status, headers, body = await fetch(site, get("/gzip", *extra))
    assert status == 200
    assert headers["vary"] == "Accept-Encoding"
    assert (headers.get("content-encoding") == "gzip") is gzipped
    html = gzip.decompress(body) if gzipped else body
    assert b"<title>Compressed page</title>" in html
    assert len(body) < len(html) if gzipped else len(body) == len(html)


async def test_gzip_decodes_in_our_client(site: DemoSite) -> None:
    async with client.ClientSession() as session, session.get(f"{site.base_url}/gzip") as r:
        assert r.headers["Content-Encoding"] == "gzip"
        text = await r.text()
    assert "<title>Compressed page</title>" in text
    assert int(r.headers["Content-Length"]) < len(text)


# ------------------------------------------------------------------ protocol


async def test_head_has_gets_headers_and_no_body(site: DemoSite) -> None:
    _, get_headers, body = await fetch(site, get("/pages/5"))
    conn = await Conn.open(site)
    await conn.send(get("/pages/5", method="HEAD"), get("/robots.txt"))
    status, headers, _ = await conn.response(head_only=True)
    assert status == 200
    assert headers["content-length"] == get_headers["content-length"] == str(len(body))
    # No body bytes follow: the next thing on the wire is the next response.
    assert (await conn.response())[0] == 200
    await conn.close()
    async with client.ClientSession() as session, session.head(f"{site.base_url}/") as r:
        assert (r.status, await r.read()) == (200, b"")


async def test_keep_alive_and_pipelining(site: DemoSite) -> None:
    conn = await Conn.open(site)
    await conn.send(get("/pages/1"), get("/missing"), get("/slow"), get("/pages/2"))
    statuses = [(await conn.response())[0] for _ in range(4)]
    assert statuses == [200, 404, 200, 200]
    await conn.send(get("/"))  # still open after all of them
    status, headers, _ = await conn.response()
    assert status == 200
    assert "connection" not in headers
    await conn.close()


@pytest.mark.parametrize(
    ("request_text", "closes"),
    [
        (get("/", "Connection: close\r\n"), True),
        (get("/", version="1.0"), True),
        (get("/", "Connection: keep-alive\r\n", version="1.0"), False),
    ],
)
async def test_connection_header_is_honoured(
    site: DemoSite, request_text: str, closes: bool
) -> None:
    conn = await Conn.open(site)
    await conn.send(request_text)
    status, headers, _ = await conn.response()
    assert status == 200
    assert headers["connection"] == ("close" if closes else "keep-alive")
    if closes:
        assert await conn.at_eof()
    else:
        await conn.send(request_text)
        assert (await conn.response())[0] == 200
    await conn.close()


async def test_other_methods_get_405_with_allow(site: DemoSite) -> None:
    conn = await Conn.open(site)
    post = get("/pages/1", "Content-Length: 5\r\n", method="POST") + "x=123"
    await conn.send(post, get("/flaky", method="DELETE"))
    for _ in range(2):
        status, headers, _ = await conn.response()
        assert (status, headers["allow"]) == (405, "GET, HEAD")
    await conn.send(get("/pages/1"))  # the body was consumed: the connection goes on
    assert (await conn.response())[0] == 200
    await conn.close()
    assert (await fetch(site, get("/flaky")))[0] == 503  # DELETE did not count as a try


@pytest.mark.parametrize(
    ("request_text", "status"),
    [
        ("NOT HTTP AT ALL\r\n\r\n", 400),
        (get("/", "Content-Length: 1\r\nContent-Length: 2\r\n"), 400),
        (get("/", f"X-Big: {'a' * 100_000}\r\n"), 431),
        (get("/", f"Content-Length: {2 * MIB}\r\n", method="POST") + "x" * (MIB + 1), 413),
    ],
)
async def test_bad_requests_get_an_error_and_close(
    site: DemoSite, request_text: str, status: int
) -> None:
    conn = await Conn.open(site)
    await conn.send(request_text)
    got, headers, _ = await conn.response()
    assert (got, headers["connection"]) == (status, "close")
    assert await conn.at_eof()
    await conn.close()


async def test_upgrade_requests_are_answered_then_closed(site: DemoSite) -> None:
    conn = await Conn.open(site)
    await conn.send(get("/", "Connection: Upgrade\r\nUpgrade: websocket\r\n"))
    status, headers, _ = await conn.response()
    assert (status, headers["connection"]) == (200, "close")
    assert await conn.at_eof()
    await conn.close()


async def test_stats_count_requests_per_path(site: DemoSite) -> None:
    conn = await Conn.open(site)
    await conn.send(get("/"), get("/pages/2"), get("/pages/2", method="HEAD"), get("/x"))
    for head_only in (False, False, True, False):
        await conn.response(head_only)
    await conn.close()
    assert site.stats == {"/": 1, "/pages/2": 2, "<unknown>": 1}


async def test_close_drops_connections_and_is_idempotent() -> None:
    demo = await start_demo_site()
    idle = await Conn.open(demo)
    busy = await Conn.open(demo)
    await busy.send(get("/pages/1"))
    await busy.response()
    await demo.close()
    assert await idle.at_eof()
    assert await busy.at_eof()
    await demo.close()
    with pytest.raises(OSError):
        await Conn.open(demo)
    await idle.close()
    await busy.close()


async def test_python_dash_m_serves_until_interrupted() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "runner.demo_site", "--port", "0",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
    base = re.search(r"http://127\.0\.0\.1:\d+", line)
    assert base is not None
    async with client.ClientSession() as session, session.get(f"{base[0]}/") as r:
        assert r.status == 200
    proc.send_signal(signal.SIGINT)
    rest = await asyncio.wait_for(proc.stdout.read(), 10)
    assert await proc.wait() == 0
    assert f"DEMO_BASE={base[0]}" in rest.decode()


# ------------------------------------------------------------------ demo job


async def test_demo_job_loads_and_expands(site: DemoSite, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_BASE", site.base_url)
    job = load_job(DEMO_JOB)
    assert count_requests(job) == 1 + PAGE_COUNT + 10 + 5
    assert (job.limits.concurrency, job.limits.per_host) == (8, 4)
    assert (job.retry.attempts, set(job.retry.on_status), job.timeout.total) == (3, {503}, 10.0)
    assert job.output.jsonl == DEMO_JOB.parent / "demo-out" / "results.jsonl"
    assert job.output.bodies == DEMO_JOB.parent / "demo-out" / "bodies"
    urls = [spec.url for spec in iter_requests(job)]
    assert len(urls) == len(set(urls)) == count_requests(job)
    assert all(url.startswith(site.base_url + "/") for url in urls)


async def test_every_demo_request_meets_its_expectation(
    site: DemoSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEMO_BASE", site.base_url)
    attempts: dict[str, int] = {}
    async with client.ClientSession() as session:
        for spec in iter_requests(load_job(DEMO_JOB)):
            retry = spec.options.retry
            for attempt in range(1, retry.attempts + 1):  # retried at once: no waiting here
                async with session.get(spec.url, headers=spec.headers) as r:
                    status = r.status
                    await r.read()
                attempts[spec.url] = attempt
                if status not in retry.on_status:
                    break
            assert status in spec.options.expect, spec.url
    assert attempts[f"{site.base_url}/flaky"] == 3
    assert sum(attempts.values()) == len(attempts) + 2
