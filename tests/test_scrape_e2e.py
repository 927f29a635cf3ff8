"""Scraping end to end: job files with ``extract:`` / ``follow:`` run by the real
runner against local sites with known content (127.0.0.1 only).

* a small site of fixed pages (each extractor kind, errors, content types);
* the demo site (runner.demo_site) for pagination: its pages link
  ``a.next`` to the following page and ``page_items(n)`` says what each lists.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
from test_outcome import schema_errors

from jobs import job_from_urls, load_job, load_job_text
from runner.app import EXIT_FAILED, EXIT_OK, RunOptions, run_job
from runner.demo_site import PAGE_COUNT, DemoSite, page_items, start_demo_site

SAMPLE = Path(__file__).resolve().parent.parent / "sample_jobs" / "scrape_demo.yaml"
Route = tuple[int, str, bytes, tuple[tuple[str, str], ...]]

PRODUCT = b"""<!doctype html><html><head><title> Blue lamp | Shop </title>
<link rel="canonical" href="/p/lamp"></head><body>
<h1>Blue lamp</h1><span class="price">12.50</span><span class="stock">3</span>
<ul><li><a href="/p/mug">Mug</a></li><li><a href="chair">Chair</a></li></ul>
<p>SKU: LMP-0042</p></body></html>"""
LAMP_JSON = b'{"id": 42, "tags": ["a", "b"], "price": "1.5"}'


class Site:
    """A keep-alive HTTP/1.1 server answering GETs from a fixed route table."""

    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = routes
        self.hits: dict[str, int] = {}
        self.port = 0
        self._server: asyncio.Server | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                path = head.split(b" ", 2)[1].decode()
                self.hits[path] = self.hits.get(path, 0) + 1
                status, ctype, body, extra = self.routes.get(path, (404, "text/plain", b"no", ()))
                lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}"]
                lines += [f"Content-Type: {ctype}"] if ctype else []
                lines += [f"{k}: {v}" for k, v in extra]
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def shop() -> AsyncIterator[Site]:
    site = Site({
        "/p/lamp": (200, "text/html; charset=utf-8", PRODUCT, (("ETag", '"lamp-1"'),)),
        "/api/lamp": (200, "application/json", LAMP_JSON, ()),
        "/img": (200, "image/png", b"\x89PNG\r\n<title>no</title>", ()),
        "/gone": (404, "text/html", b"<title>Not found</title>", ()),
    })  # fmt: skip
    await site.start()
    yield site
    await site.close()


@pytest.fixture
async def demo() -> AsyncIterator[DemoSite]:
    site = await start_demo_site()
    yield site
    await site.close()


async def run(text: str, tmp_path: Path, **env: str) -> tuple[int, list[dict[str, Any]]]:
    code = await run_only(text, tmp_path, **env)
    return code, read_records(tmp_path)


async def run_only(text: str, tmp_path: Path, **env: str) -> int:
    job = load_job_text(dedent(text), filename="job.yaml", env=env, base_dir=tmp_path)
    result = await run_job(job, RunOptions(output=tmp_path / "out.jsonl", quiet=True))
    return result.exit_code


def read_records(tmp_path: Path) -> list[dict[str, Any]]:
    """The run's records, each checked against the published schema."""
    text = (tmp_path / "out.jsonl").read_text(encoding="ascii")
    records = [json.loads(line) for line in text.splitlines()]
    for record in records:
        assert schema_errors(record) == []
    return records


def by_path(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["url"].split("/", 3)[3]: r for r in records}


async def test_every_extractor_kind_on_a_live_site(shop: Site, tmp_path: Path) -> None:
    code, records = await run(
        f"""\
        version: 1
        defaults:
          extract:
            canonical: {{css: "link[rel=canonical]", attr: href, absolute: true}}
        requests:
          - url: {shop.url("/p/lamp")}
            extract:
              name:   {{css: h1}}
              price:  {{css: .price, to: float}}
              stock:  {{xpath: "string(//span[@class='stock'])", to: int}}
              links:  {{css: "li a", attr: href, all: true, absolute: true}}
              sku:    {{regex: "SKU: ([A-Z]+-[0-9]+)"}}
              etag:   {{header: ETag}}
          - url: {shop.url("/api/lamp")}
            extract:
              canonical: false
              id:    {{json: id}}
              tags:  {{json: tags, all: true}}
              price: {{json: price, to: float}}
        """,
        tmp_path,
    )
    assert code == EXIT_OK
    pages = by_path(records)
    lamp = pages["p/lamp"]
    assert lamp["ok"] is True
    assert lamp["data"] == {
        "title": "Blue lamp | Shop",
        "canonical": shop.url("/p/lamp"),
        "name": "Blue lamp",
        "price": 12.5,
        "stock": 3,
        "links": [shop.url("/p/mug"), shop.url("/p/chair")],
        "sku": "LMP-0042",
        "etag": '"lamp-1"',
    }
    assert "data_errors" not in lamp
    assert lamp["extract_ms"] >= 0
    assert pages["api/lamp"]["data"] == {"id": 42, "tags": ["a", "b"], "price": 1.5}


async def test_field_errors_never_fail_the_fetch(shop: Site, tmp_path: Path) -> None:
    code, records = await run(
        f"""\
        version: 1
        requests:
          - url: {shop.url("/p/lamp")}
            extract:
              total: {{json: meta.total}}
              name: {{css: h1, to: int}}
              none: {{css: table}}
          - url: {shop.url("/img")}
            extract: {{h: {{css: h1}}}}
        """,
        tmp_path,
    )
    assert code == EXIT_OK
    pages = by_path(records)
    lamp, img = pages["p/lamp"], pages["img"]
    assert (lamp["ok"], lamp["error"]) == (True, None)
    assert lamp["data"] == {"title": "Blue lamp | Shop", "total": None, "name": None, "none": None}
    assert lamp["data_errors"] == {
        "total": "json reads JSON responses; content type is text/html; charset=utf-8",
        "name": "cannot convert 'Blue lamp' to int",
    }
    assert img["ok"] is True
    assert img["data"] == {"h": None}  # a PNG is never parsed, and has no title
    assert img["data_errors"] == {"h": "css reads HTML or XML responses; content type is image/png"}


async def test_data_comes_only_from_expected_responses(shop: Site, tmp_path: Path) -> None:
    code, records = await run(
        f"""\
        version: 1
        retry: 1
        requests:
          - {shop.url("/gone")}
          - url: {shop.url("/gone")}
            expect: [404]
        """,
        tmp_path,
    )
    assert code == EXIT_FAILED
    unexpected, expected = sorted(records, key=lambda r: r["index"])
    assert (unexpected["status"], unexpected["ok"], "data" in unexpected) == (404, False, False)
    assert expected["data"] == {"title": "Not found"}


async def test_titles_by_default_even_without_a_job_file(shop: Site, tmp_path: Path) -> None:
    job = job_from_urls([shop.url("/p/lamp"), shop.url("/api/lamp")])
    out = tmp_path / "out.jsonl"
    await run_job(job, RunOptions(output=out, quiet=True))
    records = by_path([json.loads(line) for line in out.read_text().splitlines()])
    assert records["p/lamp"]["data"] == {"title": "Blue lamp | Shop"}
    assert "data" not in records["api/lamp"]  # nothing to say about JSON by default


# ------------------------------------------------------------------ follow


def pages_of(records: list[dict[str, Any]]) -> list[int]:
    return [int(r["url"].rsplit("/", 1)[1]) for r in records if "/pages/" in r["url"]]


async def test_pagination_follows_exactly_the_next_pages_up_to_max_pages(
    demo: DemoSite, tmp_path: Path
) -> None:
    code, records = await run(
        """\
        version: 1
        public_env: [BASE]
        limits: {per_host: 2}
        requests:
          - url: ${BASE}/pages/1
            extract:
              names:  {css: ".item h2", all: true}
              prices: {css: ".item .price", all: true}
            follow: {css: a.next, max_pages: 5}
        """,
        tmp_path,
        BASE=demo.base_url,
    )
    assert code == EXIT_OK
    assert sorted(pages_of(records)) == [1, 2, 3, 4, 5]
    assert {path: n for path, n in demo.stats.items() if path.startswith("/pages/")} == {
        f"/pages/{n}": 1 for n in range(1, 6)
    }
    for record in records:
        n = int(record["url"].rsplit("/", 1)[1])
        items = page_items(n)
        assert record["data"]["names"] == [name for name, _ in items]
        assert record["data"]["prices"] == [price for _, price in items]
        assert record["index"] == 0  # every page belongs to the job's first request
        if n == 1:
            assert "follow" not in record
        else:
            assert record["follow"] == {"page": n, "from": f"{demo.base_url}/pages/{n - 1}"}


async def test_pagination_ends_at_the_last_page(demo: DemoSite, tmp_path: Path) -> None:
    _code, records = await run(
        """\
        version: 1
        public_env: [BASE]
        requests:
          - url: ${BASE}/pages/15
            extract: false
            follow: {css: a.next, max_pages: 50}
        """,
        tmp_path,
        BASE=demo.base_url,
    )
    assert sorted(pages_of(records)) == list(range(15, PAGE_COUNT + 1))
    assert max(r.get("follow", {}).get("page", 1) for r in records) == PAGE_COUNT - 14


async def test_max_pages_one_fetches_only_the_start(demo: DemoSite, tmp_path: Path) -> None:
    _code, records = await run(
        """\
        version: 1
        public_env: [BASE]
        requests:
          - url: ${BASE}/pages/3
            follow: {css: a.next, max_pages: 1}
        """,
        tmp_path,
        BASE=demo.base_url,
    )
    assert pages_of(records) == [3]


async def test_each_url_is_fetched_once_across_links_and_chains(
    demo: DemoSite, tmp_path: Path
) -> None:
    _code, records = await run(
        """\
        version: 1
        public_env: [BASE]
        limits: {concurrency: 4, per_host: 4}
        requests:
          - url: "${BASE}/pages/{n}"
            range: {n: [1, 3]}
            extract: false
            follow: {css: "a.prev, a.next", max_pages: 100}
        """,
        tmp_path,
        BASE=demo.base_url,
    )
    assert sorted(pages_of(records)) == list(range(1, PAGE_COUNT + 1))
    assert all(n == 1 for path, n in demo.stats.items() if path.startswith("/pages/"))


async def test_follow_with_json_links(demo: DemoSite, tmp_path: Path) -> None:
    _code, records = await run(
        """\
        version: 1
        public_env: [BASE]
        requests:
          - url: "${BASE}/api/items?page=8"
            extract: {page: {json: meta.page}}
            follow: {json: links.next, max_pages: 10}
        """,
        tmp_path,
        BASE=demo.base_url,
    )
    assert sorted(r["data"]["page"] for r in records) == [8, 9, 10]  # page 10 has no next


async def test_the_sample_scrape_job_runs(demo: DemoSite, tmp_path: Path) -> None:
    job = load_job(SAMPLE, env=dict(os.environ, DEMO_BASE=demo.base_url))
    out = tmp_path / "scrape.jsonl"
    result = await run_job(job, RunOptions(output=out, quiet=True))
    assert result.exit_code == EXIT_OK
    records = [json.loads(line) for line in out.read_text().splitlines()]
    names = {r["name"] for r in records}
    assert names == {"catalogue", "api", "robots"}
    catalogue = [r for r in records if r["name"] == "catalogue"]
    assert sorted(pages_of(catalogue)) == [1, 2, 3, 4, 5]
    assert all(not r.get("data_errors") for r in records)
    api = [r["data"]["page"] for r in records if r["name"] == "api"]
    assert sorted(api) == [1, 2, 3]


# ------------------------------------------------------------------ the event loop


async def test_a_2_mb_page_does_not_stall_the_loop(tmp_path: Path) -> None:
    items = "".join(
        f'<div class="item"><h2>Name {k}</h2><span class="price">{k % 97}.50</span>'
        f"<p>{'lorem ipsum dolor sit amet ' * 2}</p></div>\n"
        for k in range(16_000)
    )
    big = f"<html><head><title>Big</title></head><body>{items}</body></html>".encode()
    assert len(big) >= 2 * 1024 * 1024
    site = Site({"/big": (200, "text/html", big, ())})
    await site.start()
    lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:  # stands for any concurrent request's timer
        while not done.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - start - 0.005)

    # The suite's own heap (thousands of tests' objects) would make any full GC
    # collection here a 100+ ms pause that is not the runner's: freeze it first.
    gc.collect()
    gc.freeze()
    task = asyncio.create_task(ticker())
    try:
        await run_only(
            f"""\
            version: 1
            requests:
              - url: {site.url("/big")}
                extract:
                  names:  {{css: ".item h2", all: true}}
                  prices: {{css: ".item .price", all: true, to: float}}
                  count:  {{xpath: "count(//div[@class='item'])", to: int}}
            """,
            tmp_path,
        )
    finally:
        done.set()
        await task
        await site.close()
        gc.unfreeze()
    # Read and schema-check the 26,000-item record only now: that is the test's work.
    (record,) = read_records(tmp_path)
    assert record["data"]["count"] == 16_000
    assert len(record["data"]["names"]) == 10_000  # lists are capped
    assert record["extract_ms"] > 0
    assert max(lags) < 0.050, f"the loop stalled for {max(lags) * 1000:.0f} ms"
