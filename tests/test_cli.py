"""``fetchrun`` end to end, as users run it: a real process, or ``main(argv)`` in-process.

The servers are real loopback servers on a background loop (tests/servers/);
the CLI runs as ``python -m runner.cli`` with ``PYTHONPATH`` at the repo root,
so nothing needs installing. ``run_cli``, ``records`` and ``write_job`` are also
used by ``test_runner_hostile.py``.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from servers import BackgroundLoop, CountingServer

from runner.cli import main

REPO = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class CliRun:
    """How one ``fetchrun`` process ended."""

    rc: int
    stdout: bytes
    stderr: bytes
    elapsed: float  # seconds, process start to exit
    maxrss_kib: int

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", "backslashreplace")

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "backslashreplace")


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI process: ours, minus PYTHON* knobs, plus the repo."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def cli_command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "runner.cli", *map(str, args)]


# A parent of the CLI that reports the CLI's peak RSS. Measured from pytest itself,
# ru_maxrss would include pytest's own size: a vfork'd child inherits its parent's
# high-water mark until exec. call(timeout=) kills the CLI if it hangs.
_MEASURE = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.call(sys.argv[3:], timeout=float(sys.argv[2]))\n"
    "with open(sys.argv[1], 'w') as f:\n"
    "    f.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "sys.exit(rc if rc >= 0 else 128 - rc)\n"
)


def run_cli(
    *args: str | Path,
    cwd: Path = REPO,
    env: dict[str, str] | None = None,
    stdin: bytes | None = None,
    timeout: float = 30.0,
) -> CliRun:
    """Run ``fetchrun ARGS`` to completion; also measure its peak RSS."""
    with tempfile.TemporaryDirectory() as scratch:
        rss_file = Path(scratch) / "rss"
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-c", _MEASURE, str(rss_file), str(timeout), *cli_command(*args)],
            cwd=cwd,
            env=env if env is not None else cli_env(),
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout + 10,
            check=False,
        )
        elapsed = time.monotonic() - started
        if not rss_file.exists():
            pytest.fail(f"fetchrun did not finish within {timeout} s: {proc.stderr[-2000:]!r}")
        maxrss = int(rss_file.read_text())
    return CliRun(proc.returncode, proc.stdout, proc.stderr, elapsed, maxrss)


async def _started(server: CountingServer) -> CountingServer:
    await server.start()
    return server


@pytest.fixture
def counting(background_loop: BackgroundLoop) -> Iterator[CountingServer]:
    """A CountingServer on the background loop, so a blocking test can wait on a process."""
    server = background_loop.run(_started(CountingServer(body=b"hello body")))
    yield server
    background_loop.run(server.close())


def write_job(directory: Path, text: str, name: str = "job.yaml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def records(data: bytes | str | Path) -> list[dict[str, Any]]:
    """Parse JSONL strictly: every line a complete JSON object, nothing else."""
    if isinstance(data, Path):
        data = data.read_bytes()
    text = data.decode("ascii") if isinstance(data, bytes) else data
    assert text == "" or text.endswith("\n"), "the last record is cut"
    lines = text.splitlines()
    parsed = [json.loads(line) for line in lines]
    assert all(isinstance(r, dict) for r in parsed)
    # Strict (I-JSON) text: a lone surrogate escape would raise here.
    json.dumps(parsed, ensure_ascii=False).encode("utf-8")
    return parsed


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached in time")
        time.sleep(0.02)


def complete_lines(path: Path) -> int:
    if not path.exists():
        return 0
    return path.read_bytes().count(b"\n")


def summary_wall(stderr: str) -> float:
    match = re.search(r"requests in ([0-9.]+) s", stderr)
    assert match, stderr
    return float(match[1])


# ------------------------------------------------------------------------- job files


def test_job_file_writes_one_record_per_request(tmp_path: Path, counting: CountingServer) -> None:
    urls = [counting.url(f"/a/{i}") for i in range(3)]
    job = write_job(
        tmp_path,
        "version: 1\noutput: {jsonl: out/results.jsonl}\nrequests:\n"
        + "".join(f"  - {u}\n" for u in urls),
    )
    run = run_cli(job)
    assert run.rc == 0, run.err
    assert run.stdout == b""
    assert "3 requests" in run.err
    assert "3 as expected, 0 not" in run.err
    got = records(tmp_path / "out" / "results.jsonl")
    assert sorted(r["url"] for r in got) == urls
    assert all(r["ok"] and r["status"] == 200 and r["size"] == 10 for r in got)
    assert counting.stats.requests == 3


def test_records_are_flushed_as_requests_end(tmp_path: Path, counting: CountingServer) -> None:
    fast = [counting.url(f"/fast/{i}") for i in range(3)]
    slow = counting.url("/slow?delay=2")
    out = tmp_path / "r.jsonl"
    job = write_job(
        tmp_path, "version: 1\nrequests:\n" + "".join(f"  - {u}\n" for u in [slow, *fast])
    )
    proc = subprocess.Popen(
        cli_command(job, "--output", out, "--quiet"),
        cwd=REPO,
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: complete_lines(out) >= 3)
        assert proc.poll() is None, "the slow request should still be running"
        early = records(out)
        assert sorted(r["url"] for r in early) == fast
        assert proc.wait(timeout=15) == 0
    finally:
        proc.kill()
        proc.wait()
    assert [r["url"] for r in records(out)][-1] == slow


def test_output_dash_writes_records_to_stdout(tmp_path: Path, counting: CountingServer) -> None:
    job = write_job(
        tmp_path,
        f"version: 1\noutput: {{jsonl: unused.jsonl}}\nrequests: [{counting.url('/x')}]\n",
    )
    run = run_cli(job, "--output", "-", "--quiet")
    assert run.rc == 0
    (record,) = records(run.stdout)
    assert record["url"] == counting.url("/x")
    assert record["ok"] is True
    assert not (tmp_path / "unused.jsonl").exists()


def test_bodies_are_saved_under_the_bodies_dir(tmp_path: Path, counting: CountingServer) -> None:
    urls = [counting.url("/b/1"), counting.url("/b/2?size=300000")]
    bodies = tmp_path / "bodies"
    run = run_cli(*urls, "--bodies", bodies, "--quiet", cwd=tmp_path)
    assert run.rc == 0, run.err
    got = {r["url"]: r for r in records(run.stdout)}
    root = os.path.realpath(bodies) + os.sep
    for url, expected in zip(urls, (b"hello body", b"x" * 300000), strict=True):
        path = got[url]["body_path"]
        assert os.path.realpath(path).startswith(root)
        assert Path(path).read_bytes() == expected
        assert got[url]["size"] == len(expected)
    assert not os.listdir(bodies / ".tmp")  # no temp files left behind


def test_per_host_override_caps_requests_in_flight(counting: CountingServer) -> None:
    urls = [counting.url(f"/p/{i}?delay=0.2") for i in range(8)]
    run = run_cli(*urls, "--per-host", "2", "--quiet")
    assert run.rc == 0, run.err
    assert len(records(run.stdout)) == 8
    assert counting.stats.max_in_flight == 2


def test_concurrency_override_caps_requests_in_flight(counting: CountingServer) -> None:
    urls = [counting.url(f"/c/{i}?delay=0.2") for i in range(9)]
    run = run_cli(*urls, "--concurrency", "3", "--per-host", "50", "--quiet")
    assert run.rc == 0, run.err
    assert counting.stats.max_in_flight == 3


def test_rate_override_paces_requests(counting: CountingServer) -> None:
    urls = [counting.url(f"/r/{i}") for i in range(5)]
    run = run_cli(*urls, "--rate", "4", "--output", "-")
    assert run.rc == 0, run.err
    # Five starts at 4/s: the last one no earlier than 4 * 0.25 s after the first.
    assert summary_wall(run.err) >= 0.9
    assert counting.stats.requests == 5


@pytest.mark.parametrize("flag", ["--concurrency", "--per-host", "--rate"])
def test_bad_override_values_are_usage_errors(flag: str, counting: CountingServer) -> None:
    run = run_cli(counting.url("/"), flag, "0")
    assert run.rc == 2
    assert "Traceback" not in run.err
    assert flag in run.err
    assert counting.stats.connections == 0


# ------------------------------------------------------------------------- URLs, stdin


def test_urls_on_the_command_line(counting: CountingServer) -> None:
    urls = [counting.url("/one"), counting.url("/two")]
    run = run_cli(*urls)
    assert run.rc == 0, run.err
    assert sorted(r["url"] for r in records(run.stdout)) == urls
    assert "2 requests" in run.err


def test_urls_on_stdin(counting: CountingServer) -> None:
    urls = [counting.url("/in/1"), counting.url("/in/2"), counting.url("/in/3")]
    text = f"# a comment\n{urls[0]}\n\n{urls[1]}\r\n{urls[2]}\n"
    run = run_cli("-", "--quiet", stdin=text.encode())
    assert run.rc == 0, run.err
    assert sorted(r["url"] for r in records(run.stdout)) == urls
    assert counting.stats.requests == 3


def test_an_invalid_stdin_line_is_recorded_not_fatal(counting: CountingServer) -> None:
    run = run_cli("-", stdin=f"not a url\n{counting.url('/ok')}\n".encode())
    assert run.rc == 1
    assert "1 as expected, 1 not, 0 retries" in run.err  # never "-1 retries"
    bad, good = sorted(records(run.stdout), key=lambda r: r["ok"])
    assert bad["error"]["kind"] == "invalid_url"
    assert bad["attempts"] == 0
    assert good["ok"] is True


def test_job_file_and_urls_together_is_a_usage_error(tmp_path: Path) -> None:
    job = write_job(tmp_path, "version: 1\nrequests: [http://127.0.0.1:9/]\n")
    run = run_cli(job, "http://127.0.0.1:9/")
    assert run.rc == 2
    assert "give one job file" in run.err
    assert "Traceback" not in run.err


def test_missing_job_file_is_a_usage_error(tmp_path: Path) -> None:
    run = run_cli(tmp_path / "nope.yaml")
    assert run.rc == 2
    assert "nope.yaml" in run.err
    assert "cannot read" in run.err
    assert "Traceback" not in run.err


def test_unknown_option_is_a_usage_error() -> None:
    run = run_cli("--no-such-option", "http://127.0.0.1:9/")
    assert run.rc == 2
    assert "unrecognized arguments" in run.err


# ------------------------------------------------------------------------- modes


def test_validate_accepts_a_good_job(tmp_path: Path, counting: CountingServer) -> None:
    job = write_job(tmp_path, f"version: 1\nrequests: [{counting.url('/')}]\n")
    run = run_cli(job, "--validate")
    assert run.rc == 0
    assert run.err.strip() == f"{job}: ok"
    assert counting.stats.connections == 0


def test_validate_refuses_a_bad_job(tmp_path: Path, counting: CountingServer) -> None:
    job = write_job(
        tmp_path, f"version: 1\nlimits: {{concurrency: 0}}\nrequests: [{counting.url('/')}]\n"
    )
    run = run_cli(job, "--validate")
    assert run.rc == 2
    assert run.err.startswith(f"{job}:2:")
    assert "limits.concurrency" in run.err
    assert counting.stats.connections == 0


def test_dry_run_lists_requests_without_traffic(tmp_path: Path, counting: CountingServer) -> None:
    base = counting.base
    job = write_job(
        tmp_path,
        "version: 1\nrequests:\n"
        f"  - {base}/first\n"
        f'  - {{url: "{base}/page/{{n}}", range: {{n: [1, 3]}}, method: POST, json: {{a: 1}}}}\n',
    )
    run = run_cli(job, "--dry-run")
    assert run.rc == 0, run.err
    assert run.out.splitlines() == [
        f"GET {base}/first",
        f"POST {base}/page/1",
        f"POST {base}/page/2",
        f"POST {base}/page/3",
    ]
    assert run.err.strip() == "4 requests"
    assert counting.stats.connections == 0


def test_quiet_prints_nothing(tmp_path: Path, counting: CountingServer) -> None:
    out = tmp_path / "r.jsonl"
    run = run_cli(counting.url("/q"), counting.url("/q?status=404"), "--quiet", "--output", out)
    assert run.rc == 1
    assert run.stdout == b""
    assert run.stderr == b""
    assert len(records(out)) == 2


def test_verbose_prints_a_line_per_request(tmp_path: Path, counting: CountingServer) -> None:
    urls = [counting.url("/v/1"), counting.url("/v/2?status=404"), counting.url("/v/3")]
    run = run_cli(*urls, "--verbose", "--output", tmp_path / "r.jsonl")
    assert run.rc == 1
    lines = run.err.splitlines()
    assert sorted(line for line in lines if "/v/" in line) == [
        f"200 {urls[0]}",
        f"200 {urls[2]}",
        f"404 {urls[1]}",
    ]
    assert any(line.startswith("fetchrun: 3 requests") for line in lines)


def test_help_documents_the_exit_codes() -> None:
    run = run_cli("--help")
    assert run.rc == 0
    text = " ".join(run.out.split())
    for fragment in ("0 all as expected", "1 some requests failed", "2 invalid job", "130/143"):
        assert fragment in text


# ------------------------------------------------------------------------- exit codes


def test_exit_code_1_when_a_status_is_not_expected(counting: CountingServer) -> None:
    run = run_cli(counting.url("/ok"), counting.url("/gone?status=410"), "--quiet")
    assert run.rc == 1
    by_url = {r["url"]: r for r in records(run.stdout)}
    assert by_url[counting.url("/gone?status=410")]["ok"] is False
    assert by_url[counting.url("/ok")]["ok"] is True


def test_exit_code_1_on_a_connection_error(tmp_path: Path, unused_port: int) -> None:
    url = f"http://127.0.0.1:{unused_port}/"
    job = write_job(tmp_path, f"version: 1\nretry: {{attempts: 1}}\nrequests: [{url}]\n")
    run = run_cli(job, "--quiet")
    assert run.rc == 1
    (record,) = records(run.stdout)
    assert record["error"]["kind"] == "connect"
    assert record["status"] is None


def test_expect_makes_an_error_status_a_success(tmp_path: Path, counting: CountingServer) -> None:
    url = counting.url("/missing?status=404")
    job = write_job(tmp_path, f'version: 1\nrequests: [{{url: "{url}", expect: [404]}}]\n')
    run = run_cli(job, "--quiet")
    assert run.rc == 0
    assert records(run.stdout)[0]["ok"] is True


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_run_cleanly(
    tmp_path: Path, counting: CountingServer, signum: signal.Signals, code: int
) -> None:
    fast = [counting.url(f"/f/{i}") for i in range(4)]
    slow = [counting.url(f"/s/{i}?delay=30") for i in range(4)]
    out = tmp_path / "r.jsonl"
    proc = subprocess.Popen(
        cli_command(*slow, *fast, "--output", out, "--quiet"),
        cwd=REPO,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: complete_lines(out) >= 4)
        assert proc.poll() is None
        sent = time.monotonic()
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=10)
        took = time.monotonic() - sent
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == code
    assert took < 5.0
    assert b"Traceback" not in err
    got = records(out)  # only complete lines
    assert sorted(r["url"] for r in got) == fast  # the unfinished ones are not recorded


# ------------------------------------------------------------------------- in-process


def test_main_in_process_writes_records(tmp_path: Path, counting: CountingServer) -> None:
    out = tmp_path / "r.jsonl"
    assert main([counting.url("/m/1"), counting.url("/m/2"), "-q", "-o", str(out)]) == 0
    assert [r["ok"] for r in records(out)] == [True, True]


def test_main_in_process_output_to_stdout(
    counting: CountingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([counting.url("/m"), "--output", "-"]) == 0
    captured = capsys.readouterr()
    (record,) = records(captured.out)
    assert record["status"] == 200
    assert "1 requests" in captured.err


def test_main_in_process_reads_stdin(
    counting: CountingServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        sys, "stdin", io.StringIO(f"{counting.url('/s1')}\n{counting.url('/s2')}\n")
    )
    assert main(["-", "--quiet"]) == 0
    assert len(records(capsys.readouterr().out)) == 2


def test_main_in_process_validate_and_dry_run(
    tmp_path: Path, counting: CountingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    job = write_job(tmp_path, f"version: 1\nrequests: [{counting.url('/d')}]\n")
    assert main([str(job), "--validate"]) == 0
    assert main([str(job), "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"GET {counting.url('/d')}\n"
    assert f"{job}: ok" in captured.err
    assert counting.stats.connections == 0


def test_main_in_process_bad_job(
    tmp_path: Path, counting: CountingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    job = write_job(tmp_path, f"version: 1\nrequets: [{counting.url('/')}]\n")
    assert main([str(job)]) == 2
    err = capsys.readouterr().err
    assert f"{job}:2:1: requets: unknown key 'requets' (did you mean 'requests'?)" in err
    assert counting.stats.connections == 0


def test_main_in_process_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--concurrency", "x", "http://127.0.0.1:9/"])
    assert info.value.code == 2
    assert "--concurrency" in capsys.readouterr().err


# ------------------------------------------------------------------------- demo


def test_demo_runs_clean(tmp_path: Path) -> None:
    out = tmp_path / "demo-results"
    run = run_cli("demo", "--output", out, cwd=tmp_path, timeout=60)
    assert run.rc == 0, run.err
    for noise in ("Traceback", "Exception in callback", "Task was destroyed", "Error"):
        assert noise not in run.err
    assert "36 requests" in run.err
    assert "36 as expected, 0 not" in run.err
    got = records(out / "results.jsonl")
    assert len(got) == 36
    assert all(r["ok"] for r in got)
    (flaky,) = (r for r in got if r["name"] == "flaky")
    assert flaky["attempts"] == 3
    assert flaky["status"] == 200
    saved = [r["body_path"] for r in got if r["body_path"]]
    assert saved
    assert all(p.startswith(str(out / "bodies")) for p in saved)
    assert os.listdir(tmp_path) == ["demo-results"]  # nothing else littered
