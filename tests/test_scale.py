"""Scale: 200,000 URLs through ``fetchrun`` in flat memory (issue #4, "Done when").

The server is ``bench.server`` in its own process, so client and server never
share a loop or a core's worth of Python; the runner is a real CLI process
whose RSS is sampled from ``/proc/PID/status`` while it runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
URLS = 200_000
RSS_LIMIT_KIB = 150 * 1024
SAMPLE_EVERY = 0.5


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(REPO)
    return env


@pytest.fixture
def bench_server() -> Iterator[int]:
    """``python -m bench.server`` on a free loopback port; yields the port."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.server", "0"],
        cwd=REPO,
        env=_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield int(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def _rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None  # exited (a zombie has no VmRSS)


def _run_sampled(args: list[str], stderr: Path) -> tuple[int, float, list[tuple[float, int]]]:
    """Run the CLI to completion; (exit code, seconds, [(t, rss_kib)])."""
    samples: list[tuple[float, int]] = []
    with stderr.open("wb") as err:
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "runner.cli", *args],
            cwd=REPO,
            env=_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        try:
            while proc.poll() is None:
                rss = _rss_kib(proc.pid)
                if rss is not None:
                    samples.append((time.monotonic() - started, rss))
                time.sleep(SAMPLE_EVERY)
                if time.monotonic() - started > 170:
                    pytest.fail("fetchrun took far too long")
        finally:
            proc.kill()
            proc.wait()
    return proc.returncode, time.monotonic() - started, samples


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_200k_urls_in_flat_memory(tmp_path: Path, bench_server: int) -> None:
    urls = tmp_path / "urls.txt"
    with urls.open("w") as f:
        f.writelines(f"http://127.0.0.1:{bench_server}/item/{n}\n" for n in range(URLS))
    job = tmp_path / "job.yaml"
    job.write_text("version: 1\nrequests: [{urls_file: urls.txt}]\n")
    out = tmp_path / "r.jsonl"

    rc, elapsed, samples = _run_sampled(
        [str(job), "--quiet", "--output", str(out), "--concurrency", "32", "--per-host", "32"],
        tmp_path / "stderr.txt",
    )
    assert rc == 0, (tmp_path / "stderr.txt").read_text()[-2000:]
    assert (tmp_path / "stderr.txt").read_bytes() == b""  # --quiet
    print(
        f"\n{URLS} URLs in {elapsed:.1f} s: {URLS / elapsed:.0f} URLs/s, "
        f"peak RSS {max(rss for _, rss in samples) / 1024:.1f} MiB"
    )
    assert elapsed < 90

    assert len(samples) >= 10
    peak = max(rss for _, rss in samples)
    assert peak < RSS_LIMIT_KIB
    half = elapsed / 2
    first = max(rss for t, rss in samples if t <= half)
    second = max(rss for t, rss in samples if t > half)
    assert second <= first * 1.10, f"RSS grew: {first} KiB by half-way, {second} KiB after"

    seen = set()
    lines = 0
    with out.open("rb") as f:
        for line in f:
            lines += 1
            record = json.loads(line)
            assert record["ok"] is True
            assert record["status"] == 200
            seen.add(record["index"])
    assert lines == URLS
    assert seen == set(range(URLS))  # each URL exactly once
    out.unlink()  # ~100 MB; pytest keeps recent tmp dirs
