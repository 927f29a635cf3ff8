"""jobs.expand: lazy request streams (ranges, URL lists), counts, and the
inheritance of per-request options."""

from __future__ import annotations

import itertools
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobs import (
    JobError,
    JobFile,
    JsonBody,
    Limits,
    RequestSpec,
    RetryPolicy,
    SaveMode,
    TimeoutSpec,
    count_requests,
    iter_requests,
    job_from_urls,
    load_job,
    load_job_text,
)
from jobs.expand import MAX_LINE_BYTES


def write_job(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text("version: 1\n" + body)
    return path


def urls(job: JobFile) -> list[str]:
    return [spec.url for spec in iter_requests(job)]


def test_range_expansion_is_a_cartesian_product_in_declared_order() -> None:
    job = load_job_text(
        "version: 1\nrequests:\n"
        "  - {url: 'https://x.com/{a}/{b}', range: {a: [1, 2], b: [10, 30, 10]}}\n",
        env={},
    )
    specs = list(iter_requests(job))
    assert [s.url for s in specs] == [
        "https://x.com/1/10",
        "https://x.com/1/20",
        "https://x.com/1/30",
        "https://x.com/2/10",
        "https://x.com/2/20",
        "https://x.com/2/30",
    ]
    assert specs[4].vars == (("a", 2), ("b", 20))
    assert [s.index for s in specs] == list(range(6))
    assert {(s.source.line, s.source.col) for s in specs} == {(3, 5)}
    assert count_requests(job) == 6


def test_range_end_is_inclusive_and_step_may_overshoot() -> None:
    job = load_job_text(
        "version: 1\nrequests: [{url: 'https://x.com/?p={p}', range: {p: [0, 10, 4]}}]\n", env={}
    )
    assert urls(job) == ["https://x.com/?p=0", "https://x.com/?p=4", "https://x.com/?p=8"]


def test_placeholders_can_be_zero_padded_and_repeated() -> None:
    job = load_job_text(
        "version: 1\nrequests: [{url: 'https://x.com/{m:02d}/{m}', range: {m: [9, 10]}}]\n",
        env={},
    )
    assert urls(job) == ["https://x.com/09/9", "https://x.com/10/10"]


def test_huge_range_is_lazy() -> None:
    job = load_job_text(
        "version: 1\nrequests:\n"
        "  - {url: 'https://x.com/{a}/{b}', range: {a: [1, 1000], b: [1, 10000]}}\n",
        env={},
    )
    assert count_requests(job) == 10_000_000
    first = list(itertools.islice(iter_requests(job), 3))
    assert [s.url for s in first] == ["https://x.com/1/1", "https://x.com/1/2", "https://x.com/1/3"]


def test_urls_file_lines(tmp_path: Path) -> None:
    (tmp_path / "urls.txt").write_bytes(
        b"\xef\xbb\xbfhttps://example.com/a\n"
        b"# a comment\n"
        b"\n"
        b"   https://example.com/b   \r\n"
        b"not-a-url\n"
        b"https://bad\xff.example/\n"
        b"https://example.com/c#frag\n"
        b"https://example.com/" + b"x" * MAX_LINE_BYTES + b"\n"
        b"http://[::1]:8080/d"
    )
    job = load_job(write_job(tmp_path, "requests:\n  - {urls_file: urls.txt, name: list}\n"))
    specs = list(iter_requests(job))
    label = str(tmp_path / "urls.txt")
    assert [(s.url, s.source.line, s.error) for s in specs] == [
        ("https://example.com/a", 1, None),
        ("https://example.com/b", 4, None),
        ("not-a-url", 5, "URL must start with http:// or https://"),
        ("https://bad\ufffd.example/", 6, "line is not valid UTF-8"),
        ("https://example.com/c#frag", 7, None),
        ("", 8, f"line is longer than {MAX_LINE_BYTES} bytes"),
        ("http://[::1]:8080/d", 9, None),
    ]
    assert {s.source.file for s in specs} == {label}
    assert [s.valid for s in specs] == [True, True, False, False, True, False, True]
    assert {s.name for s in specs} == {"list"}
    assert count_requests(job) == len(specs)


def test_urls_file_vanishing_after_load_gives_an_error_spec(tmp_path: Path) -> None:
    (tmp_path / "urls.txt").write_text("https://example.com/\n")
    job = load_job(write_job(tmp_path, "requests: [{urls_file: urls.txt}]\n"))
    (tmp_path / "urls.txt").unlink()
    specs = list(iter_requests(job))
    assert len(specs) == 1
    assert specs[0].error == "cannot read urls_file: No such file or directory"
    assert count_requests(job) is None


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_million_line_urls_file_streams_in_constant_memory(tmp_path: Path) -> None:
    lines = 1_000_000
    with open(tmp_path / "urls.txt", "w") as file:
        file.writelines(f"https://host{i % 50}.example.com/item/{i}\n" for i in range(lines))
    job = load_job(
        write_job(tmp_path, "requests:\n  - https://example.com/\n  - {urls_file: urls.txt}\n")
    )
    assert count_requests(job) == lines + 1
    tracemalloc.start()
    try:
        seen = 0
        last: RequestSpec | None = None
        for spec in iter_requests(job):
            seen += 1
            last = spec
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seen == lines + 1
    assert last is not None
    assert (last.url, last.source.line, last.index) == (
        "https://host49.example.com/item/999999",
        lines,
        lines,
    )
    assert peak < 5 * 1024 * 1024


def test_options_inherit_defaults_session_and_top_level() -> None:
    job = load_job_text(
        "version: 1\n"
        "session: {headers: {User-Agent: bot, Accept: text/html}}\n"
        "timeout: {total: 30, connect: 5}\n"
        "retry: {attempts: 4, backoff: 1}\n"
        "output: {save: never}\n"
        "defaults: {method: HEAD, params: {key: k, lang: en}, expect: [200], max_redirects: 3}\n"
        "requests:\n"
        "  - https://x.com/plain\n"
        "  - url: https://x.com/custom\n"
        "    method: POST\n"
        "    headers: {accept: application/json}\n"
        "    params: {lang: de}\n"
        "    json: {a: 1}\n"
        "    timeout: {connect: 1}\n"
        "    retry: {attempts: 1}\n"
        "    save: always\n"
        "    follow_redirects: false\n",
        env={},
    )
    plain, custom = (spec.options for spec in iter_requests(job))
    assert plain.method == "HEAD"
    assert plain.headers == (("User-Agent", "bot"), ("Accept", "text/html"))
    assert plain.params == (("key", "k"), ("lang", "en"))
    assert plain.body is None
    assert plain.expect == frozenset({200})
    assert (plain.follow_redirects, plain.max_redirects) == (True, 3)
    assert plain.timeout == TimeoutSpec(total=30, connect=5)
    assert plain.retry == RetryPolicy(attempts=4, backoff=1)
    assert plain.save is SaveMode.NEVER
    assert custom.method == "POST"
    assert custom.headers == (("User-Agent", "bot"), ("accept", "application/json"))
    assert custom.params == (("key", "k"), ("lang", "de"))
    assert custom.body == JsonBody({"a": 1})
    assert custom.timeout == TimeoutSpec(total=30, connect=1)
    assert custom.retry == RetryPolicy(attempts=1, backoff=1)
    assert custom.save is SaveMode.ALWAYS
    assert custom.follow_redirects is False


def test_specs_of_one_entry_share_their_options() -> None:
    job = load_job_text(
        "version: 1\nrequests: [{url: 'https://x.com/{i}', range: {i: [1, 3]}}]\n", env={}
    )
    first, *rest = iter_requests(job)
    assert all(spec.options is first.options for spec in rest)


def test_job_from_urls_with_a_list_is_checked_now() -> None:
    job = job_from_urls(
        ["https://a.example/", "# skipped", "", "http://b.example:8080/x"],
        limits=Limits(concurrency=4),
    )
    assert urls(job) == ["https://a.example/", "http://b.example:8080/x"]
    assert [spec.source.line for spec in iter_requests(job)] == [1, 4]
    assert job.limits.concurrency == 4
    assert count_requests(job) == 2
    with pytest.raises(JobError) as info:
        job_from_urls(["https://ok.example/", "ftp://nope/", "https://127.1/"])
    assert str(info.value).splitlines() == [
        "<command line>:2:1: urls[1]: URL must start with http:// or https://",
        "<command line>:3:1: urls[2]: URL host is a numeric address that is not canonical "
        "dotted-decimal IPv4",
    ]


def test_job_from_urls_with_an_iterator_is_lazy() -> None:
    pulled: list[int] = []

    def stdin() -> Iterator[str]:
        for i in range(1_000_000):
            pulled.append(i)
            yield f"https://example.com/{i}\n" if i != 1 else "garbage\n"

    job = job_from_urls(stdin(), source="<stdin>")
    assert count_requests(job) is None
    head = list(itertools.islice(iter_requests(job), 3))
    assert len(pulled) == 3
    assert [(s.url, s.error, str(s.source)) for s in head] == [
        ("https://example.com/0", None, "<stdin>:1:1"),
        ("garbage", "URL must start with http:// or https://", "<stdin>:2:1"),
        ("https://example.com/2", None, "<stdin>:3:1"),
    ]


def test_job_from_urls_refuses_a_bare_string() -> None:
    with pytest.raises(TypeError, match="not a single string"):
        job_from_urls("https://example.com/")


def test_job_from_urls_rejects_unknown_overrides() -> None:
    with pytest.raises(TypeError):
        job_from_urls([], concurrency=4)
