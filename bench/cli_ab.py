"""A/B the fetchrun CLI of two source trees against the bare aiohttp script.

    python -m bench.cli_ab [--base DIR] [--urls 20000] [--runs 5] [--titles]
                           [--only cli,base,aiohttp,client,cli+t,base+t]

Starts the bench's nginx target once, then runs the contenders round-robin on
the same URL list: ``cli`` (this tree), ``base`` (the CLI of another checkout,
e.g. a copy of the tree before a change), ``aiohttp`` (the bare script) and
``client`` (the same script on our client); ``cli+t`` and ``base+t`` keep the
default page-title extraction on. Prints the median CPU µs per URL,
wall-clock URLs/s and peak RSS of each, and the CPU ratio to aiohttp. CPU
seconds per URL are the number to compare on a shared machine (wall time
moves by tens of percent); every run's records are checked first.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import site
from .measure import check_jsonl, check_lines
from .suite import JOB, PY
from .targets import Nginx, ensure_tools, free_port

ROOT = Path(__file__).resolve().parent.parent


def _run(args: list[str], cwd: Path) -> tuple[float, float, float, float]:
    """(wall s, cpu s, peak RSS MB, user cpu s) of one process run to completion."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read() if proc.stderr is not None else b""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise RuntimeError(f"{args[:4]} failed: {err.decode(errors='replace')[-800:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, usage.ru_utime


def _cli(work: Path, urls: Path, titles: bool) -> list[str]:
    out = work / "ab.jsonl"
    job = work / "ab-job.yaml"
    extract = "" if titles else ", extract: false"
    job.write_text(JOB.format(concurrency=64, per_host=8, attempts=1, jsonl=out.name,
                              urls=urls.name, extract=extract))  # fmt: skip
    return [PY, "-m", "runner.cli", str(job), "--quiet"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.cli_ab")
    p.add_argument("--base", type=Path, help="another source tree whose CLI to compare")
    p.add_argument("--urls", type=int, default=20000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--titles", action="store_true", help="keep the default title extraction")
    p.add_argument("--only", default="cli,base,aiohttp")
    args = p.parse_args(argv)
    names = [n for n in args.only.split(",") if not n.startswith("base") or args.base]
    tools = ensure_tools()
    work = Path(tempfile.mkdtemp(prefix="fetchrun-ab-"))
    stats: dict[str, list[tuple[float, ...]]] = {n: [] for n in names}
    try:
        root = site.build_site(work / "site")
        port = free_port()
        urls = site.write_url_file(work / "urls.txt", args.urls, port)
        with Nginx(tools["nginx"], work, root, port):
            for i in range(args.runs):
                for name in names:
                    stats[name].append(_one(name, args, work, urls))
                    w, c, r, u = stats[name][-1]
                    print(f"run {i + 1} {name:8s} cpu {c * 1e6 / args.urls:6.1f} µs/URL "
                          f"(user {u * 1e6 / args.urls:6.1f}) {args.urls / w:7.0f} URLs/s "
                          f"rss {r:5.1f} MB", flush=True)  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base_cpu = statistics.median(r[1] for r in stats["aiohttp"]) if "aiohttp" in stats else 0
    print("\nmedians:")
    for name, rows in stats.items():
        cpu = statistics.median(r[1] for r in rows)
        user = statistics.median(r[3] for r in rows)
        rate = statistics.median(args.urls / r[0] for r in rows)
        rss = statistics.median(r[2] for r in rows)
        ratio = f"cpu {cpu / base_cpu:4.2f}x aiohttp" if base_cpu else ""
        print(f"{name:8s} {cpu * 1e6 / args.urls:6.1f} µs/URL (user {user * 1e6 / args.urls:6.1f}) "
              f"{rate:7.0f} URLs/s rss {rss:5.1f} MB {ratio}")  # fmt: skip
    return 0


def _one(name: str, args: argparse.Namespace, work: Path, urls: Path) -> tuple[float, ...]:
    if name.split("+")[0] in ("cli", "base"):  # "cli+t": with page titles
        tree = ROOT if name.startswith("cli") else args.base
        cmd = _cli(work, urls, args.titles or name.endswith("+t"))
        result = _run(cmd, tree)
        out = work / "ab.jsonl"
        errors = check_jsonl(out, args.urls)
        out.unlink()
    else:
        out = work / f"{name}.out"
        module = "aiohttp" if name == "aiohttp" else "client"
        cmd = [PY, "-m", "bench.clients.aio", module, str(urls), str(out), "64", "8"]
        result = _run(cmd, ROOT)
        with out.open(encoding="ascii") as f:
            errors = check_lines(f, args.urls)
        out.unlink()
    if errors:
        raise RuntimeError(f"{name}: wrong results: {errors[:3]}")
    return result


if __name__ == "__main__":
    sys.exit(main())
