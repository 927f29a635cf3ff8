"""The runner's per-request shortcuts give what the general code they replace gives.

Each fast path (bench/NOTES.md, 2026-11-21 CLI section) is checked against the
slower original: the politeness key against ``urlsplit``, the timestamp against
``datetime``, the shared request keyword arguments against a fresh build.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

import client
from jobs import RequestSpec, iter_requests, job_from_urls
from runner.engine import _host_key, _now_iso
from runner.fetch import PhaseClock, request_kwargs


def reference_host_key(url: str) -> str:
    return urlsplit(url).netloc.lower().rpartition("@")[2]


_PIECES = st.sampled_from(
    ["a", "B", "1", ".", "-", "_", "~", "%41", ":", "8080", "@", "user:pw@", "[::1]", "[",
     "]", "/", "?", "#", "\t", "\n", " ", "é", "ß", "\u2100", "!$&'()*+,;=", "\\", "^"]
)  # fmt: skip
_URLS = st.builds(
    lambda scheme, parts: scheme + "".join(parts),
    st.sampled_from(["http://", "https://", "HTTP://", "http:/", "ftp://", ""]),
    st.lists(_PIECES, max_size=10),
)


@settings(max_examples=800, deadline=None)
@given(_URLS)
def test_host_key_is_urlsplits_netloc(url: str) -> None:
    try:
        want = reference_host_key(url)
    except ValueError:  # e.g. an unbalanced "[": the fast path must not hide it either
        try:
            _host_key(url)
        except ValueError:
            return
        raise AssertionError(f"{url!r} parsed") from None
    assert _host_key(url) == want


def test_host_key_of_common_urls() -> None:
    assert _host_key("http://127.0.0.3:8080/p/1.html?n=1") == "127.0.0.3:8080"
    assert _host_key("https://User:Pw@Example.COM/x") == "example.com"
    assert _host_key("http://example.com") == "example.com"
    assert _host_key("http://[::1]:81/") == "[::1]:81"  # urlsplit's path


def test_now_iso_is_utc_with_milliseconds() -> None:
    before = datetime.now(UTC)
    text = _now_iso()
    after = datetime.now(UTC)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", text)
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert before - timedelta(milliseconds=1) <= stamp <= after


def _spec() -> RequestSpec:
    return next(iter_requests(job_from_urls(["http://a.test/"])))


def test_request_kwargs_are_a_new_dict_each_time() -> None:
    spec = _spec()
    first = request_kwargs(spec, PhaseClock())
    first["headers"] = (("X-Extra", "1"),)  # a caller (the crawler) may edit its copy
    clock = PhaseClock(dns_start=None, dns=None, connect_start=None, connect=None)
    second = request_kwargs(spec, clock)
    assert second["headers"] == spec.options.headers
    assert second["trace_request_ctx"] is clock
    t = spec.options.timeout
    assert second["timeout"] == client.ClientTimeout(
        total=t.total, connect=t.connect, sock_read=t.sock_read, sock_connect=t.sock_connect
    )
    assert second["allow_redirects"] is spec.options.follow_redirects
    assert second["max_redirects"] == spec.options.max_redirects
    assert "params" not in second
    assert "json" not in second
    assert "data" not in second
