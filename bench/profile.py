"""Profile a contender against the bench's nginx target with py-spy.

    python -m bench.profile script|cli|cli-titles|aiohttp [--urls 20000] [--top 40]

Prints the functions with the most samples, by own time and by time below
them (collapsed stacks are kept in ``--keep DIR`` if given). py-spy is
installed with ``pip install py-spy``; it samples another process, so the
profiled run pays almost nothing for it.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from . import site
from .suite import PY
from .targets import Nginx, ensure_tools, free_port


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile")
    p.add_argument("what", choices=("script", "cli", "aiohttp", "cli-asyncio", "cli-titles"))
    p.add_argument("--urls", type=int, default=20000)
    p.add_argument("--top", type=int, default=40)
    p.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    p.add_argument("--keep", type=Path, help="copy the collapsed stacks here")
    args = p.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(PY).with_name("py-spy"))
    tools = ensure_tools()
    work = Path(tempfile.mkdtemp(prefix="fetchrun-profile-"))
    try:
        root = site.build_site(work / "site")
        port = free_port()
        urls = site.write_url_file(work / "urls.txt", args.urls, port)
        with Nginx(tools["nginx"], work, root, port):
            target = _target(args.what, work, urls)
            stacks = work / "stacks.txt"
            cmd = [py_spy, "record", "-r", str(args.rate), "-f", "raw", "-o", str(stacks)]
            subprocess.run([*cmd, "--", *target], check=True, cwd=Path(__file__).parent.parent)
        if args.keep:
            shutil.copy(stacks, args.keep)
        summarize(stacks, args.top)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _target(what: str, work: Path, urls: Path) -> list[str]:
    if what.startswith("cli"):
        job = work / "job.yaml"
        extract = "" if what == "cli-titles" else ", extract: false"  # titles: the default
        job.write_text(
            "version: 1\nlimits: {concurrency: 64, per_host: 8}\nretry: {attempts: 1}\n"
            f"output: {{jsonl: out.jsonl}}\ndefaults: {{expect: [200, 404]{extract}}}\n"
            f"requests:\n  - urls_file: {urls.name}\n"
        )
        extra = ["--no-uvloop"] if what == "cli-asyncio" else []
        return [PY, "-m", "runner.cli", str(job), "--quiet", *extra]
    module = "aiohttp" if what == "aiohttp" else "client"
    return [PY, "-m", "bench.clients.aio", module, str(urls), str(work / "out"), "64", "8"]


def summarize(stacks: Path, top: int) -> None:
    """Own and cumulative sample counts per function from py-spy's raw output."""
    own: collections.Counter[str] = collections.Counter()
    below: collections.Counter[str] = collections.Counter()
    total = 0
    for line in stacks.read_text().splitlines():
        frames_text, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = [_short(f) for f in frames_text.split(";")]
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            below[name] += count
    print(f"{total} samples\n\nown time:")
    for name, n in own.most_common(top):
        print(f"{100 * n / total:6.1f}%  {name}")
    print("\ntime below (cumulative):")
    for name, n in below.most_common(top):
        print(f"{100 * n / total:6.1f}%  {name}")


def _short(frame: str) -> str:
    # "func (path/to/module.py:123)" -> "func (module.py)"
    name, _, where = frame.partition(" (")
    module = where.rsplit(":", 1)[0].rsplit("/", 1)[-1]
    return f"{name} ({module})"


if __name__ == "__main__":
    sys.exit(main())
