"""Retry policy: which failures get another try, full-jitter backoff, Retry-After."""

from __future__ import annotations

import random
from email.utils import formatdate

import pytest

from jobs import RetryPolicy
from runner.retry import (
    RETRY_AFTER_CAP,
    TRANSIENT_ERRORS,
    backoff_delay,
    parse_retry_after,
    retry_delay,
    should_retry,
)

NOW = 1_700_000_000.0  # a fixed "current" Unix time
NOT_RETRIED = ("tls", "invalid_url", "too_large", "too_many_redirects", "redirect", "protocol",
               "storage", "invalid_request", "internal")  # fmt: skip


# -- should_retry ------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(TRANSIENT_ERRORS))
def test_transient_errors_are_retried_until_attempts_run_out(kind: str) -> None:
    policy = RetryPolicy(attempts=3)
    assert should_retry(policy, 1, None, kind)
    assert should_retry(policy, 2, None, kind)
    assert not should_retry(policy, 3, None, kind)


def test_the_transient_set_is_what_the_runner_documents() -> None:
    assert frozenset({
        "timeout", "connect_timeout", "read_timeout", "connect", "dns", "disconnected", "payload",
    }) == TRANSIENT_ERRORS  # fmt: skip


@pytest.mark.parametrize("kind", NOT_RETRIED)
def test_permanent_errors_are_never_retried(kind: str) -> None:
    assert not should_retry(RetryPolicy(attempts=10), 1, None, kind)


def test_statuses_are_retried_only_when_listed_in_on_status() -> None:
    default = RetryPolicy(attempts=5)
    for status in (429, 500, 502, 503, 504):
        assert should_retry(default, 1, status, None)
    for status in (200, 301, 404, 418, 501):
        assert not should_retry(default, 1, status, None)
    custom = RetryPolicy(attempts=5, on_status=frozenset({418}))
    assert should_retry(custom, 1, 418, None)
    assert not should_retry(custom, 1, 503, None)


def test_one_attempt_means_no_retry_and_no_answer_means_no_retry() -> None:
    assert not should_retry(RetryPolicy(attempts=1), 1, 503, None)
    assert not should_retry(RetryPolicy(attempts=1), 1, None, "connect")
    assert not should_retry(RetryPolicy(attempts=3), 1, None, None)


# -- backoff -----------------------------------------------------------------------


def test_backoff_ceiling_doubles_and_stops_at_max_backoff() -> None:
    policy = RetryPolicy(attempts=10, backoff=0.5, max_backoff=5.0)
    ceilings = [backoff_delay(policy, n, lambda: 1.0) for n in range(1, 8)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_backoff_is_full_jitter_over_the_whole_interval() -> None:
    policy = RetryPolicy(attempts=10, backoff=1.0, max_backoff=30.0)
    assert backoff_delay(policy, 3, lambda: 0.0) == 0.0
    assert backoff_delay(policy, 3, lambda: 0.25) == 1.0
    rng = random.Random(4)
    delays = [backoff_delay(policy, 4, rng.random) for _ in range(2000)]
    assert all(0.0 <= d <= 8.0 for d in delays)
    # Spread over [0, 8): both the low and the high quarter are used.
    assert min(delays) < 2.0
    assert max(delays) > 6.0
    assert 3.5 < sum(delays) / len(delays) < 4.5


def test_huge_attempt_numbers_stay_at_max_backoff() -> None:
    policy = RetryPolicy(attempts=10_000, backoff=1.0, max_backoff=60.0)
    assert backoff_delay(policy, 1000, lambda: 1.0) == 60.0


# -- Retry-After -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("0", 0.0), ("7", 7.0), (" 120 ", 120.0), ("3600", 3600.0), ("9999999999", 9999999999.0)],
)
def test_retry_after_delta_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value, NOW) == seconds


@pytest.mark.parametrize(
    "value",
    [None, "", "  ", "-1", "1.5", "1e3", "+5", "soon", "12345678901", "²", "١٢", "5 s",
     "Sun, 32 Nov 1994 08:49:37 GMT", "Mon, 06 Foo 1994 08:49:37 GMT"],
)  # fmt: skip
def test_retry_after_junk_is_ignored(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


def test_retry_after_imf_fixdate_in_the_future() -> None:
    value = formatdate(NOW + 30, usegmt=True)  # "Tue, 14 Nov 2023 22:13:50 GMT"
    assert parse_retry_after(value, NOW) == pytest.approx(30.0)


@pytest.mark.parametrize(
    "value",
    [
        "Sun, 06 Nov 1994 08:49:37 GMT",  # IMF-fixdate
        "Sunday, 06-Nov-94 08:49:37 GMT",  # obsolete RFC 850
        "Sun Nov  6 08:49:37 1994",  # obsolete asctime (no zone: UTC by definition)
    ],
)
def test_retry_after_accepts_all_three_http_date_formats(value: str) -> None:
    # RFC 9110 §5.6.7: a recipient MUST accept all three formats.
    moment = 784111777.0  # 1994-11-06T08:49:37Z
    assert parse_retry_after(value, moment - 42) == pytest.approx(42.0)


def test_retry_after_date_in_the_past_means_now() -> None:
    assert parse_retry_after(formatdate(NOW - 3600, usegmt=True), NOW) == 0.0


def test_retry_delay_prefers_the_server_and_caps_it() -> None:
    policy = RetryPolicy(attempts=3, backoff=1.0, max_backoff=30.0)
    assert retry_delay(policy, 1, "7", NOW, lambda: 0.5) == 7.0
    assert retry_delay(policy, 1, "100000", NOW, lambda: 0.5) == RETRY_AFTER_CAP
    date = formatdate(NOW + 86400, usegmt=True)
    assert retry_delay(policy, 1, date, NOW, lambda: 0.5) == RETRY_AFTER_CAP
    generous = RetryPolicy(attempts=3, backoff=1.0, max_backoff=600.0)
    assert retry_delay(generous, 1, "100000", NOW, lambda: 0.5) == 600.0
    assert retry_delay(generous, 1, "300", NOW, lambda: 0.5) == 300.0


def test_retry_delay_falls_back_to_backoff_without_a_usable_retry_after() -> None:
    policy = RetryPolicy(attempts=5, backoff=2.0, max_backoff=30.0)
    assert retry_delay(policy, 2, None, NOW, lambda: 0.5) == 2.0
    assert retry_delay(policy, 2, "garbage", NOW, lambda: 0.5) == 2.0
