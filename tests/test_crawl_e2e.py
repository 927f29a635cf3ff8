"""Issue 5 acceptance: crawl and link check of a generated 5,000-page site on loopback.

The site (tests/servers/site.py) computes what a correct crawler must find
(``expected_crawl``) and what a correct link checker must report
(``expected_links``), from its generation rules; these tests run the real
runner against it and compare exactly.
"""

from __future__ import annotations

import hashlib
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import jsonschema
import pytest
from servers.docs_tree import DocsManifest
from servers.site import GeneratedSite

from jobs import load_job
from runner.app import RunOptions
from runner.crawl.run import run_site
from runner.reports.sarif import schema_path

EXCLUDE = r"[?&]sort="


def write_job(tmp_path: Path, body: str) -> Path:
    job = tmp_path / "job.yaml"
    # The site is on loopback, which crawls and checks refuse unless told (SSRF, H1).
    job.write_text("version: 1\nsession: {deny_private: false}\n" + body)
    return job


def crawl_job(tmp_path: Path, site: GeneratedSite, extra: str = "") -> Path:
    return write_job(
        tmp_path,
        f"""
limits: {{concurrency: 32, per_host: 8}}
output: {{jsonl: out/records.jsonl, bodies: out/bodies}}
crawl:
  seeds: [{site.page_url(0)}]
  scope: {{exclude: ['{EXCLUDE}']}}
{extra}""",
    )


def check_job(tmp_path: Path, targets: str, extra: str = "") -> Path:
    return write_job(
        tmp_path,
        f"""
limits: {{concurrency: 32, per_host: 8}}
retry: {{attempts: 2, backoff: 0.01, max_backoff: 0.05}}
output:
  jsonl: out/records.jsonl
  junit: out/links.xml
  sarif: out/links.sarif
  markdown: out/summary.md
  annotations: false
check:
  targets: {targets}
  exclude: ['{EXCLUDE}']
  fragments: true
{extra}""",
    )


def _is_file(path: str) -> bool:
    return Path(path).is_file()


def records(path: Path) -> list[dict[str, Any]]:
    with path.open() as handle:
        return [json.loads(line) for line in handle]


async def run(job: Path, *, fresh: bool = False) -> int:
    result = await run_site(load_job(job), RunOptions(quiet=True), fresh=fresh)
    return result.exit_code


def sarif_findings(path: Path) -> dict[str, set[tuple[str, int, str]]]:
    """(source, line, url) of each SARIF result, by rule id."""
    log = json.loads(path.read_text())
    jsonschema.validate(log, json.loads(schema_path().read_text()))
    found: dict[str, set[tuple[str, int, str]]] = {}
    for result in log["runs"][0]["results"]:
        location = result["locations"][0]["physicalLocation"]
        key = (
            location["artifactLocation"]["uri"],
            location["region"]["startLine"],
            result["properties"]["url"],
        )
        found.setdefault(result["ruleId"], set()).add(key)
    return found


# -- crawl ---------------------------------------------------------------------------------


async def test_crawl_finds_exactly_the_expected_pages(
    tmp_path: Path, generated_site: GeneratedSite
) -> None:
    code = await run(crawl_job(tmp_path, generated_site))
    got = records(tmp_path / "out/records.jsonl")
    schema = json.loads((Path(__file__).parent.parent / "runner/record.schema.json").read_text())
    for record in got[:200]:
        jsonschema.validate(record, schema)
    statuses = {r["url"]: r["status"] for r in got}
    assert len(statuses) == len(got), "a URL was recorded twice"
    assert statuses == generated_site.expected_crawl(exclude=EXCLUDE)
    assert code == 1  # the site has broken in-site links (404 records)
    # robots.txt obeyed: no request ever reached /private/
    assert not [t for _, t in generated_site.hits if t.startswith("/private/")]
    redirect = next(r for r in got if r["status"] == 301)
    assert redirect["location"].startswith(generated_site.base_url)
    assert redirect["crawl"]["depth"] >= 1


async def test_second_run_is_conditional_and_only_changed_pages_are_fetched(
    tmp_path: Path, generated_site: GeneratedSite
) -> None:
    job = crawl_job(tmp_path, generated_site)
    await run(job)
    first = {r["url"]: r for r in records(tmp_path / "out/records.jsonl")}
    pages = {u for u, r in first.items() if r["status"] == 200 and "/p/" in u}

    generated_site.reset_counters()
    await run(job)
    second = {r["url"]: r for r in records(tmp_path / "out/records.jsonl")}
    assert set(second) == set(first)
    unchanged = {u for u, r in second.items() if r.get("unchanged")}
    assert pages <= unchanged
    assert generated_site.not_modified == len(unchanged)
    for url in list(pages)[:50]:  # the stored body stands in: same path, hash and size
        assert second[url]["status"] == 304
        assert second[url]["ok"] is True
        assert second[url]["body_path"] == first[url]["body_path"]
        assert second[url]["sha256"] == first[url]["sha256"]
        assert _is_file(second[url]["body_path"])

    changed = set(generated_site.change(range(100, 110)))
    generated_site.reset_counters()
    await run(job)
    third = {r["url"]: r for r in records(tmp_path / "out/records.jsonl")}
    assert set(third) == set(first)
    fetched_anew = {u for u in pages if not third[u].get("unchanged")}
    assert fetched_anew == changed
    assert all(third[u]["status"] == 200 for u in changed)
    assert all(third[u]["sha256"] != first[u]["sha256"] for u in changed)
    assert generated_site.not_modified == len(unchanged) - 10


async def test_crawl_limits_depth_and_pages(tmp_path: Path, generated_site: GeneratedSite) -> None:
    await run(crawl_job(tmp_path, generated_site, "  max_depth: 1\n"))
    got = {r["url"] for r in records(tmp_path / "out/records.jsonl")}
    assert got == set(generated_site.expected_crawl(max_depth=1, exclude=EXCLUDE))

    await run(crawl_job(tmp_path, generated_site, "  max_pages: 25\n"), fresh=True)
    assert len(records(tmp_path / "out/records.jsonl")) == 25


async def test_crawl_delay_paces_the_host(tmp_path: Path) -> None:
    with GeneratedSite(30, crawl_delay=0.2) as site:
        job = write_job(
            tmp_path,
            f"""
limits: {{concurrency: 8, per_host: 8}}
output: {{jsonl: out/records.jsonl}}
crawl:
  seeds: [{site.page_url(0)}]
  max_pages: 6
""",
        )
        started = time.monotonic()
        await run(job)
        wall = time.monotonic() - started
    assert len(records(tmp_path / "out/records.jsonl")) == 6
    # The seed goes first (its robots.txt sets the pace), then 5 pages one per 0.2 s,
    # although 8 could run at once: >= 0.8 s. Unpaced, this run takes ~20 ms.
    assert wall >= 0.8


# -- link check ------------------------------------------------------------------------------


async def test_link_check_reports_exactly_the_broken_and_indeterminate_links(
    tmp_path: Path, generated_site: GeneratedSite
) -> None:
    job = check_job(tmp_path, f"[{generated_site.page_url(0)}]")
    code = await run(job)
    assert code == 1
    manifest = generated_site.expected_links(exclude=EXCLUDE)
    found = sarif_findings(tmp_path / "out/links.sarif")
    assert found.get("broken-link", set()) == set(manifest.broken)
    assert found.get("indeterminate-link", set()) == set(manifest.indeterminate)

    # JUnit: one failing test case per broken occurrence, parseable XML.
    import xml.etree.ElementTree as ET

    suite = ET.parse(tmp_path / "out/links.xml").getroot().find("testsuite")
    assert suite is not None
    assert int(suite.get("failures", "0")) == len(manifest.broken)
    assert "broken" in (tmp_path / "out/summary.md").read_text().lower()


async def test_link_check_cache_spares_hosts_on_the_next_run(
    tmp_path: Path, generated_site: GeneratedSite
) -> None:
    job = check_job(tmp_path, f"[{generated_site.page_url(0)}]", "  max_pages: 50\n")
    await run(job)
    first = sarif_findings(tmp_path / "out/links.sarif")
    generated_site.reset_counters()
    await run(job)
    assert sarif_findings(tmp_path / "out/links.sarif") == first
    hits = generated_site.external_hits
    # ok (200) and definite 404 results are cached; 403/429 (indeterminate) are asked again
    assert not any(t in ("/ok", "/gone") for _, t in hits)
    assert any(t in ("/bot", "/slow-down") for _, t in hits)


async def test_link_check_of_a_local_docs_tree(tmp_path: Path, docs_tree: DocsManifest) -> None:
    job = check_job(tmp_path, f"[{docs_tree.root}]")
    # the job's targets must be relative to the job file: put the job next to the tree
    job = write_job(
        docs_tree.root.parent,
        job.read_text().split("\n", 2)[2].replace(str(docs_tree.root), docs_tree.root.name),
    )
    code = await run(job)
    assert code == 1
    found = sarif_findings(docs_tree.root.parent / "out/links.sarif")

    def where(items: Any) -> set[tuple[str, int]]:
        return {(_path_of(source), line) for source, line, *_ in items}

    assert where(found.get("broken-link", ())) == where(docs_tree.broken)
    assert where(found.get("indeterminate-link", ())) == where(docs_tree.indeterminate)


def _path_of(source: str) -> str:
    """A SARIF artifact URI (relative path or file: URI) or a plain path, resolved."""
    if source.startswith("file:"):
        source = url2pathname(urlsplit(source).path)
    return str((Path.cwd() / source).resolve())


# -- kill -9 and resume ------------------------------------------------------------------------


def _lines(path: Path) -> int:
    try:
        with path.open("rb") as handle:
            return sum(1 for _ in handle)
    except FileNotFoundError:
        return 0


def _start(job: Path, *, stderr: int = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "runner.cli", str(job), "--quiet"],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )


def _kill_after(proc: subprocess.Popen[bytes], jsonl: Path, lines: int) -> bool:
    """SIGKILL ``proc`` once the journal holds ``lines`` records; False if it ended first."""
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if _lines(jsonl) >= lines:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.005)
    proc.wait()
    return False


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_9_and_rerun_loses_and_duplicates_nothing(
    tmp_path: Path, generated_site: GeneratedSite, seed: int
) -> None:
    job = crawl_job(tmp_path, generated_site)
    jsonl = tmp_path / "out/records.jsonl"
    expected = generated_site.expected_crawl(exclude=EXCLUDE)
    rng = random.Random(seed)
    kills = 0
    for point in sorted(rng.sample(range(50, len(expected) - 50), 2)):
        kills += _kill_after(_start(job), jsonl, point)
    assert kills >= 1, "the crawl ended before any kill"
    final = _start(job, stderr=subprocess.PIPE)
    _, err = final.communicate(timeout=120)
    assert final.returncode == 1, err.decode()  # finished (404 records), not interrupted

    got = records(jsonl)
    urls = [r["url"] for r in got]
    assert len(urls) == len(set(urls)), "a record was written twice"
    assert {r["url"]: r["status"] for r in got} == expected
    for record in got:  # every body on disk is whole: its hash is the record's
        if record["body_path"] is not None:
            data = Path(record["body_path"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == record["sha256"]


async def test_sitemaps_seed_the_crawl(tmp_path: Path) -> None:
    # Links from page 0 reach 111 pages within depth 2; the sitemap index (depth 0),
    # its child sitemaps (1) and their pages (2) reach all 1,500: only sitemaps can.
    with GeneratedSite(1500) as site:
        job = write_job(
            tmp_path,
            f"""
limits: {{concurrency: 16, per_host: 8}}
output: {{jsonl: out/records.jsonl}}
crawl:
  seeds: [{site.page_url(0)}]
  max_depth: 2
  sitemaps: true
""",
        )
        await run(job)
    got = {r["url"]: r for r in records(tmp_path / "out/records.jsonl")}
    sitemap = f"{site.base_url}/sitemap.xml"
    assert got[sitemap]["status"] == 200
    # an index with 2 child sitemaps (1,500 pages > 1,000), then every page at depth 2
    children = [u for u, r in got.items() if r["crawl"]["from"] == sitemap]
    assert len([u for u in children if "sitemap" in u]) == 2
    pages = {u for u in got if "/p/" in u and "?" not in u}
    assert pages == {site.page_url(i) for i in range(1500)}
