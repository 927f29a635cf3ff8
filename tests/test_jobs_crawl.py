"""The ``crawl:`` and ``check:`` sections, the report outputs, and ``job_for_check``:
valid files build the model, each mistake gives one error at its line:col."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jobs import (
    CacheTTL,
    CheckSpec,
    CrawlScope,
    CrawlSpec,
    JobError,
    Output,
    count_requests,
    iter_requests,
    job_for_check,
    load_job,
    load_job_text,
)
from jobs.model import STATUS_2XX
from jobs.secret import is_secret

CRAWL = "version: 1\ncrawl: {seeds: http://127.0.0.1:8080/}\n"  # line 3 is free


def problems(text: str, base_dir: Path | None = None) -> list[str]:
    with pytest.raises(JobError) as info:
        load_job_text(text, filename="j.yaml", env={"HOST": "h.example"}, base_dir=base_dir)
    return str(info.value).splitlines()


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A job directory with a docs/ tree and a README.md."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.html").write_text("<a href='x.html'>x</a>\n")
    (tmp_path / "README.md").write_text("[docs](docs/index.html)\n")
    return tmp_path


def test_crawl_with_every_key_builds_the_model(tmp_path: Path) -> None:
    job_path = tmp_path / "crawl.yaml"
    job_path.write_text(
        "version: 1\n"
        "crawl:\n"
        "  seeds: [http://127.0.0.1:8080/, 'https://example.com/start']\n"
        "  scope:\n"
        "    same_host: false\n"
        "    prefix: [http://127.0.0.1:8080/docs/, https://example.com/]\n"
        "    include: ['/docs/', '\\.html$']\n"
        "    exclude: ['\\?print=1']\n"
        "  max_depth: 0\n"
        "  max_pages: 5000\n"
        "  robots: false\n"
        "  sitemaps: true\n"
        "  conditional: false\n"
        "output: {jsonl: out/records.jsonl, bodies: out/bodies, state: out/state.sqlite}\n"
    )
    job = load_job(job_path, env={})
    assert job.requests == ()
    assert job.check is None
    assert job.crawl == CrawlSpec(
        seeds=("http://127.0.0.1:8080/", "https://example.com/start"),
        scope=CrawlScope(
            same_host=False,
            prefixes=("http://127.0.0.1:8080/docs/", "https://example.com/"),
            include=("/docs/", r"\.html$"),
            exclude=(r"\?print=1",),
        ),
        max_depth=0,
        max_pages=5000,
        robots=False,
        sitemaps=True,
        conditional=False,
    )
    assert job.output.jsonl == tmp_path / "out/records.jsonl"
    assert job.output.bodies == tmp_path / "out/bodies"
    assert job.output.state == tmp_path / "out/state.sqlite"


def test_crawl_defaults_and_single_values() -> None:
    job = load_job_text(CRAWL + "defaults: {expect: [200, 304]}\nlimits: {per_host: 2}\n", env={})
    assert job.crawl == CrawlSpec(seeds=("http://127.0.0.1:8080/",))
    assert job.crawl.scope == CrawlScope()
    assert (job.crawl.max_depth, job.crawl.max_pages) == (10, 100_000)
    assert (job.crawl.robots, job.crawl.sitemaps, job.crawl.conditional) == (True, False, True)
    assert job.defaults.expect == frozenset({200, 304})  # other sections still apply
    assert job.limits.per_host == 2
    single = load_job_text(
        "version: 1\ncrawl:\n  seeds: http://a.example/\n"
        "  scope: {prefix: http://a.example/d/, include: x, exclude: y}\n",
        env={},
    )
    assert single.crawl is not None
    assert single.crawl.scope == CrawlScope(
        prefixes=("http://a.example/d/",), include=("x",), exclude=("y",)
    )


def test_a_crawl_job_has_no_requests_to_iterate() -> None:
    job = load_job_text(CRAWL, env={})
    assert list(iter_requests(job)) == []
    assert count_requests(job) == 0


def test_seeds_from_the_environment_are_secret_unless_public() -> None:
    text = "version: 1\ncrawl: {seeds: 'https://${HOST}/'}\n"
    job = load_job_text(text, env={"HOST": "h.example"})
    assert job.crawl is not None
    assert job.crawl.seeds == ("https://h.example/",)
    assert is_secret(job.crawl.seeds[0])
    assert "https://h.example/" in job.secrets
    public = load_job_text("public_env: [HOST]\n" + text, env={"HOST": "h.example"})
    assert public.crawl is not None
    assert not is_secret(public.crawl.seeds[0])


def test_check_with_every_key_builds_the_model(site: Path) -> None:
    job_path = site / "check.yaml"
    job_path.write_text(
        "version: 1\n"
        "check:\n"
        "  targets: [docs/, ./README.md, http://127.0.0.1:8080/]\n"
        "  accept: [200-299, 403]\n"
        "  exclude: ['^https://twitter\\.com/', 'localhost']\n"
        "  fragments: true\n"
        "  external: false\n"
        "  indeterminate: [403, 429]\n"
        "  cache: {ok: 60, broken: 0}\n"
        "  max_depth: 3\n"
        "  max_pages: 200\n"
        "  robots: false\n"
        "output:\n"
        "  jsonl: out/records.jsonl\n"
        "  state: out/state.sqlite\n"
        "  junit: out/links.xml\n"
        "  sarif: out/links.sarif\n"
        "  markdown: out/summary.md\n"
        "  annotations: true\n"
    )
    job = load_job(job_path, env={})
    assert job.requests == ()
    assert job.crawl is None
    assert job.check == CheckSpec(
        targets=(str(site / "docs"), str(site / "README.md"), "http://127.0.0.1:8080/"),
        accept=frozenset({*range(200, 300), 403}),
        exclude=(r"^https://twitter\.com/", "localhost"),
        fragments=True,
        external=False,
        indeterminate=frozenset({429}),  # 403 is accepted: accept wins
        cache=CacheTTL(ok=60.0, broken=0.0),
        max_depth=3,
        max_pages=200,
        robots=False,
    )
    assert all(os.path.isabs(t) for t in job.check.targets[:2])
    assert job.output == Output(
        jsonl=site / "out/records.jsonl",
        state=site / "out/state.sqlite",
        junit=site / "out/links.xml",
        sarif=site / "out/links.sarif",
        markdown=site / "out/summary.md",
        annotations=True,
    )


def test_check_defaults(site: Path) -> None:
    job = load_job_text("version: 1\ncheck: {targets: .}\n", env={}, base_dir=site)
    assert job.check == CheckSpec(targets=(str(site),))
    assert job.check.accept == STATUS_2XX
    assert job.check.indeterminate == frozenset({401, 403, 429, 999})
    assert job.check.cache == CacheTTL(ok=86_400.0, broken=3_600.0)
    assert (job.check.fragments, job.check.external, job.check.robots) == (False, True, True)
    assert (job.check.max_depth, job.check.max_pages) == (10, 10_000)
    assert job.output.annotations is None  # auto: GITHUB_ACTIONS
    assert (job.output.state, job.output.junit, job.output.sarif) == (None, None, None)
    assert list(iter_requests(job)) == []
    assert count_requests(job) == 0


@pytest.mark.parametrize(
    ("value", "cache"),
    [("false", None), ("true", CacheTTL()), ("{ok: 10}", CacheTTL(ok=10.0))],
)
def test_check_cache_forms(site: Path, value: str, cache: CacheTTL | None) -> None:
    text = f"version: 1\ncheck: {{targets: README.md, cache: {value}}}\n"
    job = load_job_text(text, env={}, base_dir=site)
    assert job.check is not None
    assert job.check.cache == cache


def test_output_annotations_null_means_auto() -> None:
    job = load_job_text(CRAWL + "output: {annotations: null, junit: null}\n", env={})
    assert job.output.annotations is None
    assert job.output.junit is None


CRAWL_MISTAKES = [
    ("crawl: {}", "2:8: crawl: missing required key 'seeds'"),
    ("crawl: http://x.com/", "2:8: crawl: must be a mapping with 'seeds', not 'http://x.com/'"),
    ("crawl: {seeds: []}", "2:16: crawl.seeds: must list at least one seed URL"),
    ("crawl: {seeds: ftp://x/}", "2:16: crawl.seeds: URL must start with http:// or https://"),
    (
        "crawl: {seeds: [http://x.com/, 'http://']}",
        "2:32: crawl.seeds[1]: URL has no host",
    ),
    (
        "crawl: {seeds: http://x.com/, scope: {include: ['a(']}}",
        "2:49: crawl.scope.include[0]: invalid regular expression: missing ), unterminated "
        "subpattern at position 1",
    ),
    (
        "crawl: {seeds: http://x.com/, scope: {exclude: '['}}",
        "2:48: crawl.scope.exclude: invalid regular expression: unterminated character set at "
        "position 0",
    ),
    (
        "crawl: {seeds: http://x.com/, scope: {exclude: ['']}}",
        "2:49: crawl.scope.exclude[0]: regular expression is empty (it would match every URL)",
    ),
    (
        "crawl: {seeds: http://x.com/, scope: {prefix: /docs/}}",
        "2:47: crawl.scope.prefix: URL must start with http:// or https://",
    ),
    (
        "crawl: {seeds: http://x.com/, scope: {same_host: yes}}",
        "2:50: crawl.scope.same_host: must be true or false; 'yes' is a YAML 1.1 boolean, "
        "write true",
    ),
    (
        "crawl: {seeds: http://x.com/, scope: [a]}",
        "2:38: crawl.scope: must be a mapping, not a list",
    ),
    (
        "crawl: {seeds: http://x.com/, scope: {prefixes: http://x.com/}}",
        "2:39: crawl.scope.prefixes: unknown key 'prefixes' (did you mean 'prefix'?)",
    ),
    (
        "crawl: {seeds: http://x.com/, max_depth: -1}",
        "2:42: crawl.max_depth: must be an integer from 0 to 1000, not -1",
    ),
    (
        "crawl: {seeds: http://x.com/, max_pages: 0}",
        "2:42: crawl.max_pages: must be an integer from 1 to 100000000, not 0",
    ),
    (
        "crawl: {seeds: http://x.com/, max_pages: '10'}",
        "2:42: crawl.max_pages: must be an integer from 1 to 100000000, not a quoted string "
        "'10' (remove the quotes)",
    ),
    (
        "crawl: {seeds: http://x.com/, robots: 1}",
        "2:39: crawl.robots: must be true or false, not '1'",
    ),
    (
        "crawl: {seeds: http://x.com/, robot: true}",
        "2:31: crawl.robot: unknown key 'robot' (did you mean 'robots'?)",
    ),
    (
        "crawl: {seeds: http://x.com/, exclude: [x]}",
        "2:31: crawl.exclude: unknown key 'exclude' here; set it under 'crawl.scope:' or 'check:'",
    ),
    (
        "crawl: {seeds: http://x.com/}\nseeds: [http://y.com/]",
        "3:1: seeds: unknown key 'seeds' here; set it under 'crawl:'",
    ),
    (
        "crawl: {seeds: http://x.com/}\noutput: {sarif: /tmp/x.sarif}",
        "3:17: output.sarif: absolute paths are not allowed in a job file (pass them on the "
        "command line)",
    ),
    (
        "crawl: {seeds: http://x.com/}\noutput: {state: ../state.sqlite}",
        "3:17: output.state: path must not contain '..' (it would leave the job directory)",
    ),
    (
        "crawl: {seeds: http://x.com/}\noutput: {annotations: on}",
        "3:23: output.annotations: must be true or false; 'on' is a YAML 1.1 boolean, write true",
    ),
    (
        "crawl: {seeds: http://x.com/}\nstate: s.sqlite",
        "3:1: state: unknown key 'state' here; set it under 'output:'",
    ),
]


@pytest.mark.parametrize(("snippet", "expected"), CRAWL_MISTAKES)
def test_each_crawl_mistake_gives_one_error(snippet: str, expected: str) -> None:
    assert problems("version: 1\n" + snippet + "\n") == [f"j.yaml:{expected}"]


CHECK_MISTAKES = [
    ("check: {}", "2:8: check: missing required key 'targets'"),
    ("check: {targets: []}", "2:18: check.targets: must list at least one target"),
    (
        "check: {targets: nope.md}",
        "2:18: check.targets: target 'nope.md' not found (paths are relative to the job file's "
        "directory)",
    ),
    (
        "check: {targets: [README.md, ../other]}",
        "2:30: check.targets[1]: path must not contain '..' (it would leave the job directory)",
    ),
    (
        "check: {targets: [/etc/hosts]}",
        "2:19: check.targets[0]: absolute paths are not allowed in a job file (pass them on the "
        "command line)",
    ),
    (
        "check: {targets: ['~/docs']}",
        "2:19: check.targets[0]: '~' is not expanded; use a path relative to the job file",
    ),
    (
        "check: {targets: 'http://exa mple.com/'}",
        "2:18: check.targets: URL contains whitespace or a control character",
    ),
    (
        "check: {targets: 'ftp://example.com/'}",
        "2:18: check.targets: URL must start with http:// or https://",
    ),
    ("check: {targets: [{a: 1}]}", "2:19: check.targets[0]: must be a path or URL, not a mapping"),
    (
        "check: {targets: README.md, accept: [200, 700]}",
        "2:43: check.accept[1]: status code must be from 100 to 599",
    ),
    (
        "check: {targets: README.md, accept: []}",
        "2:37: check.accept: must list at least one status code",
    ),
    (
        "check: {targets: README.md, indeterminate: 4yy}",
        "2:44: check.indeterminate: must be a status code (100-599), a class like '2xx', or a "
        "range like '200-299'",
    ),
    (
        "check: {targets: README.md, exclude: ['(?P<x']}",
        "2:39: check.exclude[0]: invalid regular expression: missing >, unterminated name at "
        "position 4",
    ),
    (
        "check: {targets: README.md, cache: 3600}",
        "2:36: check.cache: must be a mapping like {ok: 86400, broken: 3600}, or false, not '3600'",
    ),
    (
        "check: {targets: README.md, cache: {ok: -1}}",
        "2:41: check.cache.ok: must be a number >= 0, not -1",
    ),
    (
        "check: {targets: README.md, cache: {okay: 5}}",
        "2:37: check.cache.okay: unknown key 'okay' (did you mean 'ok'?)",
    ),
    (
        "check: {targets: README.md, fragments: no}",
        "2:40: check.fragments: must be true or false; 'no' is a YAML 1.1 boolean, write false",
    ),
    (
        "check: {targets: README.md, seeds: [http://x.com/]}",
        "2:29: check.seeds: unknown key 'seeds' here; set it under 'crawl:'",
    ),
    (
        "check: {targets: README.md, max_depth: 1001}",
        "2:40: check.max_depth: must be an integer from 0 to 1000, not 1001",
    ),
]


@pytest.mark.parametrize(("snippet", "expected"), CHECK_MISTAKES)
def test_each_check_mistake_gives_one_error(site: Path, snippet: str, expected: str) -> None:
    assert problems("version: 1\n" + snippet + "\n", base_dir=site) == [f"j.yaml:{expected}"]


def test_check_target_that_is_neither_file_nor_directory(site: Path) -> None:
    os.mkfifo(site / "pipe")
    assert problems("version: 1\ncheck: {targets: pipe}\n", base_dir=site) == [
        "j.yaml:2:18: check.targets: target 'pipe' is not a file or directory"
    ]


def test_check_target_symlink_out_of_the_job_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "private").mkdir()
    jobdir = tmp_path / "job"
    jobdir.mkdir()
    os.symlink(tmp_path / "private", jobdir / "docs")
    assert problems("version: 1\ncheck: {targets: [docs]}\n", base_dir=jobdir) == [
        "j.yaml:2:19: check.targets[0]: target 'docs' leads outside the job directory "
        "(through a symlink)"
    ]


MODE_MISTAKES = [
    (
        "limits: {concurrency: 5}",
        ["1:1: missing required key 'requests' (or a 'crawl:' or 'check:' section)"],
    ),
    (
        "crawl: {seeds: http://x.com/}\ncheck: {targets: README.md}",
        [
            "3:1: check: 'crawl' and 'check' cannot be combined; pick one (a check of a URL "
            "target crawls that site itself)"
        ],
    ),
    (
        "requests: [http://x.com/]\ncrawl: {seeds: http://x.com/}",
        [
            "3:1: crawl: 'crawl' cannot be combined with 'requests' (a crawl job's requests are "
            "its seeds); keep one"
        ],
    ),
    (
        "check: {targets: README.md}\nrequests: [http://x.com/]",
        [
            "2:1: check: 'check' cannot be combined with 'requests' (a check job's requests are "
            "its targets); keep one"
        ],
    ),
]


@pytest.mark.parametrize(("snippet", "expected"), MODE_MISTAKES)
def test_exactly_one_of_requests_crawl_check(site: Path, snippet: str, expected: list[str]) -> None:
    lines = problems("version: 1\n" + snippet + "\n", base_dir=site)
    assert lines == [f"j.yaml:{line}" for line in expected]


def test_a_broken_section_does_not_also_report_a_missing_mode() -> None:
    # crawl: is present but invalid: one error, not "missing 'requests'" on top.
    assert problems("version: 1\ncrawl: {seeds: []}\n") == [
        "j.yaml:2:16: crawl.seeds: must list at least one seed URL"
    ]


def test_many_mistakes_are_reported_in_one_go(site: Path) -> None:
    text = (
        "version: 1\n"
        "check:\n"
        "  targets: [missing/, ../up, 'http://']\n"
        "  exclude: ['*']\n"
        "  cache: {ok: x}\n"
        "output: {junit: /abs.xml}\n"
    )
    assert problems(text, base_dir=site) == [
        "j.yaml:3:13: check.targets[0]: target 'missing/' not found (paths are relative to the "
        "job file's directory)",
        "j.yaml:3:23: check.targets[1]: path must not contain '..' (it would leave the job "
        "directory)",
        "j.yaml:3:30: check.targets[2]: URL has no host",
        "j.yaml:4:13: check.exclude[0]: invalid regular expression: nothing to repeat at "
        "position 0",
        "j.yaml:5:15: check.cache.ok: must be a number >= 0, not 'x'",
        "j.yaml:6:17: output.junit: absolute paths are not allowed in a job file (pass them on "
        "the command line)",
    ]


# job_for_check: the ``fetchrun check PATH_OR_URL...`` builder.


def test_job_for_check_resolves_paths_against_cwd(site: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "docs" / "index.html"
    job = job_for_check(
        ["docs", "../" + site.name + "/README.md", str(elsewhere), "https://example.com/"],
        cwd=site,
    )
    assert job.check is not None
    assert job.check.targets == (
        str(site / "docs"),
        str(site / "README.md"),  # '..' is fine on the command line, and normalized
        str(elsewhere),
        "https://example.com/",
    )
    assert job.requests == ()
    assert job.source == "<command line>"
    assert job.base_dir == site
    assert job.output == Output()  # jsonl None: the runner's default
    assert job.check.cache == CacheTTL()
    assert job.check.accept == STATUS_2XX
    assert count_requests(job) == 0


def test_job_for_check_options(site: Path) -> None:
    out = site / "out"
    job = job_for_check(
        ["README.md"],
        cwd=site,
        accept=frozenset({200, 403}),
        exclude=[r"^https://twitter\.com/"],
        fragments=True,
        external=False,
        cache=False,
        output_dir=out,
    )
    assert job.check == CheckSpec(
        targets=(str(site / "README.md"),),
        accept=frozenset({200, 403}),
        exclude=(r"^https://twitter\.com/",),
        fragments=True,
        external=False,
        indeterminate=frozenset({401, 429, 999}),  # 403 accepted
        cache=None,
    )
    assert job.output.jsonl == out / "records.jsonl"
    assert job.output.state == out / "fetchrun-state.sqlite"


def test_job_for_check_uses_the_current_directory_by_default(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(site)
    job = job_for_check(["README.md"])
    assert job.check is not None
    assert job.check.targets == (str(site / "README.md"),)


def test_job_for_check_lists_every_problem(site: Path) -> None:
    with pytest.raises(JobError) as info:
        job_for_check(
            ["nope", "ftp://example.com/", "", "README.md"],
            cwd=site,
            exclude=["ok", "a{("],
            accept=frozenset(),
        )
    assert str(info.value).splitlines() == [
        "<command line>: targets[0]: target 'nope' not found (paths are relative to the current "
        "directory)",
        "<command line>: targets[1]: 'ftp://example.com/': URL must start with http:// or https://",
        "<command line>: targets[2]: path is empty",
        "<command line>: exclude[1]: 'a{(': invalid regular expression: missing ), "
        "unterminated subpattern at position 2",
        "<command line>: accept: must list at least one status code",
    ]


def test_job_for_check_needs_a_target() -> None:
    with pytest.raises(JobError) as info:
        job_for_check([])
    assert str(info.value) == "<command line>: targets: name at least one path or URL to check"


def test_job_for_check_refuses_a_single_string() -> None:
    with pytest.raises(TypeError):
        job_for_check("README.md")
