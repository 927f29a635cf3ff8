"""jobs.load and the schema: each mistake gives exactly one clear error at the
right line:col; all mistakes are reported together; valid files give the
expected model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jobs import (
    Auth,
    DataBody,
    JobError,
    JsonBody,
    Limits,
    RetryPolicy,
    SaveMode,
    TimeoutSpec,
    load_job,
    load_job_text,
)
from jobs.model import MiB

HEAD = "version: 1\nrequests: [https://example.com/]\n"  # the snippet under test is line 3


def problems(text: str, base_dir: Path | None = None) -> list[str]:
    with pytest.raises(JobError) as info:
        load_job_text(text, filename="j.yaml", env={"TOKEN": "t0k3n"}, base_dir=base_dir)
    return str(info.value).splitlines()


SECTION_MISTAKES = [
    (
        "limits: {concurrency: 0}",
        "3:23: limits.concurrency: must be an integer from 1 to 10000, not 0",
    ),
    (
        "limits: {concurrency: ten}",
        "3:23: limits.concurrency: must be an integer from 1 to 10000, not 'ten'",
    ),
    (
        "limits: {concurrency: 1.5}",
        "3:23: limits.concurrency: must be an integer from 1 to 10000, not 1.5",
    ),
    (
        'limits: {concurrency: "5"}',
        "3:23: limits.concurrency: must be an integer from 1 to 10000, not a quoted string '5' "
        "(remove the quotes)",
    ),
    (
        "limits: {concurrency: true}",
        "3:23: limits.concurrency: must be an integer from 1 to 10000, not a boolean (true)",
    ),
    ("limits: {per_host: 0}", "3:20: limits.per_host: must be an integer from 1 to 10000, not 0"),
    ("limits: {rate_per_host: 0}", "3:25: limits.rate_per_host: must be a number > 0, not 0"),
    ("timeout: {total: -1}", "3:18: timeout.total: must be a number > 0, not -1"),
    ("timeout: {total: 0}", "3:18: timeout.total: must be a number > 0, not 0"),
    (
        "timeout: {total: .inf}",
        "3:18: timeout.total: must be a number > 0: '.inf' is infinity or NaN",
    ),
    (
        "timeout: {connect: 0777}",
        "3:20: timeout.connect: must be a number > 0: '0777' is octal in YAML 1.1 (= 511); "
        "write it without the leading zero",
    ),
    (
        "timeout: {sock_read: 0x10}",
        "3:22: timeout.sock_read: must be a number > 0: '0x10' is not a plain decimal number",
    ),
    (
        "timeout: {total: 1_000}",
        "3:18: timeout.total: must be a number > 0: '1_000' is not a plain decimal number",
    ),
    ("timeout: abc", "3:10: timeout: must be a number > 0, not 'abc'"),
    ("timeout: [1]", "3:10: timeout: must be a number of seconds or a mapping, not a list"),
    ("timeout: {totl: 5}", "3:11: timeout.totl: unknown key 'totl' (did you mean 'total'?)"),
    ("retry: {attempts: 0}", "3:19: retry.attempts: must be an integer from 1 to 100, not 0"),
    ("retry: {backoff: -1}", "3:18: retry.backoff: must be a number >= 0, not -1"),
    ("retry: {backoff: 10, max_backoff: 5}", "3:8: retry: backoff must not exceed max_backoff"),
    ("retry: {on_status: []}", "3:20: retry.on_status: must list at least one status code"),
    (
        "retry: {on_status: [429, 600]}",
        "3:26: retry.on_status[1]: status code must be from 100 to 599",
    ),
    (
        "retry: {on_status: abc}",
        "3:20: retry.on_status: must be a status code (100-599), a class like '2xx', or a range "
        "like '200-299'",
    ),
    ("output: {save: sometimes}", "3:16: output.save: must be one of: always, on_success, never"),
    (
        "output: {max_body: 64XB}",
        "3:20: output.max_body: must be a size such as 1024, 10MB or 64MiB (units B, KB, MB, GB, "
        "TB, KiB, MiB, GiB, TiB)",
    ),
    ("output: {max_body: 0}", "3:20: output.max_body: must be a size > 0"),
    (
        "output: {jsonl: /abs/x.jsonl}",
        "3:17: output.jsonl: absolute paths are not allowed in a job file (pass them on the "
        "command line)",
    ),
    (
        "output: {jsonl: ../../x}",
        "3:17: output.jsonl: path must not contain '..' (it would leave the job directory)",
    ),
    (
        "output: {bodies: out/../../x}",
        "3:18: output.bodies: path must not contain '..' (it would leave the job directory)",
    ),
    (
        "output: {bodies: ~/x}",
        "3:18: output.bodies: '~' is not expanded; use a path relative to the job file",
    ),
    ("output: {bodies: 'a\\b'}", "3:18: output.bodies: use '/' as the path separator"),
    (
        "output: {bodies: 'C:x'}",
        "3:18: output.bodies: absolute paths are not allowed in a job file (pass them on the "
        "command line)",
    ),
    (
        'defaults: {method: "GE T"}',
        "3:20: defaults.method: method must be an HTTP token (letters, digits and !#$%&'*+-.^_`|~)",
    ),
    (
        "defaults: {follow_redirects: yes}",
        "3:30: defaults.follow_redirects: must be true or false; 'yes' is a YAML 1.1 boolean, "
        "write true",
    ),
    (
        'defaults: {follow_redirects: "true"}',
        "3:30: defaults.follow_redirects: must be true or false, not a quoted string 'true'",
    ),
    (
        "defaults: {max_redirects: 101}",
        "3:27: defaults.max_redirects: must be an integer from 0 to 100, not 101",
    ),
    (
        "defaults: {expect: [200, abc]}",
        "3:26: defaults.expect[1]: must be a status code (100-599), a class like '2xx', or a "
        "range like '200-299'",
    ),
    (
        "defaults: {expect: ['300-200']}",
        "3:21: defaults.expect[0]: status range must be low-high within 100-599",
    ),
    (
        "defaults: {timeout: 5}",
        "3:12: defaults.timeout: unknown key 'timeout' here; set it at the top level (or in a "
        "request)",
    ),
    (
        "defaults: {headers: {A: b}}",
        "3:12: defaults.headers: unknown key 'headers' here; set it under 'session:' (or in a "
        "request)",
    ),
    (
        "session: {headers: {Bad Name: x}}",
        "3:21: session.headers['Bad Name']: header name must be an HTTP token (letters, digits "
        "and !#$%&'*+-.^_`|~)",
    ),
    (
        'session: {headers: {Content-Length: "5"}}',
        "3:21: session.headers.Content-Length: Content-Length is computed from the body; it "
        "cannot be set",
    ),
    (
        "session: {headers: {X-A: a, x-a: b}}",
        "3:29: session.headers.x-a: duplicate header 'x-a' (header names ignore case; first set "
        "on line 3)",
    ),
    (
        "session: {headers: {X-A: true}}",
        "3:26: session.headers.X-A: 'true' is a boolean; quote it (\"true\") if you mean the "
        "string",
    ),
    (
        "session: {headers: {X-A: }}",
        "3:26: session.headers.X-A: must be a header value, not empty (null)",
    ),
    (
        'session: {headers: {X-A: "a\\u0000b"}}',
        "3:26: session.headers.X-A: header value contains a control character ('\\x00')",
    ),
    (
        'session: {cookies: {sid: "a;b"}}',
        "3:26: session.cookies.sid: cookie value has a character RFC 6265 forbids (control, "
        "space, '\"', ',', ';' or '\\')",
    ),
    (
        "session: {cookies: {'a b': c}}",
        "3:21: session.cookies['a b']: cookie name must be an HTTP token (letters, digits and "
        "!#$%&'*+-.^_`|~)",
    ),
    ("session: {auth: {user: me}}", "3:17: session.auth: missing required key 'password'"),
    (
        'session: {auth: {user: "a:b", password: x}}',
        "3:24: session.auth.user: user must not contain ':' (RFC 7617 §2)",
    ),
    (
        'session: {proxy: "ftp://proxy:21"}',
        "3:18: session.proxy: URL must start with http:// or https://",
    ),
    (
        "session: {verify_tls: off}",
        "3:23: session.verify_tls: must be true or false; 'off' is a YAML 1.1 boolean, write false",
    ),
    ("session: [a]", "3:10: session: must be a mapping, not a list"),
]


@pytest.mark.parametrize(("snippet", "expected"), SECTION_MISTAKES)
def test_each_section_mistake_gives_one_error(snippet: str, expected: str) -> None:
    assert problems(HEAD + snippet + "\n") == [f"j.yaml:{expected}"]


REQUEST_MISTAKES = [
    ("requests: [example.com]", "2:12: requests[0]: URL must start with http:// or https://"),
    ('requests: ["http://"]', "2:12: requests[0]: URL has no host"),
    (
        "requests: [https://127.1/]",
        "2:12: requests[0]: URL host is a numeric address that is not canonical dotted-decimal "
        "IPv4",
    ),
    (
        "requests: [https://2130706433/]",
        "2:12: requests[0]: URL host is a numeric address that is not canonical dotted-decimal "
        "IPv4",
    ),
    ("requests: ['https://[1::2::3]/']", "2:12: requests[0]: URL has an invalid IPv6 address"),
    ("requests: [https://a..b/]", "2:12: requests[0]: URL has an invalid host name"),
    (
        'requests: ["https://ex ample.com/"]',
        "2:12: requests[0]: URL contains whitespace or a control character",
    ),
    ("requests: [https://x.com:0/]", "2:12: requests[0]: URL port must be 1-65535"),
    ("requests: ['https://user@x.com:99999/']", "2:12: requests[0]: URL port must be 1-65535"),
    (
        'requests: ["https://x.com/{id}"]',
        "2:12: requests[0]: placeholder {id} is not defined in 'range'; add a 'range:' for it "
        "(the mapping form)",
    ),
    (
        'requests: [{url: "https://x.com/{a}/{b}", range: {a: [1, 2]}}]',
        "2:18: requests[0].url: placeholder {b} is not defined in 'range'",
    ),
    (
        'requests: [{url: "https://x.com/{a}", range: {a: [1, 2], b: [1, 2]}}]',
        "2:18: requests[0].url: range variable 'b' is not used in the URL",
    ),
    (
        'requests: [{url: "https://x.com/{a}", range: {a: [5, 2]}}]',
        "2:50: requests[0].range.a: end (2) must be >= start (5)",
    ),
    (
        'requests: [{url: "https://x.com/{a}", range: {a: [1]}}]',
        "2:50: requests[0].range.a: must be [start, end] or [start, end, step]",
    ),
    (
        'requests: [{url: "https://x.com/{a}", range: {a: [1, 9, 0]}}]',
        "2:57: requests[0].range.a[2]: must be an integer >= 1, not 0",
    ),
    (
        'requests: [{url: "https://x.com/{a}", range: {1a: [1, 2]}}]',
        "2:47: requests[0].range.1a: placeholder names use letters, digits and '_'",
    ),
    (
        'requests: [{url: "https://x.com/{a}/{b}", range: {a: [1, 100000], b: [1, 1000]}}]',
        "2:50: requests[0].range: expands to 100,000,000 requests; the limit is 10,000,000",
    ),
    (
        "requests:\n"
        '  - {url: "https://x.com/{a}", range: {a: [1, 6000000]}}\n'
        '  - {url: "https://y.com/{a}", range: {a: [1, 6000000]}}',
        "4:5: requests[1]: the ranges of this job expand to more than 10,000,000 requests",
    ),
    (
        'requests: [{url: "https://x.com/{a", range: {a: [1, 2]}}]',
        "2:18: requests[0].url: unbalanced '{' or '}' in URL (placeholders are written {name})",
    ),
    (
        'requests: [{url: "https://x.com/{a.__class__}", range: {a: [1, 2]}}]',
        "2:18: requests[0].url: invalid placeholder: write {name} or a zero-padded {name:03d}",
    ),
    (
        'requests: [{url: "https://x.com:{port}/", range: {port: [1, 70000]}}]',
        "2:18: requests[0].url: URL port must be 1-65535",
    ),
    (
        'requests: [{url: "https://x.com/", json: {a: 1}, data: "x"}]',
        "2:50: requests[0].data: 'json' and 'data' are mutually exclusive; keep one",
    ),
    ("requests: [{name: foo}]", "2:12: requests[0]: needs 'url' or 'urls_file'"),
    (
        "requests: [{urls_file: ../etc/passwd}]",
        "2:24: requests[0].urls_file: path must not contain '..' (it would leave the job "
        "directory)",
    ),
    (
        "requests: [{urls_file: /etc/passwd}]",
        "2:24: requests[0].urls_file: absolute paths are not allowed in a job file (pass them on "
        "the command line)",
    ),
    (
        "requests: [{url: https://x.com/, follow: no}]",
        "2:42: requests[0].follow: must be a mapping like {css: 'a.next', max_pages: 10} "
        "(for redirects, use follow_redirects)",
    ),
    (
        "requests: [{url: https://x.com/, name: no}]",
        "2:40: requests[0].name: 'no' is a boolean in YAML 1.1; quote it (\"no\") if you mean the "
        "string",
    ),
    (
        "requests: [{url: https://x.com/, method: 'GET /x HTTP/1.1'}]",
        "2:42: requests[0].method: method must be an HTTP token (letters, digits and "
        "!#$%&'*+-.^_`|~)",
    ),
    (
        "requests: [{url: https://x.com/, retry: {max_backoff: 0.1}}]",
        "2:41: requests[0].retry: backoff must not exceed max_backoff",
    ),
    (
        "requests: [{url: https://x.com/, timeout: {total: 1:30}}]",
        "2:51: requests[0].timeout.total: must be a number > 0: '1:30' is base 60 in YAML 1.1 "
        "(= 90); write 90",
    ),
    (
        "requests: [{url: https://x.com/, params: {a: [1, 2], b: null}}]",
        '2:57: requests[0].params.b: must be a string or number, not empty (null); write "" for '
        "an empty value",
    ),
    (
        "requests: [{url: https://x.com/, save: sometimes}]",
        "2:40: requests[0].save: must be one of: always, on_success, never",
    ),
    (
        "requests: [{url: https://x.com/, json: {on: yes}}]",
        "2:45: requests[0].json.on: ambiguous value: 'yes' is a boolean in YAML 1.1, or quote it "
        "for a string",
    ),
    (
        "requests: [{url: https://x.com/, json: [.nan]}]",
        "2:41: requests[0].json[0]: ambiguous value: '.nan' is infinity or NaN, or quote it for a "
        "string",
    ),
    ("requests: []", "2:11: requests: must list at least one request"),
    (
        "requests: https://x.com/",
        "2:11: requests: must be a list of URLs or request mappings, not 'https://x.com/'",
    ),
    (
        "requests: [[https://x.com/]]",
        "2:12: requests[0]: must be a URL or a mapping with 'url' or 'urls_file', not a list",
    ),
    (
        "requests: [https://x.com/]\nconcurency: 5",
        "3:1: concurency: unknown key 'concurency' (did you mean 'concurrency', under 'limits:'?)",
    ),
    (
        "requests: [https://x.com/]\nfollow: no",
        "3:1: follow: unknown key 'follow' (did you mean 'follow_redirects', under 'defaults:' "
        "(or in a request)?)",
    ),
    (
        "requests: [https://x.com/]\nVersion: 1",
        "3:1: Version: unknown key 'Version' (did you mean 'version'?)",
    ),
    (
        "requests: [https://x.com/]\nurl: https://y.com/",
        "3:1: url: unknown key 'url' here; set it in a 'requests:' entry",
    ),
    (
        "requests: [https://x.com/]\nfoo: 1",
        "3:1: foo: unknown key 'foo'; expected one of: version, requests, crawl, check, "
        "session, limits, timeout, retry, output, defaults, public_env",
    ),
    ("session: {}", "1:1: missing required key 'requests' (or a 'crawl:' or 'check:' section)"),
]


@pytest.mark.parametrize(("snippet", "expected"), REQUEST_MISTAKES)
def test_each_request_mistake_gives_one_error(snippet: str, expected: str) -> None:
    assert problems("version: 1\n" + snippet + "\n") == [f"j.yaml:{expected}"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            HEAD.replace("version: 1", "version: 2"),
            "j.yaml:1:10: version: unsupported version 2; this fetchrun reads version 1",
        ),
        (
            HEAD.replace("version: 1", "version: '1'"),
            "j.yaml:1:10: version: must be an integer >= 1, not a quoted string '1' "
            "(remove the quotes)",
        ),
        (
            HEAD.replace("version: 1\n", ""),
            "j.yaml:1:1: missing required key 'version' (add 'version: 1')",
        ),
    ],
)
def test_version(text: str, expected: str) -> None:
    assert problems(text) == [expected]


def test_unsupported_version_stops_before_other_checks() -> None:
    assert problems("version: 3\nlimits: {bogus: 1}\nrequests: x\n") == [
        "j.yaml:1:10: version: unsupported version 3; this fetchrun reads version 1"
    ]


def test_many_mistakes_are_reported_in_one_go() -> None:
    text = (
        "version: 1\n"
        "limits: {concurency: 5, per_host: 0}\n"
        "retry: {attempts: 3, on_status: [429, 5xx, 700]}\n"
        "output: {save: sometimes}\n"
        "requests:\n"
        "  - https://example.com/\n"
        "  - {url: ftp://x/, name: no}\n"
        "  - {url: https://x.com/, json: {a: 1}, data: x}\n"
    )
    assert problems(text) == [
        "j.yaml:2:10: limits.concurency: unknown key 'concurency' (did you mean 'concurrency'?)",
        "j.yaml:2:35: limits.per_host: must be an integer from 1 to 10000, not 0",
        "j.yaml:3:44: retry.on_status[2]: status code must be from 100 to 599",
        "j.yaml:4:16: output.save: must be one of: always, on_success, never",
        "j.yaml:7:11: requests[1].url: URL must start with http:// or https://",
        "j.yaml:7:27: requests[1].name: 'no' is a boolean in YAML 1.1; quote it (\"no\") if you "
        "mean the string",
        "j.yaml:8:41: requests[2].data: 'json' and 'data' are mutually exclusive; keep one",
    ]


def test_full_job_builds_the_model(tmp_path: Path) -> None:
    (tmp_path / "urls.txt").write_text("https://example.com/a\n")
    job_path = tmp_path / "job.yaml"
    job_path.write_text(
        "version: 1\n"
        "session:\n"
        "  headers: {User-Agent: bot, X-Num: 5}\n"
        "  cookies: {sid: abc123}\n"
        "  auth: {user: me, password: hunter2}\n"
        "  proxy: http://proxy.local:3128\n"
        "  verify_tls: false\n"
        "limits: {concurrency: 10, per_host: null, rate_per_host: 2.5}\n"
        "timeout: {total: 30, connect: 10, sock_read: 15, sock_connect: null}\n"
        "retry: {attempts: 4, backoff: 0, max_backoff: 8, on_status: [429, 5xx]}\n"
        "output: {jsonl: out/results.jsonl, bodies: bodies/, save: always, max_body: 1.5KiB}\n"
        "defaults: {method: post, follow_redirects: false, max_redirects: 0, expect: 200-204}\n"
        "requests:\n"
        "  - https://example.com/\n"
        "  - {url: https://api.example.com/items, json: {a: 1, b: [true, null, 2.5]}}\n"
        "  - {urls_file: urls.txt, data: {q: x, n: [1, 2]}}\n"
    )
    job = load_job(job_path, env={})
    assert job.version == 1
    assert job.base_dir == tmp_path
    assert job.session.headers == (("User-Agent", "bot"), ("X-Num", "5"))
    assert job.session.cookies == (("sid", "abc123"),)
    assert job.session.auth == Auth("me", "hunter2")
    assert job.session.proxy == "http://proxy.local:3128"
    assert job.session.verify_tls is False
    assert job.limits == Limits(concurrency=10, per_host=None, rate_per_host=2.5)
    assert job.timeout == TimeoutSpec(total=30, connect=10, sock_read=15, sock_connect=None)
    assert job.retry == RetryPolicy(4, 0.0, 8.0, frozenset({429, *range(500, 600)}))
    assert job.output.jsonl == tmp_path / "out/results.jsonl"
    assert job.output.bodies == tmp_path / "bodies"
    assert job.output.save is SaveMode.ALWAYS
    assert job.output.max_body == 1536
    assert job.defaults.method == "POST"
    assert job.defaults.follow_redirects is False
    assert job.defaults.max_redirects == 0
    assert job.defaults.expect == frozenset(range(200, 205))
    first, second, third = job.requests
    assert (first.kind, first.url) == ("url", "https://example.com/")
    assert (first.source.line, first.source.col) == (14, 5)
    assert second.overrides.body == JsonBody({"a": 1, "b": [True, None, 2.5]})
    assert third.kind == "urls_file"
    assert third.urls_file == tmp_path / "urls.txt"
    assert third.overrides.body == DataBody((("q", "x"), ("n", "1"), ("n", "2")))


def test_omitted_sections_keep_the_defaults() -> None:
    job = load_job_text(HEAD, env={})
    assert job.limits == Limits()
    assert job.timeout == TimeoutSpec()
    assert job.retry == RetryPolicy()
    assert job.output.max_body == 64 * MiB
    assert job.output.jsonl is None
    assert job.session.verify_tls is True


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1024", 1024),
        ("10MB", 10_000_000),
        ("64MiB", 64 * MiB),
        ("1 GiB", 1 << 30),
        ("2kb", 2000),
        ("0.5KiB", 512),
        ("null", None),
    ],
)
def test_sizes(text: str, size: int | None) -> None:
    job = load_job_text(HEAD + f"output: {{max_body: {text}}}\n", env={})
    assert job.output.max_body == size


def test_strings_accept_numbers_verbatim_and_quoted_booleans() -> None:
    job = load_job_text(
        HEAD + "session: {headers: {X-Version: 1.10, X-Mode: 0777, X-On: 'on', X-T: 1:30}}\n",
        env={},
    )
    assert job.session.headers == (
        ("X-Version", "1.10"),
        ("X-Mode", "0777"),
        ("X-On", "on"),
        ("X-T", "1:30"),
    )


def test_timeout_and_retry_shorthands() -> None:
    job = load_job_text(HEAD + "timeout: 12\nretry: 1\n", env={})
    assert job.timeout == TimeoutSpec(total=12.0)
    assert job.retry.attempts == 1


def test_urls_file_must_exist_and_be_a_file(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    lines = problems(
        "version: 1\nrequests: [{urls_file: nope.txt}, {urls_file: dir}]\n", base_dir=tmp_path
    )
    assert lines == [
        "j.yaml:2:24: requests[0].urls_file: urls_file 'nope.txt' not found (paths are relative "
        "to the job file's directory)",
        "j.yaml:2:47: requests[1].urls_file: urls_file 'dir' is not a regular file",
    ]


def test_urls_file_symlink_out_of_the_job_directory_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("https://example.com/\n")
    jobdir = tmp_path / "job"
    jobdir.mkdir()
    os.symlink(outside, jobdir / "urls.txt")
    assert problems("version: 1\nrequests: [{urls_file: urls.txt}]\n", base_dir=jobdir) == [
        "j.yaml:2:24: requests[0].urls_file: urls_file 'urls.txt' leads outside the job "
        "directory (through a symlink)"
    ]


def test_method_is_upper_cased_and_expect_accepts_a_single_value() -> None:
    job = load_job_text(
        "version: 1\nrequests: [{url: https://x.com/, method: patch, expect: 2xx}]\n", env={}
    )
    assert job.requests[0].overrides.method == "PATCH"
    assert job.requests[0].overrides.expect == frozenset(range(200, 300))


def test_sensitive_values_are_secret_even_without_interpolation() -> None:
    job = load_job_text(
        HEAD + "session:\n  headers: {Authorization: Basic abc}\n  cookies: {sid: xyz}\n"
        "  auth: {user: me, password: hunter2}\n  proxy: http://u:pw@proxy.local/\n",
        env={},
    )
    for secret in ("Basic abc", "xyz", "hunter2", "http://u:pw@proxy.local/"):
        assert secret in job.secrets
        assert secret not in repr(job)
