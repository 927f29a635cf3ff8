"""Property tests: whatever the text, load_job_text returns a JobFile or
raises JobError - never any other exception - and a loaded job expands."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs import JobError, JobFile, count_requests, iter_requests, load_job_text

NOWHERE = Path("/nonexistent-fetchrun-fuzz")  # urls_file lookups fail cleanly
ENV = {"TOKEN": "t", "HOST": "example.com"}
# FETCHRUN_FUZZ_EXAMPLES=5000 for a longer hunt.
FUZZ = settings(
    max_examples=int(os.environ.get("FETCHRUN_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

KEYS = [
    "version",
    "requests",
    "session",
    "limits",
    "timeout",
    "retry",
    "output",
    "defaults",
    "headers",
    "cookies",
    "auth",
    "user",
    "password",
    "proxy",
    "verify_tls",
    "concurrency",
    "per_host",
    "rate_per_host",
    "total",
    "connect",
    "sock_read",
    "sock_connect",
    "attempts",
    "backoff",
    "max_backoff",
    "on_status",
    "jsonl",
    "bodies",
    "save",
    "max_body",
    "method",
    "follow_redirects",
    "max_redirects",
    "expect",
    "url",
    "urls_file",
    "range",
    "name",
    "params",
    "json",
    "data",
    "page",
    "X-Header",
]
TRICKY = [
    "1:30",
    "0777",
    "yes",
    "no",
    "on",
    "off",
    "~",
    "null",
    ".inf",
    "-.nan",
    "0x1F",
    "1_000",
    "1e999",
    "9" * 30,
    "2xx",
    "200-299",
    "64MiB",
    "1.5GB",
    "GET",
    "post",
    "always",
    "never",
    "on_success",
    "https://example.com/",
    "https://x.com/{page}",
    "http://127.1/",
    "../x",
    "/abs",
    "a\r\nb",
    "${TOKEN}",
    "${MISSING}",
    "$${X}",
    "${",
    "urls.txt",
    "",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(TRICKY),
)
nested = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=10)), inner, max_size=5),
    ),
    max_leaves=40,
)


def check(text: str) -> None:
    try:
        job = load_job_text(text, filename="f.yaml", env=ENV, base_dir=NOWHERE)
    except JobError as exc:
        error = exc
    else:
        assert isinstance(job, JobFile)
        count_requests(job)
        for spec in itertools.islice(iter_requests(job), 20):
            assert spec.url
        return
    assert error.problems
    assert all(p.file == "f.yaml" for p in error.problems)


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text(text: str) -> None:
    check(text)


@FUZZ
@given(st.text(alphabet="{}[]:,-&*!|>'\"#%@`?~ \n\tabc019.$", max_size=200))
def test_yaml_punctuation_soup(text: str) -> None:
    check(text)


@FUZZ
@given(nested)
def test_arbitrary_nested_structures(value: Any) -> None:
    check(yaml.safe_dump(value, allow_unicode=True))


@FUZZ
@given(
    st.dictionaries(st.sampled_from(KEYS), nested, max_size=8),
    st.lists(st.one_of(nested, st.sampled_from(TRICKY)), max_size=4),
)
def test_job_shaped_documents(sections: dict[str, Any], requests: list[Any]) -> None:
    document = {"version": 1, **sections, "requests": requests}
    check(yaml.safe_dump(document, allow_unicode=True))


header_names = st.text(alphabet="abcXYZ019-_!#", min_size=1, max_size=12).filter(
    lambda name: name.lower() not in {"content-length", "transfer-encoding"}
)
header_values = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="$\x85"),
    max_size=40,
)


@FUZZ
@given(
    st.integers(1, 10_000),
    st.one_of(st.none(), st.integers(1, 10_000)),
    st.floats(min_value=1e-6, max_value=1e6),
    st.lists(st.integers(100, 599), min_size=1, max_size=5),
    st.dictionaries(header_names, header_values, max_size=5),
)
def test_valid_settings_round_trip(
    concurrency: int,
    per_host: int | None,
    rate: float,
    statuses: list[int],
    headers: dict[str, str],
) -> None:
    unique = {name.lower(): (name, value) for name, value in headers.items()}
    document = {
        "version": 1,
        "limits": {"concurrency": concurrency, "per_host": per_host, "rate_per_host": rate},
        "retry": {"on_status": statuses},
        "session": {"headers": dict(unique.values())},
        "requests": ["https://example.com/"],
    }
    job = load_job_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), env={})
    assert (job.limits.concurrency, job.limits.per_host) == (concurrency, per_host)
    assert job.limits.rate_per_host == rate
    assert job.retry.on_status == frozenset(statuses)
    assert job.session.headers == tuple(unique.values())
