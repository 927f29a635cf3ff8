"""``fetchrun check PATH_OR_URL...``: exit codes, CI outputs and usage errors, end to end."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
from servers.site import GeneratedSite

from runner.check_cli import status_set
from runner.cli import main
from runner.reports.sarif import schema_path

# GitHub's documented workflow command: ::error file={name},line={line},title={title}::{message}
ANNOTATION = re.compile(r"^::(error|warning) file=[^,\n]+,line=\d+,title=[^:\n]+::\S.*$")


@pytest.fixture
def site() -> Iterator[GeneratedSite]:
    with GeneratedSite(20) as running:
        yield running


def docs(tmp_path: Path, site: GeneratedSite, *paths: str) -> Path:
    """A one-file Markdown tree linking the external server's ``paths``, a line each."""
    root = tmp_path / "docs"
    root.mkdir()
    lines = ["# Links", ""] + [f"- [{p}]({site.external_url}{p})" for p in paths]
    (root / "index.md").write_text("\n".join(lines) + "\n")
    return root


def check(tmp_path: Path, *args: str) -> int:
    # The test servers are on loopback, which a check refuses unless told (SSRF, H1).
    return main(
        ["check", *args, "--allow-private", "--output-dir", str(tmp_path / "out"), "--quiet"]
    )


def test_exit_0_when_every_link_is_ok(tmp_path: Path, site: GeneratedSite) -> None:
    assert check(tmp_path, str(docs(tmp_path, site, "/ok", "/head-refused", "/moved"))) == 0
    hits = site.external_hits
    assert hits[("HEAD", "/head-refused")] == 1  # refused: asked again with GET
    assert hits[("GET", "/head-refused")] == 1
    # one request per link, not a crawl of the host: its robots.txt is not asked for
    assert not any(target == "/robots.txt" for _, target in hits)


def test_exit_1_on_a_broken_link_with_its_line(
    tmp_path: Path, site: GeneratedSite, capsys: pytest.CaptureFixture[str]
) -> None:
    root = docs(tmp_path, site, "/ok", "/gone", "/bot")
    code = main(["check", str(root), "--allow-private", "--output-dir", str(tmp_path / "out")])
    assert code == 1
    err = capsys.readouterr().err
    assert re.search(r"BROKEN\s+\S*index\.md:4: .*/gone: HTTP 404", err)
    assert re.search(r"INDETERMINATE\s+\S*index\.md:5: .*/bot: HTTP 403", err)


def test_exit_3_when_only_indeterminate(tmp_path: Path, site: GeneratedSite) -> None:
    root = docs(tmp_path, site, "/ok", "/bot", "/slow-down")
    assert check(tmp_path, str(root), "--no-cache") == 3
    # accepting 403 and 429 turns them into ok links
    assert check(tmp_path, str(root), "--accept", "200-299,403,429", "--fresh") == 0


def test_reports_junit_sarif_markdown_and_annotations(
    tmp_path: Path,
    site: GeneratedSite,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = docs(tmp_path, site, "/ok", "/gone", "/bot")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    code = check(
        tmp_path,
        str(root),
        "--junit", str(tmp_path / "r/links.xml"),
        "--sarif", str(tmp_path / "r/links.sarif"),
        "--markdown", str(tmp_path / "r/summary.md"),
    )  # fmt: skip
    assert code == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2
    assert all(ANNOTATION.match(line) for line in out), out
    assert out[0].startswith("::error file=")
    assert ",line=4," in out[0]
    assert out[1].startswith("::warning file=")
    assert ",line=5," in out[1]

    suite = ET.parse(tmp_path / "r/links.xml").getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    sarif = json.loads((tmp_path / "r/links.sarif").read_text())
    jsonschema.validate(sarif, json.loads(schema_path().read_text()))
    assert [r["ruleId"] for r in sarif["runs"][0]["results"]] == [
        "broken-link",
        "indeterminate-link",
    ]
    summary = (tmp_path / "r/summary.md").read_text()
    assert "/gone" in summary
    assert "index.md" in summary


def test_no_annotations_flag_wins_over_the_environment(
    tmp_path: Path,
    site: GeneratedSite,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert check(tmp_path, str(docs(tmp_path, site, "/gone")), "--no-annotations") == 1
    assert capsys.readouterr().out == ""


def test_local_fragments_and_missing_files(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "a.md").write_text(
        "# Title\n\n## Snake_case options\n\n"
        "[ok](b.md#usage)\n[bad](b.md#nope)\n[self](#snake_case-options)\n[gone](c.md)\n"
    )
    (root / "b.md").write_text("# B\n\n## Usage\n")
    sarif = tmp_path / "links.sarif"
    assert check(tmp_path, str(root), "--fragments", "--sarif", str(sarif)) == 1
    found = {
        (r["locations"][0]["physicalLocation"]["region"]["startLine"], r["properties"]["url"])
        for r in json.loads(sarif.read_text())["runs"][0]["results"]
    }
    assert {line for line, _ in found} == {6, 8}
    # without --fragments only the missing file is broken
    assert check(tmp_path, str(root), "--sarif", str(sarif), "--fresh") == 1
    results = json.loads(sarif.read_text())["runs"][0]["results"]
    assert [r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in results] == [8]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/no/such/dir"], "not found"),
        (["ftp://example.com/"], "http"),
        ([".", "--exclude", "("], "regular expression"),
        ([".", "--accept", "200-abc"], "--accept"),
    ],
)
def test_usage_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert check(tmp_path, *args) == 2
    assert message in capsys.readouterr().err


def test_status_set_parses_ranges() -> None:
    assert status_set("200-202,403") == frozenset({200, 201, 202, 403})
    with pytest.raises(ValueError, match="within 100-599"):
        status_set("99")


def test_dry_run_of_a_crawl_lists_its_seeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = tmp_path / "crawl.yaml"
    job.write_text("version: 1\ncrawl: {seeds: [http://a.test/, http://b.test/x]}\n")
    assert main([str(job), "--dry-run"]) == 0
    assert capsys.readouterr().out == "CRAWL http://a.test/\nCRAWL http://b.test/x\n"


def test_private_addresses_are_refused_unless_allowed(
    tmp_path: Path, site: GeneratedSite, capsys: pytest.CaptureFixture[str]
) -> None:
    # security.md H1: links found in documents are not trusted to reach loopback,
    # private or metadata addresses. Refused links are excluded, not broken.
    root = docs(tmp_path, site, "/ok", "/gone")
    sarif = tmp_path / "links.sarif"
    code = main(["check", str(root), "--sarif", str(sarif), "--output-dir", str(tmp_path / "o")])
    assert code == 0
    assert json.loads(sarif.read_text())["runs"][0]["results"] == []
    assert "2 excluded" in capsys.readouterr().err
    assert not site.external_hits  # nothing reached the server


def test_a_crawl_of_a_private_site_needs_deny_private_false(
    tmp_path: Path, site: GeneratedSite
) -> None:
    job = tmp_path / "crawl.yaml"
    job.write_text(
        f"version: 1\noutput: {{jsonl: out.jsonl}}\ncrawl: {{seeds: [{site.page_url(0)}]}}\n"
    )
    assert main([str(job), "--quiet"]) == 1
    (record,) = (json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines())
    assert record["error"]["kind"] == "blocked_address"
    assert not site.hits
