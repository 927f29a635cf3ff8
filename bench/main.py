"""``python -m bench`` (or ``bench/run``): the whole benchmark, one command.

    python -m bench [--quick | --full] [--runs 3] [--only NAME,...] [--no-scaling]

Starts nginx (generated static site on 127.0.0.2-11) and, for the polite
case, ``bench.polite_server``; runs every contender on the same URL list,
round-robin, ``--runs`` times; checks each run's statuses and byte counts
before keeping its numbers; then the scaling run, start-up times, and
writes ``bench/RESULTS.md``, ``bench/results.png`` and ``bench/results.json``.
Every traffic loop is bounded (URL count, wrk duration, a kill timer per run).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from . import site
from .measure import Entry, Run, wrong_count
from .report import write_report
from .suite import PY, Contender, Setup, contenders, fetchrun, wrk_ceiling
from .targets import Nginx, PoliteServer, ensure_tools, free_port

HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="2,000 URLs; scaling at 10k only")
    size.add_argument("--full", action="store_true", help="adds the 1M-URL scaling run")
    p.add_argument("--urls", type=int, help="URLs per comparison run (default 20,000)")
    p.add_argument("--runs", type=int, default=3, help="runs per contender (median reported)")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--per-host", type=int, default=8)
    p.add_argument("--only", help="comma-separated contender names (substring match)")
    p.add_argument("--no-scaling", action="store_true")
    p.add_argument("--no-polite", action="store_true")
    p.add_argument("--out", type=Path, default=HERE, help="where RESULTS.md etc. go")
    return p.parse_args(argv)


def _compile_project() -> None:
    """Write our modules' .pyc files, as a regular ``pip install`` does.

    aiohttp and httpx run from site-packages with their bytecode compiled at
    install; an editable checkout under ``PYTHONDONTWRITEBYTECODE=1`` would
    compile ours again in every contender process (~90 ms of CPU each).
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    dirs = [str(HERE.parent / name) for name in ("client", "jobs", "runner", "bench")]
    subprocess.run([PY, "-m", "compileall", "-q", *dirs], check=True, env=env)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    count = args.urls or (2000 if args.quick else 20000)
    mode = "quick" if args.quick else "full" if args.full else "default"
    tools = ensure_tools()
    _compile_project()
    work = Path(tempfile.mkdtemp(prefix="fetchrun-bench-"))
    results: dict[str, Any] = {"mode": mode, "urls": count, "runs": args.runs}
    results["params"] = {"concurrency": args.concurrency, "per_host": args.per_host}
    try:
        root = site.build_site(work / "site")
        port = free_port()
        with Nginx(tools["nginx"], work, root, port) as nginx:
            results["versions"] = versions(tools, nginx.version())
            setup = Setup(work, site.write_url_file(work / "urls.txt", count, port), count,
                          args.concurrency, args.per_host)  # fmt: skip
            chosen = pick(contenders(tools), tools, args.only)
            results["compare"] = compare(chosen, setup, args.runs)
            results["wrk"] = ceiling(tools, setup, port, 3 if args.quick else 5, args.runs)
            if not args.no_scaling:
                sizes = [10_000] if args.quick else [10_000, 100_000]
                sizes += [1_000_000] if args.full else []
                results["scaling"] = scaling(setup, port, sizes)
        if not args.no_polite:
            results["polite"] = polite(work, 500 if args.quick else 2000, args.runs)
        results["startup"] = startup()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    write_report(results, args.out)
    print(f"bench: wrote {args.out / 'RESULTS.md'}", file=sys.stderr)
    return 0


def pick(all_: list[Contender], tools: dict[str, str], only: str | None) -> list[Contender]:
    chosen = []
    for c in all_:
        if only and not any(w.strip() in c.name for w in only.split(",")):
            continue
        if not c.available(tools):
            print(f"bench: skipping {c.name} (needs {', '.join(c.needs)})", file=sys.stderr)
            continue
        chosen.append(c)
    return chosen


def compare(chosen: list[Contender], setup: Setup, runs: int) -> list[dict[str, Any]]:
    """Round-robin: run r of every contender before run r+1 of any (spreads noise)."""
    entries = {c.name: Entry(c.name, c.note) for c in chosen}
    for r in range(runs):
        for c in chosen:
            entry = entries[c.name]
            if entry.errors:
                continue  # wrong once: no numbers for it
            run, errors = c.run(setup)
            verdict = "OK" if not errors else "WRONG: " + errors[0]
            log(f"{c.name:28s} run {r + 1}: {run.rate:8.0f} URLs/s  cpu {run.cpu:6.2f} s  "
                f"rss {run.rss_mb:6.1f} MB  {verdict}")  # fmt: skip
            entry.runs.append(run)
            entry.errors.extend(errors)
    return [_entry_dict(e) for e in entries.values()]


def ceiling(
    tools: dict[str, str], setup: Setup, port: int, seconds: int, runs: int
) -> dict[str, Any]:
    paths = [site.url_path(n) for n in range(0, 10 * 1000, 10)]  # host 127.0.0.2's share
    base = f"http://{site.HOSTS[0]}:{port}"
    rates: list[Run] = []
    last: dict[str, str] = {}
    for _ in range(runs):
        run, last = wrk_ceiling(tools, setup, base, paths, seconds)
        rates.append(run)
        log(f"{'wrk':28s}       : {run.rate:8.0f} req/s   cpu {run.cpu:6.2f} s")
    entry = Entry("wrk (server ceiling)", "1 thread, same mix, one host", rates)
    return {**_entry_dict(entry), "info": last}


def scaling(setup: Setup, port: int, sizes: list[int]) -> list[dict[str, Any]]:
    rows = []
    for size in sizes:
        urls = site.write_url_file(setup.work / f"urls-{size}.txt", size, port)
        s = replace(setup, urls=urls, count=size, limit=3600)
        run, errors = fetchrun(True)(s)
        urls.unlink()
        verdict = "OK" if not errors else "WRONG: " + errors[0]
        log(f"scaling {size:>9,d}: {run.rate:8.0f} URLs/s  rss {run.rss_mb:6.1f} MB  {verdict}")
        rows.append({"urls": size, "run": asdict(run), "rate": run.rate, "errors": errors})
    return rows


def polite(work: Path, count: int, runs: int) -> dict[str, Any]:
    """fetchrun (retries on) and the bare aiohttp script against the polite server."""
    port = free_port()
    urls = site.write_url_file(work / "polite-urls.txt", count, port)
    setup = Setup(work, urls, count, 40, 4, rule="polite", attempts=3, limit=600)
    rows: list[dict[str, Any]] = []
    plans: list[tuple[str, str, Any, int]] = [
        ("fetchrun CLI", "3 attempts; honours Retry-After", fetchrun(True), runs),
        ("our client script", "no retries", _aio("client"), 1),
        ("aiohttp script", "no retries", _aio("aiohttp"), 1),
    ]
    for name, note, run_fn, n in plans:
        entry = Entry(name, note)
        server_stats: list[dict[str, Any]] = []
        for _ in range(n):
            stats_file = work / "polite-stats.json"
            with PoliteServer(port, stats_file):
                run, errors = run_fn(setup)
            server_stats.append(json.loads(stats_file.read_text()))
            entry.runs.append(run)
            wrong = wrong_count(errors)
            if errors and (not entry.errors or wrong > wrong_count(entry.errors)):
                entry.errors = errors  # the worst run's details stand in the report
            log(f"polite {name:21s}: {run.rate:8.0f} URLs/s  wrong: {wrong}"
                + (f"  e.g. {errors[1]}" if len(errors) > 1 else ""))  # fmt: skip
        row = _entry_dict(entry)
        row["server"] = server_stats[-1]
        row["wrong"] = wrong_count(entry.errors)
        rows.append(row)
    return {"urls": count, "concurrency": 40, "per_host": 4, "rows": rows}


def _aio(module: str) -> Any:
    from .suite import aio_script

    return aio_script(module)


def startup(runs: int = 9) -> dict[str, float]:
    """Milliseconds, medians: imports measured inside the process, commands from outside."""
    out = {
        "import client": _import_ms("client", runs),
        "import aiohttp": _import_ms("aiohttp", runs),
        "import httpx": _import_ms("httpx", runs),
    }
    script = Path(PY).with_name("fetchrun")
    cmd = [str(script)] if script.exists() else [PY, "-m", "runner.cli"]
    out["fetchrun --help"] = _command_ms([*cmd, "--help"], runs)
    out["python -c pass"] = _command_ms([PY, "-c", "pass"], runs)
    return out


def _import_ms(module: str, runs: int) -> float:
    code = f"import time;t=time.perf_counter();import {module};print(time.perf_counter()-t)"
    times = []
    for _ in range(runs):
        done = subprocess.run([PY, "-c", code], capture_output=True, text=True, cwd=HERE.parent)
        if done.returncode != 0:
            return float("nan")
        times.append(float(done.stdout) * 1000)
    return statistics.median(times)


def _command_ms(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, cwd=HERE.parent, check=True)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def versions(tools: dict[str, str], nginx: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0], "nginx": nginx}
    for pkg in ("aiohttp", "httpx", "uvloop", "httptools", "multidict", "yarl"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "-"
    curl = subprocess.run([tools["curl"], "--version"], capture_output=True, text=True).stdout
    out["curl"] = curl.split()[1] if curl else "-"
    wrk = subprocess.run([tools["wrk"], "-v"], capture_output=True, text=True)
    out["wrk"] = (wrk.stdout or wrk.stderr).split()[1] if (wrk.stdout or wrk.stderr) else "-"
    import os

    out["cpus"] = str(os.cpu_count())
    return out


def _entry_dict(e: Entry) -> dict[str, Any]:
    return {
        "name": e.name,
        "note": e.note,
        "ok": e.ok,
        "errors": e.errors[:5],
        "runs": [asdict(r) | {"rate": r.rate} for r in e.runs],
        "wall": e.median("wall"),
        "rate": statistics.median([r.rate for r in e.runs]) if e.runs else float("nan"),
        "cpu": e.median("cpu"),
        "rss_mb": e.median("rss_mb"),
    }


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
