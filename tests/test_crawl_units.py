"""Small pieces of crawl and link-check runs: verdicts, anchors, conditional headers, reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs import CacheTTL, CheckSpec
from runner.crawl.local import documents, markdown_anchors
from runner.crawl.page import PageInfo, conditional_headers
from runner.crawl.report import link_results
from runner.crawl.state import CachedResult, Occurrence, StateStore, Validators
from runner.crawl.verdict import classify_result
from runner.outcome import ErrorInfo, Outcome

CHECK = CheckSpec(("https://x.test/",), cache=CacheTTL(ok=100.0, broken=10.0))


def outcome(status: int | None, error: ErrorInfo | None = None) -> Outcome:
    return Outcome("https://x.test/a", "GET", 1, "job", "t", status=status, error=error)


@pytest.mark.parametrize(
    ("status", "error", "challenge", "verdict", "ttl"),
    [
        (200, None, False, "ok", 100.0),
        (404, None, False, "broken", 10.0),
        (410, None, False, "broken", 10.0),
        (403, None, False, "indeterminate", 0.0),
        (429, None, False, "indeterminate", 0.0),
        (999, None, False, "indeterminate", 0.0),
        (503, None, True, "indeterminate", 0.0),  # a bot challenge
        (500, None, False, "broken", 0.0),  # transient: never cached
        (None, ErrorInfo("timeout", "TotalTimeoutError"), False, "broken", 0.0),
        (None, ErrorInfo("dns", "no such host"), False, "broken", 0.0),
    ],
)
def test_verdicts_and_what_is_cached(
    status: int | None, error: ErrorInfo | None, challenge: bool, verdict: str, ttl: float
) -> None:
    result = classify_result(
        outcome(status, error), PageInfo(challenge=challenge), CHECK, 1000.0, "https://x.test/a"
    )
    assert result.verdict == verdict
    assert result.expires_at == 1000.0 + ttl


def test_no_cache_means_nothing_outlives_the_run() -> None:
    check = CheckSpec(("https://x.test/",), cache=None)
    result = classify_result(outcome(200), PageInfo(), check, 5.0, "https://x.test/a")
    assert (result.verdict, result.expires_at) == ("ok", 5.0)


def test_markdown_anchors_follow_github_slugs() -> None:
    text = (
        "# Getting started\n"
        "## Snake_case options\n"
        "## Getting started\n"
        "### `code` and *emphasis* [link](x.md)!\n"
        "```\n# not a heading\n```\n"
        '<a id="custom"></a>\n'
    )
    assert markdown_anchors(text) == {
        "getting-started",
        "snake_case-options",
        "getting-started-1",
        "code-and-emphasis-link",
        "custom",
    }


def test_documents_walks_trees_and_skips_vcs_and_dependencies(tmp_path: Path) -> None:
    for rel in ("a.md", "sub/b.html", "sub/c.txt", ".git/x.md", "node_modules/y.md"):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    found = [p.relative_to(tmp_path).as_posix() for p in documents([str(tmp_path)])]
    assert found == ["a.md", "sub/b.html"]


def test_conditional_headers_send_both_validators() -> None:
    stored = Validators(etag='"v1"', last_modified="Sat, 21 Nov 2026 10:00:00 GMT")
    assert conditional_headers(stored) == (
        ("If-None-Match", '"v1"'),
        ("If-Modified-Since", "Sat, 21 Nov 2026 10:00:00 GMT"),
    )
    assert conditional_headers(Validators()) == ()


def test_link_results_check_fragments_and_drop_repeated_occurrences(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.sqlite")
    store.open_run("fp")
    page = "https://x.test/p"
    occurrences = [
        Occurrence(page, "there", "doc.md", 3, "markdown"),
        Occurrence(page, "missing", "doc.md", 4, "markdown"),
        Occurrence(page, "top", "doc.md", 5, "markdown"),
        Occurrence("https://x.test/gone", None, "doc.md", 6, "markdown"),
        Occurrence("https://x.test/gone", None, "doc.md", 6, "markdown"),  # a rescan's copy
    ]
    store.complete("doc", None, occurrences=occurrences)
    store.complete(
        page, None, result=CachedResult(page, "ok", 200, "", None, 0.0, frozenset({"there"}))
    )
    gone = "https://x.test/gone"
    store.complete(gone, None, result=CachedResult(gone, "broken", 404, "Not Found", None, 0.0))
    check = CheckSpec(("doc.md",), fragments=True)
    got = [(r.line, r.verdict) for r in link_results(store, check, ())]
    assert got == [(3, "ok"), (4, "broken"), (5, "ok"), (6, "broken")]
    store.close()


def test_scope_add_host_lets_a_seeds_new_host_in() -> None:
    from jobs import CrawlScope
    from runner.crawl.scope import Scope

    scope = Scope(CrawlScope(), ["http://example.test/"])
    assert scope.reason("https://www.example.test/a") == "other host"
    scope.add_host("www.example.test")
    assert scope.reason("https://www.example.test/a") is None
    assert scope.reason("https://elsewhere.test/") == "other host"
