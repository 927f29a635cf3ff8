"""The sample job files in sample_jobs/ validate and expand as documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs import JobError, SaveMode, count_requests, is_secret, iter_requests, load_job

SAMPLES = Path(__file__).resolve().parent.parent / "sample_jobs"
ENV = {"API_TOKEN": "sample-token-123"}


@pytest.mark.parametrize("name", ["api_batch.yaml", "url_list.yaml", "nightly_mirror.yaml"])
def test_sample_validates_and_counts_match(name: str) -> None:
    job = load_job(SAMPLES / name, env=ENV)
    specs = list(iter_requests(job))
    assert specs
    assert all(spec.valid for spec in specs)
    assert count_requests(job) == len(specs)


def test_api_batch() -> None:
    job = load_job(SAMPLES / "api_batch.yaml", env=ENV)
    create, *listing, health = iter_requests(job)
    assert (create.method, create.name, create.options.expect) == (
        "POST",
        "create",
        frozenset({201}),
    )
    assert len(listing) == 50 * 3
    assert listing[1].url == "https://api.example.com/items?page=1&size=30"
    assert health.options.retry.attempts == 1
    auth = dict(create.headers)["Authorization"]
    assert auth == "Bearer sample-token-123"
    assert is_secret(auth)
    assert "sample-token-123" not in repr(job)
    assert job.output.jsonl == SAMPLES / "results" / "api_batch.jsonl"


def test_api_batch_without_the_token_names_the_variable() -> None:
    with pytest.raises(JobError) as info:
        load_job(SAMPLES / "api_batch.yaml", env={})
    assert str(info.value) == (
        f"{SAMPLES / 'api_batch.yaml'}:9:20: session.headers.Authorization: "
        "environment variable API_TOKEN is not set"
    )


def test_url_list_reads_the_neighbouring_file() -> None:
    job = load_job(SAMPLES / "url_list.yaml", env={})
    specs = list(iter_requests(job))
    assert [spec.url for spec in specs][:2] == ["https://example.com/", "https://example.com/about"]
    assert {spec.method for spec in specs} == {"HEAD"}
    assert specs[0].source.file == str(SAMPLES / "urls.txt")
    assert job.output.bodies == SAMPLES / "bodies"


def test_nightly_mirror() -> None:
    job = load_job(SAMPLES / "nightly_mirror.yaml", env={})
    specs = list(iter_requests(job))
    assert len(specs) == 1 + 6 * 12 + 1
    assert specs[1].url == "https://docs.example.com/archive/2020/01/"
    assert specs[-2].url == "https://docs.example.com/archive/2025/12/"
    assert job.output.save is SaveMode.ALWAYS
    assert job.limits.rate_per_host == 1.0
