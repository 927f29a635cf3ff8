"""RUN-01..03 (security.md section 3) and the runner's faults: kill -9, ENOSPC, SIGTERM.

Complements tests/test_runner_hostile.py and tests/test_cli.py (whose helpers and
hostile site are reused here): those run each case as a subprocess; here each check
ID has its own test, in-process where faults are injected at the OS layer
(``os.write``/``os.replace`` raising ENOSPC for files under one directory), and as
a real process where a signal is the fault.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import random
import signal
import subprocess
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any

import pytest
from servers import BackgroundLoop, CountingServer, ScriptedServer
from test_cli import REPO, cli_command, cli_env, complete_lines, records, wait_until, write_job
from test_runner_hostile import (
    _EVIL,
    HOSTILE_PATHS,
    MIB,
    PROBLEM,
    _alias_bomb,
    _bad_jobs,
    _hostile_site,
)

from jobs import iter_requests, load_job
from runner.cli import build_parser, main
from runner.sinks.bodies import TMP_DIR, request_hash


def fetchrun(*args: str | Path) -> int:
    """``runner.cli.main`` in-process on asyncio's own loop (the OS fakes are Python-level)."""
    argv = [str(a) for a in args]
    if "--no-uvloop" in build_parser().format_usage():
        argv.append("--no-uvloop")
    return main(argv)


def _started(server: CountingServer | ScriptedServer, loop: BackgroundLoop) -> None:
    loop.run(server.start())


@pytest.fixture
def counting(background_loop: BackgroundLoop) -> Iterator[CountingServer]:
    server = CountingServer()
    _started(server, background_loop)
    yield server
    background_loop.run(server.close())


@pytest.fixture
def hostile(background_loop: BackgroundLoop) -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    server.serve(_hostile_site)
    _started(server, background_loop)
    yield server
    background_loop.run(server.close())


def _under(path: str | Path, root: Path) -> bool:
    return os.path.realpath(path).startswith(str(root) + os.sep)


def _final_bodies(bodies: Path) -> list[Path]:
    """Published body files (the temp directory excluded)."""
    return [p for p in bodies.rglob("*.body") if TMP_DIR not in p.relative_to(bodies).parts]


# ------------------------------------------------------------------------- RUN-01


def test_RUN_01_no_request_or_server_picks_a_path(
    tmp_path: Path, hostile: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = hostile.base
    (tmp_path / "urls.txt").write_text("".join(f"{base}{p}\n" for p in HOSTILE_PATHS))
    job = write_job(
        tmp_path, "version: 1\noutput: {save: always}\nrequests: [{urls_file: urls.txt}]\n"
    )
    specs = list(iter_requests(load_job(job)))
    bodies, outside = tmp_path / "bodies", tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("untouched")
    bodies.mkdir()
    (bodies / "existing.txt").write_text("mine")
    # Symlinks planted on two requests' ways out of the tree: one at a directory
    # level (refused), one at the final name (replaced itself, target untouched).
    first, second = (request_hash("GET", s.url) for s in specs[:2])
    (bodies / first[:2]).mkdir(exist_ok=True)
    (bodies / first[:2] / first[2:4]).symlink_to(outside, target_is_directory=True)
    leaf = bodies / second[:2] / second[2:4]
    leaf.mkdir(parents=True, exist_ok=True)
    (leaf / f"{second}.body").symlink_to(outside / "keep")
    work = tmp_path / "w" / "a" / "b"  # "../../.bashrc" from here would be tmp_path/w/.bashrc
    work.mkdir(parents=True)
    monkeypatch.chdir(work)

    out = tmp_path / "r.jsonl"
    assert fetchrun(job, "--bodies", bodies, "--output", out, "--quiet") == 1

    got = records(out)
    assert len(got) == len(specs)
    root = bodies.resolve()
    failed = [r for r in got if not r["ok"]]
    assert [r["url"] for r in failed] == [specs[0].url]  # only the planted directory
    assert failed[0]["error"]["kind"] == "storage"
    saved = [r for r in got if r["ok"]]
    names = [os.path.basename(r["body_path"]) for r in saved]
    assert len(set(names)) == len(names)  # NFC/NFD and case twins never share a file
    for record in saved:
        assert _under(record["body_path"], root)
        assert len(os.path.basename(record["body_path"]).encode()) <= 255
        assert (
            hashlib.sha256(Path(record["body_path"]).read_bytes()).hexdigest() == record["sha256"]
        )
    assert sorted(os.listdir(outside)) == ["keep"]
    assert (outside / "keep").read_text() == "untouched"
    assert (bodies / "existing.txt").read_text() == "mine"
    assert not (leaf / f"{second}.body").is_symlink()
    for path in bodies.rglob("*"):
        assert path.is_symlink() or _under(path, root) or path.name == "existing.txt"
    assert not list(tmp_path.rglob(".bashrc"))  # every 200 said filename="../../.bashrc"
    assert os.listdir(bodies / TMP_DIR) == []


def test_RUN_01_a_symlinked_temp_dir_stops_the_run_before_any_request(
    tmp_path: Path, counting: CountingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    bodies, outside = tmp_path / "bodies", tmp_path / "outside"
    bodies.mkdir()
    outside.mkdir()
    (bodies / TMP_DIR).symlink_to(outside, target_is_directory=True)
    assert fetchrun(counting.url("/x"), "--bodies", bodies, "--quiet") == 1
    err = capsys.readouterr().err
    assert "not a real directory" in err
    assert "Traceback" not in err
    assert os.listdir(outside) == []
    assert counting.stats.connections == 0


# ------------------------------------------------------------------------- RUN-02


def test_RUN_02_every_bad_job_is_a_fast_bounded_config_error(
    tmp_path: Path, counting: CountingServer
) -> None:
    marker = tmp_path / "PWNED"
    url = counting.url("/")
    cases = {name: text for name, (text, _, _) in _bad_jobs(url, marker).items()}
    cases["alias-bomb"] = _alias_bomb(url)
    line = f"  - {url}?{'a' * 90}\n"
    cases["10-mib"] = "version: 1\nrequests:\n" + line * (10 * MIB // len(line) + 1)
    cases["deny-private-with-proxy"] = (
        f"version: 1\nsession: {{deny_private: true, proxy: {url}}}\nrequests: [{url}]\n"
    )
    for name, text in cases.items():
        job = write_job(tmp_path, text, f"{name}.yaml")
        err = io.StringIO()
        tracemalloc.start()
        started = time.perf_counter()
        try:
            with redirect_stderr(err):
                rc = fetchrun(job)
            took = time.perf_counter() - started
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert rc == 2, (name, err.getvalue())
        assert took < 1.0, name
        assert peak < 100 * MIB, name
        lines = err.getvalue().splitlines()
        assert lines, name
        assert all(PROBLEM.match(x) or x.startswith(f"{job}: ") for x in lines), lines
    assert not marker.exists()
    assert counting.stats.connections == 0


# ------------------------------------------------------------------------- RUN-03


def test_RUN_03_hostile_server_text_is_escaped_in_records_and_console(
    tmp_path: Path, hostile: ScriptedServer
) -> None:
    urls = [hostile.url(target.decode()) for target in _EVIL] + [hostile.url("/fine")]
    (tmp_path / "urls.txt").write_text("".join(f"{u}\n" for u in urls))
    job = write_job(tmp_path, "version: 1\nretry: 1\nrequests: [{urls_file: urls.txt}]\n")
    out, err = tmp_path / "r.jsonl", io.StringIO()
    with redirect_stderr(err):
        assert fetchrun(job, "--output", out, "--verbose") == 1
    raw = out.read_bytes()
    assert all(set(line) <= set(range(0x20, 0x7F)) for line in raw.splitlines())
    assert all(len(line) < 32 * 1024 for line in raw.splitlines())  # 1 MiB Location clipped
    assert len(records(raw)) == len(urls)
    shown = err.getvalue()
    assert "\x1b" not in shown
    assert "\r" not in shown
    assert "Traceback" not in shown


def _os_fault(
    monkeypatch: pytest.MonkeyPatch, under: Path, when: Callable[[int], bool]
) -> dict[str, int]:
    """``os.write``/``os.replace`` fail with ENOSPC for files under *under* once ``when(n)``
    is true, ``n`` counting the calls that reached *under* so far."""
    real_write, real_replace = os.write, os.replace
    root = str(under.resolve())
    calls = {"n": 0, "failed": 0}

    def hit(fd: int | None) -> bool:
        if fd is None:
            return False
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return False
        if not (target == root or target.startswith(root + os.sep)):
            return False
        calls["n"] += 1
        if when(calls["n"]):
            calls["failed"] += 1
            return True
        return False

    def write(fd: int, data: Any) -> int:
        if hit(fd):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    def replace(
        src: Any, dst: Any, *, src_dir_fd: int | None = None, dst_dir_fd: int | None = None
    ) -> None:
        if hit(dst_dir_fd):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_replace(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "replace", replace)
    return calls


def test_RUN_03_enospc_on_the_bodies_dir_is_a_clear_recorded_error(
    tmp_path: Path, counting: CountingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small bodies are written with os.write; spilled ones (> 256 KiB) are renamed in
    # with os.replace. The disk "fills up" once the first two bodies are in place.
    sizes = [1000, 300_000, 2000, 400_000, 10, 500_000, 3000, 0]
    urls = [counting.url(f"/b/{i}?size={n}") for i, n in enumerate(sizes)]
    (tmp_path / "urls.txt").write_text("".join(f"{u}\n" for u in urls))
    job = write_job(
        tmp_path,
        "version: 1\nlimits: {concurrency: 1}\noutput: {save: always}\n"
        "requests: [{urls_file: urls.txt}]\n",
    )
    bodies, out = tmp_path / "bodies", tmp_path / "r.jsonl"
    bodies.mkdir()
    calls = _os_fault(monkeypatch, bodies, lambda n: n > 3)
    err = io.StringIO()
    with redirect_stderr(err):
        rc = fetchrun(job, "--bodies", bodies, "--output", out, "--quiet")
    monkeypatch.undo()

    assert rc == 1
    assert "Traceback" not in err.getvalue()
    assert calls["failed"] >= 1
    got = {r["url"]: r for r in records(out)}  # every line complete and valid
    assert sorted(got) == sorted(urls)
    full = [r for r in got.values() if r["error"] is not None]
    assert full
    for record in full:
        assert record["error"]["kind"] == "storage"
        assert "No space left on device" in record["error"]["message"]
        assert record["body_path"] is None
    for record in got.values():
        if record["body_path"] is not None:
            data = Path(record["body_path"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == record["sha256"]
    published = {p.name for p in _final_bodies(bodies)}
    assert published == {os.path.basename(r["body_path"]) for r in got.values() if r["body_path"]}
    assert os.listdir(bodies / TMP_DIR) == []  # temp files of failed bodies removed


def test_RUN_03_enospc_on_the_records_file_leaves_no_cut_line(
    tmp_path: Path, counting: CountingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 4th record is cut by the OS (half written), then ENOSPC: the cut is rolled back."""
    urls = [counting.url(f"/j/{i}") for i in range(8)]
    job = write_job(
        tmp_path,
        "version: 1\nlimits: {concurrency: 1}\nrequests:\n" + "".join(f"  - {u}\n" for u in urls),
    )
    out = tmp_path / "records"
    out.mkdir()
    real_write = os.write
    written = {"calls": 0}

    def cut(fd: int, data: Any) -> int:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        if not target.startswith(str(out.resolve())):
            return real_write(fd, data)
        written["calls"] += 1
        if written["calls"] == 4:
            return real_write(fd, bytes(data)[: len(data) // 2])  # a short write
        if written["calls"] > 4:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", cut)
    err = io.StringIO()
    with redirect_stderr(err):
        rc = fetchrun(job, "--output", out / "r.jsonl", "--quiet")
    monkeypatch.undo()

    assert rc == 1
    assert "No space left on device" in err.getvalue()
    assert "Traceback" not in err.getvalue()
    got = records(out / "r.jsonl")  # ends with a newline, every line parses
    assert len(got) == 3
    assert [r["url"] for r in got] == urls[:3]


# ------------------------------------------------------------------------- kill -9 / SIGTERM

KILL_SIZES = (700, 90_000, 600_000)  # in memory, in memory, spilled to a temp file


def _bulk_job(tmp_path: Path, counting: CountingServer, count: int) -> tuple[Path, dict[str, int]]:
    """A job of *count* URLs (bodies saved); returns it and body-file name -> expected size."""
    urls = {
        counting.url(f"/k/{i}?size={KILL_SIZES[i % 3]}&delay=0.01"): KILL_SIZES[i % 3]
        for i in range(count)
    }
    (tmp_path / "urls.txt").write_text("".join(f"{u}\n" for u in urls))
    job = write_job(
        tmp_path,
        "version: 1\nlimits: {concurrency: 8, per_host: 8}\noutput: {save: always, "
        "jsonl: out.jsonl, bodies: bodies}\nrequests: [{urls_file: urls.txt}]\n",
    )
    names = {f"{request_hash('GET', u)}.body": size for u, size in urls.items()}
    return job, names


def _assert_no_corrupt_output(tmp_path: Path, names: dict[str, int]) -> list[dict[str, Any]]:
    got = records(tmp_path / "out.jsonl")  # only complete lines, each valid JSON
    for record in got:
        assert record["ok"], record
        data = Path(record["body_path"]).read_bytes()
        assert len(data) == record["size"]
        assert hashlib.sha256(data).hexdigest() == record["sha256"]
    for path in _final_bodies(tmp_path / "bodies"):
        # Published means complete: the right size, the server's bytes (a kill between
        # rename and record may leave a body whose record was never written: complete).
        assert path.read_bytes() == b"x" * names[path.name], path
    return got


def test_RUN_fault_kill_9_mid_run_leaves_only_complete_records_and_bodies(
    tmp_path: Path, counting: CountingServer
) -> None:
    job, names = _bulk_job(tmp_path, counting, 600)
    seed = random.randrange(2**32)
    after = random.Random(seed).randrange(5, 150)
    proc = subprocess.Popen(
        cli_command(job, "--quiet"),
        cwd=REPO,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: complete_lines(tmp_path / "out.jsonl") >= after, timeout=30)
        before = complete_lines(tmp_path / "out.jsonl")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"seed {seed}: the run ended before the kill"
    got = _assert_no_corrupt_output(tmp_path, names)
    assert len(got) >= before, f"seed {seed}: records already written were lost"
    assert len(got) < len(names)
    assert len({r["url"] for r in got}) == len(got)


def test_RUN_fault_sigterm_flushes_records_cleans_temp_files_and_exits_143(
    tmp_path: Path, counting: CountingServer
) -> None:
    job, names = _bulk_job(tmp_path, counting, 600)
    proc = subprocess.Popen(
        cli_command(job, "--quiet"),
        cwd=REPO,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: complete_lines(tmp_path / "out.jsonl") >= 30, timeout=30)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 143
    assert b"Traceback" not in err
    got = _assert_no_corrupt_output(tmp_path, names)
    assert 30 <= len(got) < len(names)
    assert os.listdir(tmp_path / "bodies" / TMP_DIR) == []  # in-flight temp files removed
    recorded = {os.path.basename(r["body_path"]) for r in got}
    assert {p.name for p in _final_bodies(tmp_path / "bodies")} == recorded
