"""``fetchrun demo``: the built-in local demo site and ``sample_jobs/demo.yaml``.

Nothing leaves the machine: the site listens on 127.0.0.1 and the job's
``${DEMO_BASE}`` points at it. Results go to ``./fetchrun-demo/`` (or
``--output``), and the summary is printed.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from jobs import JobError, load_job

from .app import EXIT_USAGE, RunOptions, run_job
from .demo_site import start_demo_site

DEMO_JOB = Path(__file__).resolve().parent.parent / "sample_jobs" / "demo.yaml"


def run_demo(*, output: str | None = None, quiet: bool = False) -> int:
    """Serve the demo site, run the demo job against it, return the exit code."""
    if not DEMO_JOB.is_file():
        print(f"fetchrun demo: {DEMO_JOB} not found (install with `pip install -e .`)",
              file=sys.stderr)
        return EXIT_USAGE
    out_dir = Path(output) if output and output != "-" else Path.cwd() / "fetchrun-demo"
    return asyncio.run(_demo(out_dir, quiet))


async def _demo(out_dir: Path, quiet: bool) -> int:
    site = await start_demo_site()
    try:
        env = dict(os.environ, DEMO_BASE=site.base_url)
        try:
            job = load_job(DEMO_JOB, env=env)
        except JobError as exc:
            print(str(exc), file=sys.stderr)
            return EXIT_USAGE
        if not quiet:
            print(f"fetchrun demo: site at {site.base_url}, job {DEMO_JOB.name}", file=sys.stderr)
        result = await run_job(
            job,
            RunOptions(output=out_dir / "results.jsonl", bodies=out_dir / "bodies", quiet=quiet),
        )
    finally:
        await site.close()
    if not quiet:
        print(f"fetchrun demo: records in {out_dir / 'results.jsonl'}, bodies in "
              f"{out_dir / 'bodies'}", file=sys.stderr)
    return result.exit_code
