"""SSRF-01/02 through the runner: ``session.deny_private`` in job files, JSONL records.

``fetchrun`` runs in-process (``runner.cli.main``) under the connect guard of
``ssrf_support``; the client-side checks are in test_ssrf.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import BackgroundLoop, CountingServer
from test_cli import records, write_job
from test_outcome import schema_errors

from jobs import SessionSpec

from .ssrf_support import NON_CANONICAL, fetchrun, guarded


@pytest.fixture
def connects() -> Iterator[list[str]]:
    """Addresses connected to during the test (see ``ssrf_support.guarded``)."""
    with guarded() as seen:
        yield seen


# ------------------------------------------------------------------------- SSRF-01 via runner


@pytest.fixture
def counting(background_loop: BackgroundLoop) -> Iterator[CountingServer]:
    with background_loop.serving(CountingServer) as server:
        yield server


RUNNER_TARGETS = [
    "{base}/direct",
    "http://[::1]:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",
    "http://0.0.0.0:{port}/",
    "http://10.0.0.1:{port}/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/",
    "http://[fd00::1]/",
    "http://[fe80::1]/",
]


def test_SSRF_01_runner_records_blocked_address_for_every_class(
    tmp_path: Path, counting: CountingServer, connects: list[str]
) -> None:
    urls = [t.format(base=counting.base, port=counting.port) for t in RUNNER_TARGETS]
    (tmp_path / "urls.txt").write_text("".join(f"{u}\n" for u in urls))
    job = write_job(
        tmp_path,
        "version: 1\nsession: {deny_private: true}\nretry: {attempts: 4, backoff: 0}\n"
        "requests: [{urls_file: urls.txt}]\n",
    )
    out = tmp_path / "r.jsonl"
    assert fetchrun(job, "--quiet", "--output", out) == 1
    got = records(out)
    assert sorted(r["url"] for r in got) == sorted(urls)
    for record in got:
        assert record["error"]["kind"] == "blocked_address", record
        assert record["attempts"] == 1  # not transient: never retried
        assert record["status"] is None
        assert "refused" in record["error"]["message"]
        assert schema_errors(record) == []  # the new kind is in runner/record.schema.json
    assert connects == []
    assert counting.stats.connections == 0


def test_SSRF_01_runner_without_deny_private_fetches_loopback(
    tmp_path: Path, counting: CountingServer
) -> None:
    job = write_job(tmp_path, f"version: 1\nrequests: [{counting.url('/x')}]\n")
    out = tmp_path / "r.jsonl"
    assert fetchrun(job, "--quiet", "--output", out) == 0
    assert records(out)[0]["ok"] is True


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            "session: {deny_private: true, proxy: 'http://127.0.0.1:3128'}",
            "session.deny_private: deny_private cannot be enforced through a proxy",
        ),
        ("session: {deny_private: yes}", "session.deny_private"),
        ("deny_private: true", "set it under 'session:'"),
    ],
)
def test_SSRF_01_deny_private_settings_are_validated(
    tmp_path: Path, text: str, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    job = write_job(tmp_path, f"version: 1\n{text}\nrequests: [http://example.test/]\n")
    assert fetchrun(job, "--validate") == 2
    err = capsys.readouterr().err
    assert fragment in err
    assert "Traceback" not in err


def test_SSRF_01_session_spec_refuses_proxy_with_deny_private_in_code() -> None:
    assert SessionSpec(deny_private=True).deny_private is True
    with pytest.raises(ValueError, match="proxy"):
        SessionSpec(deny_private=True, proxy="http://127.0.0.1:3128")


# ------------------------------------------------------------------------- SSRF-02 via runner


def test_SSRF_02_non_canonical_hosts_through_the_runner(
    tmp_path: Path,
    counting: CountingServer,
    connects: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    urls = [f"http://{host}:{counting.port}/" for host in NON_CANONICAL]
    # In the job file: a config error naming each entry.
    entries = "".join(f"  - {u}\n" for u in urls)
    job = write_job(tmp_path, f"version: 1\nrequests:\n{entries}")
    assert fetchrun(job, "--quiet") == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == len(urls)
    assert all("canonical" in line for line in err.splitlines()), err
    # In a urls_file: each line recorded as invalid_url, none fetched.
    (tmp_path / "urls.txt").write_text("".join(f"{u}\n" for u in urls))
    job = write_job(tmp_path, "version: 1\nrequests: [{urls_file: urls.txt}]\n", "list.yaml")
    out = tmp_path / "r.jsonl"
    assert fetchrun(job, "--quiet", "--output", out) == 1
    got = records(out)
    assert [r["error"]["kind"] for r in got] == ["invalid_url"] * len(urls)
    assert all(r["attempts"] == 0 for r in got)
    assert connects == []
    assert counting.stats.connections == 0
