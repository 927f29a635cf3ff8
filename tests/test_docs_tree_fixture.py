"""The generated docs tree (tests/servers/docs_tree.py): its manifest against the files.

Every link ``runner.links`` extracts from the written files must be in the
manifest at the same line and vice versa; verdicts are spot-checked by hand
and against the file system.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import pytest
from servers.docs_tree import DocsManifest, write_docs_tree
from servers.site import GeneratedSite

from runner.links import extract_html, extract_markdown


@pytest.fixture(scope="module")
def site() -> Iterator[GeneratedSite]:
    with GeneratedSite(50) as generated:
        yield generated


@pytest.fixture(scope="module")
def docs(site: GeneratedSite, tmp_path_factory: pytest.TempPathFactory) -> DocsManifest:
    return write_docs_tree(tmp_path_factory.mktemp("docs"), site)


def test_docs_manifest_covers_exactly_the_extracted_links(docs: DocsManifest) -> None:
    assert len(docs.files) == 31
    assert {p.suffix for p in docs.files} == {".md", ".html"}
    wanted: dict[str, set[tuple[int, str]]] = {str(p): set() for p in docs.files}
    for source, line, target in docs.broken | docs.indeterminate | docs.ok:
        wanted[source].add((line, urljoin(Path(source).as_uri(), target)))
    for path in docs.files:
        base = path.as_uri()
        if path.suffix == ".md":
            links = extract_markdown(path.read_text(), base, source=str(path))
        else:
            links = extract_html(path.read_bytes(), base, source=str(path))
        found = {
            (link.line, link.url + (f"#{link.fragment}" if link.fragment else "")) for link in links
        }
        assert found == wanted[str(path)], path


def verdict(docs: DocsManifest, rel: str, line: int, target: str) -> str:
    key = (str(docs.root / rel), line, target)
    names = ("ok", "broken", "indeterminate")
    hits = [name for name in names if key in getattr(docs, name)]
    assert len(hits) == 1, key
    return hits[0]


def test_docs_manifest_spot_checks(docs: DocsManifest, site: GeneratedSite) -> None:
    ext = site.external_url
    checks = [
        ("README.md", 7, "docs/guide/intro.md", "ok"),
        ("README.md", 9, "docs/faq.md#does-it-respect-robotstxt", "ok"),
        ("README.md", 10, "docs/old.md", "broken"),
        ("README.md", 11, "#getting-startd", "broken"),
        ("README.md", 14, "CHANGELOG.md", "ok"),  # collapsed reference [changelog][]
        ("CONTRIBUTING.md", 7, "docs/missing-ref.md", "broken"),  # unused definition
        ("CHANGELOG.md", 11, "#notes-1", "ok"),  # the second "Notes" heading
        ("CHANGELOG.md", 12, "#notes-2", "broken"),
        ("CHANGELOG.md", 13, "#v020--2024-05-01", "ok"),
        ("docs/glossary.md", 6, "index.md", "ok"),
        ("docs/glossary.md", 6, "nope.md", "broken"),
        ("docs/faq.md", 9, f"{ext}/slow-down", "indeterminate"),
        ("docs/tutorial/04-check.md", 4, f"{ext}/gone", "broken"),  # reference use
        ("docs/reference/jobs.md", 7, "cli.md#fetchrun-check", "ok"),  # `code` heading
        ("docs/api/session.html", 7, "client.html#Usage", "broken"),  # ids are case-sensitive
        ("docs/api/index.html", 15, "#legacy", "ok"),  # <a name>
        ("docs/api/v2/streams.html", 9, f"{site.base_url}/p/3.html#sec-3", "ok"),
        ("site/news/2024.html", 6, "../index.html#nav", "ok"),
    ]
    for rel, line, target, expected in checks:
        assert verdict(docs, rel, line, target) == expected, (rel, line, target)
    readme = str(docs.root / "README.md")
    assert not any(src == readme and line in (17, 20) for src, line, _ in docs.ok | docs.broken)
    assert len(docs.indeterminate) == 6
    assert len(docs.broken) == 28
    assert docs.ok_count == 76


def test_docs_local_targets_exist_exactly_when_ok(docs: DocsManifest) -> None:
    for bucket, should_exist in ((docs.ok, True), (docs.broken, False)):
        for source, _line, target in bucket:
            if "://" in target or "#" in target:
                continue
            assert (Path(source).parent / target).exists() == should_exist, (source, target)
