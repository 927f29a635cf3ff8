"""Run one client process and measure it; check what it fetched.

Wall time is the whole process (start-up and imports included, as a user
sees it); CPU seconds and peak RSS come from ``wait4``'s rusage for that
process alone.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .site import expected, number_of

ROOT = Path(__file__).resolve().parent.parent


@dataclass(slots=True)
class Run:
    wall: float
    cpu: float
    rss_mb: float
    exit_code: int
    urls: int

    @property
    def rate(self) -> float:
        return self.urls / self.wall if self.wall > 0 else 0.0


@dataclass(slots=True)
class Entry:
    """One client's runs in one bench invocation."""

    name: str
    note: str = ""
    runs: list[Run] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # correctness failures

    @property
    def ok(self) -> bool:
        return bool(self.runs) and not self.errors

    def median(self, attr: str) -> float:
        values = [getattr(r, attr) for r in self.runs]
        return statistics.median(values) if values else float("nan")


def run_process(
    args: Sequence[str],
    urls: int,
    *,
    limit: float,
    stdout: Path | None = None,
    stdin: Path | None = None,
    env: dict[str, str] | None = None,
) -> Run:
    """Run ``args`` to completion (killed after ``limit`` seconds)."""
    out = stdout.open("wb") if stdout is not None else subprocess.DEVNULL
    inp = stdin.open("rb") if stdin is not None else subprocess.DEVNULL
    try:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(args), cwd=ROOT, stdin=inp, stdout=out, stderr=subprocess.PIPE, env=env
        )
        timer = threading.Timer(limit, proc.kill)
        timer.start()
        try:
            stderr_bytes = proc.stderr.read() if proc.stderr is not None else b""
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.stderr is not None:
            proc.stderr.close()
    finally:
        if stdout is not None:
            out.close()  # type: ignore[union-attr]
        if stdin is not None:
            inp.close()  # type: ignore[union-attr]
    if proc.returncode not in (0, 1):
        tail = stderr_bytes.decode(errors="replace")[-800:]
        raise RuntimeError(f"{args[0]} {' '.join(args[1:4])}... exited {proc.returncode}: {tail}")
    return Run(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        rss_mb=usage.ru_maxrss / 1024,
        exit_code=proc.returncode,
        urls=urls,
    )


def check_lines(lines: Iterable[str], count: int, rule: str = "site") -> list[str]:
    """``URL STATUS BYTES`` lines: each URL once, each status and size right."""
    seen = bytearray(count)
    errors: list[str] = []
    wrong = 0
    for line in lines:
        parts = line.split()
        if len(parts) != 3:
            if line.strip():
                wrong += 1
                _note(errors, f"bad line {line.strip()[:120]!r}")
            continue
        url, status, size = parts
        wrong += _check_one(errors, seen, url, status, size, rule)
    return _finish(errors, seen, wrong)


def check_jsonl(path: Path, count: int, rule: str = "site") -> list[str]:
    """fetchrun's records: each URL once, final status and body size right."""
    seen = bytearray(count)
    errors: list[str] = []
    wrong = 0
    loads = json.loads
    with path.open(encoding="ascii") as f:
        for line in f:
            rec = loads(line)
            size = str(rec["size"])
            if rec.get("error"):  # say why in the report: "None (timeout, 2 attempts)"
                size += f" ({rec['error']['kind']}, {rec.get('attempts')} attempts)"
            wrong += _check_one(errors, seen, rec["url"], str(rec["status"]), size, rule)
    return _finish(errors, seen, wrong)


def _check_one(
    errors: list[str], seen: bytearray, url: str, status: str, size: str, rule: str
) -> bool:
    """Record one result; True when it is wrong."""
    try:
        n = number_of(url)
    except ValueError:
        _note(errors, f"unknown URL {url[:120]!r}")
        return True
    if not 0 <= n < len(seen):
        _note(errors, f"URL out of range {url!r}")
        return True
    if seen[n]:
        _note(errors, f"{url}: reported twice")
        return True
    seen[n] = 1
    want = expected(n) if rule == "site" else polite_expected(n)
    got = f"{status} {size}"
    if got != f"{want[0]} {want[1]}":
        _note(errors, f"{url}: got {got}, want {want[0]} {want[1]}")
        return True
    return False


def polite_expected(n: int) -> tuple[int, int]:
    from .polite_server import polite_size

    return 200, polite_size(n)


def _finish(errors: list[str], seen: bytearray, wrong: int) -> list[str]:
    """No errors: ``[]``. Else a first line "N never reported; M wrong", then details."""
    missing = len(seen) - sum(seen)
    if not wrong and not missing:
        return []
    return [f"{missing} never reported; {wrong} wrong", *errors]


def wrong_count(errors: list[str]) -> int:
    """URLs that did not end right, from :func:`_finish`'s first line."""
    if not errors:
        return 0
    missing, _, rest = errors[0].partition(" never reported; ")
    return int(missing) + int(rest.split()[0])


def _note(errors: list[str], message: str) -> None:
    if len(errors) < 20:
        errors.append(message)
    elif len(errors) == 20:
        errors.append("... more")
