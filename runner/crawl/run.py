"""Run a ``crawl:`` or ``check:`` job: state store, session, engine, reports, exit code.

Files (one output directory): the JSONL journal, ``fetchrun-state.sqlite``
beside it (frontier, validators, link results) and bodies. Re-running the
same job after an interruption (Ctrl-C, ``kill -9``, a reboot) resumes it; a
job that finished starts a new run that keeps validators (conditional
requests) and cached link results; ``--fresh`` forgets everything.

Exit codes: a crawl uses the runner's (0 ok, 1 some request failed its
expectation); a link check 0 ok, 1 broken links, 3 only indeterminate ones;
both 130/143 when interrupted (state kept for the resume).
"""

from __future__ import annotations

import hashlib
import json
import re
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from jobs import JobFile

from ..app import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    RunOptions,
    RunResult,
    make_session,
)
from ..app import _signals as signals
from ..engine import Engine
from ..fetch import FetchSettings
from ..reports import verdict_exit_code
from ..sinks.bodies import BodyStore
from ..sinks.console import Console, Summary
from ..sinks.jsonl import JsonlSink
from .crawler import CrawlConfig, Crawler
from .local import LocalScan
from .page import EntryFetcher
from .report import link_results, print_problems, write_reports
from .robots import RobotsPolicy
from .state import CachedResult, StateStore
from .urlnorm import host_key

STATE_NAME = "fetchrun-state.sqlite"
DEFAULT_OUT = ".fetchrun"
MAX_CRAWL_DELAY = 60.0  # seconds between two requests to a host, at most
LOCAL_SCAN_DONE = "fetchrun:local-scan-done"  # + run id: a marker result, files scanned


@dataclass(frozen=True, slots=True)
class SitePaths:
    jsonl: Path
    state: Path
    bodies: Path | None


def site_paths(job: JobFile, options: RunOptions) -> SitePaths:
    """Where a crawl or check writes (the CLI's ``--output`` wins over the job's)."""
    out = options.output if options.output not in (None, "-") else job.output.jsonl
    jsonl = Path(out) if out is not None else job.base_dir / DEFAULT_OUT / "records.jsonl"
    state = job.output.state or jsonl.parent / STATE_NAME
    bodies = options.bodies if options.bodies is not None else job.output.bodies
    return SitePaths(jsonl, state, bodies)


def fingerprint(job: JobFile) -> str:
    """What makes two invocations "the same job" for resuming."""
    spec = asdict(job.crawl) if job.crawl is not None else asdict(job.check)  # type: ignore[arg-type]
    text = json.dumps({"source": job.source, "spec": spec}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


async def run_site(job: JobFile, options: RunOptions, *, fresh: bool = False) -> RunResult:
    """Crawl, or check links, until the frontier is empty or a signal stops it."""
    paths = site_paths(job, options)
    store = StateStore(paths.state)
    started = time.perf_counter()
    received: list[int] = []
    summary = Summary()
    console = Console(total=None, quiet=options.quiet, verbose=options.verbose)
    check = job.check
    exclude = tuple(re.compile(p) for p in check.exclude) if check is not None else ()
    try:
        resumed = store.open_run(fingerprint(job), fresh=fresh) == "resume"
        if resumed:
            store.reconcile(paths.jsonl)
        jsonl = JsonlSink(paths.jsonl, append=resumed)
        bodies = BodyStore(paths.bodies) if paths.bodies is not None else None
        try:
            urls = tuple(t for t in check.targets if _is_url(t)) if check is not None else ()
            config = CrawlConfig.of(job, urls)
            crawler = Crawler(
                job,
                config,
                store,
                jsonl,
                summary,
                console,
                pages_done=store.counts().get("pages_done", 0),
            )
            # Both are idempotent, and a kill may have come between open_run() and them.
            crawler.seed()
            scanned = f"{LOCAL_SCAN_DONE}:{store.run_id}"
            if check is not None and store.result(scanned) is None:
                LocalScan(store, exclude).run([t for t in check.targets if not _is_url(t)])
                store.complete(
                    scanned, None, result=CachedResult(scanned, "ok", None, None, None, 0.0)
                )
            async with make_session(job) as session:
                robots = RobotsPolicy(session, _user_agent(job)) if config.robots else None
                fetcher = EntryFetcher(
                    store=bodies,
                    max_body=job.output.max_body,
                    robots=robots,
                    accept=check.accept if check is not None else frozenset(range(200, 300)),
                    plan_for=crawler.plan_for,
                )
                crawler.fetcher = fetcher
                if config.sitemaps and not resumed:
                    await _seed_sitemaps(crawler, config.seeds, robots)
                engine = Engine(
                    session,
                    crawler.specs(),
                    job.limits,
                    FetchSettings(bodies, job.output.save, job.output.max_body),
                    crawler.on_outcome,
                    fetch=fetcher,
                    reopen=True,
                )
                if robots is not None:
                    fetcher.on_host = _pacer(engine, robots, job.limits.rate_per_host)
                try:
                    with signals(engine, received):
                        await engine.run()
                finally:
                    if robots is not None:
                        await robots.close()
        finally:
            jsonl.close()
            if bodies is not None:
                await bodies.close()
        if not received:
            store.finish_run()
        wall = time.perf_counter() - started
        console.finish(summary, wall)
        if check is None:
            return RunResult(
                _exit(received, EXIT_OK if summary.failed == 0 else EXIT_FAILED), summary, wall
            )
        results = list(link_results(store, check, exclude))
    finally:
        store.close()
    write_reports(results, job.output)
    if not options.quiet:
        print_problems(results, sys.stderr)
    return RunResult(_exit(received, verdict_exit_code(results)), summary, wall)


async def _seed_sitemaps(
    crawler: Crawler, seeds: tuple[str, ...], robots: RobotsPolicy | None
) -> None:
    """``/sitemap.xml`` of each seed's origin, and robots.txt ``Sitemap:`` lines in scope."""
    found: list[str] = []
    for seed in seeds:
        parts = urlsplit(seed)
        found.append(f"{parts.scheme}://{parts.netloc}/sitemap.xml")
        if robots is not None:
            await robots.allowed(seed)  # reads the host's robots.txt
            found.extend(robots.sitemaps(host_key(seed)))
    crawler.seed(found)


def _exit(received: list[int], code: int) -> int:
    if received:
        return EXIT_SIGTERM if received[0] == signal.SIGTERM else EXIT_SIGINT
    return code


def _is_url(target: str) -> bool:
    return target.startswith(("http://", "https://"))


def _user_agent(job: JobFile) -> str:
    for name, value in job.session.headers:
        if name.lower() == "user-agent":
            return value
    return "fetchrun"


def _pacer(engine: Engine, robots: RobotsPolicy, job_rate: float | None) -> Callable[[str], None]:
    """Called once per new host after its robots.txt: a Crawl-delay slows that host."""

    def on_host(url: str) -> None:
        host = host_key(url)
        delay = robots.crawl_delay(host)
        if delay is not None and delay > 0:
            # Capped: a hostile Crawl-delay of 1e9 must not stall the run forever.
            rate = 1.0 / min(delay, MAX_CRAWL_DELAY)
            engine.set_host_rate(host, rate if job_rate is None else min(rate, job_rate))

    return on_host
