"""jobs.model and jobs.secret: frozen values, their safety nets and helpers."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

import jobs
from jobs import (
    Auth,
    JobFile,
    Limits,
    Location,
    RangeVar,
    Request,
    RetryPolicy,
    Secret,
    TimeoutSpec,
    is_secret,
)
from jobs.secret import redact, show


def test_public_api_is_sorted_and_importable() -> None:
    assert jobs.__all__ == sorted(jobs.__all__)
    for name in (
        "load_job",
        "load_job_text",
        "JobError",
        "JobFile",
        "RequestSpec",
        "iter_requests",
        "count_requests",
        "job_from_urls",
    ):
        assert name in jobs.__all__
        assert getattr(jobs, name) is not None


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Limits(concurrency=0), "Limits.concurrency must be >= 1"),
        (lambda: Limits(per_host=0), "Limits.per_host must be >= 1"),
        (lambda: Limits(rate_per_host=0.0), "Limits.rate_per_host must be > 0"),
        (lambda: TimeoutSpec(total=0), "TimeoutSpec.total must be None or > 0"),
        (lambda: RetryPolicy(attempts=0), "RetryPolicy.attempts must be >= 1"),
        (lambda: RetryPolicy(backoff=5, max_backoff=1), "need 0 <= backoff <= max_backoff"),
    ],
)
def test_models_built_in_code_are_checked(build: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_models_are_frozen() -> None:
    limits = Limits()
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.concurrency = 5  # type: ignore[misc]
    assert dataclasses.replace(limits, concurrency=5).concurrency == 5


def test_range_values_are_inclusive() -> None:
    assert list(RangeVar("p", 1, 3).values()) == [1, 2, 3]
    assert list(RangeVar("p", 0, 10, 5).values()) == [0, 5, 10]
    assert len(RangeVar("p", 1, 10**9).values()) == 10**9


def test_request_kind() -> None:
    here = Location("j.yaml", 3)
    assert Request(here, url="https://x/").kind == "url"
    assert Request(here, url="https://x/{p}", ranges=(RangeVar("p", 1, 2),)).kind == "range"
    assert Request(here, urls_file=Path("u.txt")).kind == "urls_file"
    assert Request(here, urls=["https://x/"]).kind == "urls"
    assert str(here) == "j.yaml:3:1"


def test_secret_is_the_value_with_a_masked_repr() -> None:
    secret = Secret("hunter2")
    assert secret == "hunter2"
    assert secret.encode() == b"hunter2"
    assert repr(secret) == "Secret('***')"
    assert "hunter2" not in repr([secret, {"k": secret}])
    assert is_secret(secret)
    assert not is_secret("hunter2")
    assert show(secret) == "***"
    assert show("plain\r\n") == "'plain\\r\\n'"
    assert show("x" * 100).endswith("...'")


def test_auth_repr_hides_the_password() -> None:
    assert "hunter2" not in repr(Auth("me", "hunter2"))


def test_redact_masks_longest_first() -> None:
    assert redact("token=abcdef; short=abc", {"abc", "abcdef"}) == "token=***; short=***"
    assert redact("nothing here", set()) == "nothing here"
    job = JobFile(requests=(), secrets=frozenset({"tok"}))
    assert job.redact("Bearer tok") == "Bearer ***"
