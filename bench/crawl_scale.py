"""A big crawl's memory: ``fetchrun`` crawling a generated site, peak RSS and pages/s.

    python -m bench.crawl_scale                  # 200,000 pages (issue 5: peak RSS < 200 MB)
    python -m bench.crawl_scale --pages 20000

The site (tests/servers/site.py: pages computed from their number, nothing
stored per page) runs in its own process; the crawl is the real CLI in
another, so its peak RSS (``wait4``'s ``ru_maxrss``) is the crawler's alone.
The frontier lives in SQLite: memory should stay flat as the site grows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_SERVE = """
import sys, time
sys.path.insert(0, {tests!r})
from servers.site import GeneratedSite
with GeneratedSite({pages}) as site:
    print(site.base_url, flush=True)
    sys.stdin.read()  # until the parent closes our stdin
"""


def crawl(pages: int, concurrency: int) -> dict[str, float]:
    """Crawl a ``pages``-page site once; pages/s, peak RSS (MB), records."""
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVE.format(tests=str(ROOT / "tests"), pages=pages)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base = server.stdout.readline().strip()
        with tempfile.TemporaryDirectory(prefix="fetchrun-crawl-") as tmp:
            job = Path(tmp) / "crawl.yaml"
            job.write_text(
                "version: 1\n"
                "session: {deny_private: false}\n"  # the site is on loopback
                f"limits: {{concurrency: {concurrency}, per_host: {concurrency}}}\n"
                "output: {jsonl: out/records.jsonl}\n"
                f"crawl: {{seeds: ['{base}/p/0.html'], max_pages: {pages + 1000}}}\n"
            )
            started = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, "-m", "runner.cli", str(job), "--quiet"], cwd=ROOT
            )
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
            wall = time.perf_counter() - started
            with (Path(tmp) / "out/records.jsonl").open("rb") as journal:
                records = sum(1 for _ in journal)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)
        if server.stdout is not None:
            server.stdout.close()
    return {
        "pages": pages,
        "records": records,
        "exit": os.waitstatus_to_exitcode(status),
        "wall_s": round(wall, 1),
        "pages_per_s": round(records / wall),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200_000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    print(json.dumps(crawl(args.pages, args.concurrency)))


if __name__ == "__main__":
    main()
