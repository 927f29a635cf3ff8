"""Run a validated job: one session, the engine, the sinks, signals, an exit code.

Exit codes (documented in the README):

* 0 - every request ended as expected
* 1 - some request failed its expectation (status not in ``expect``, or an error)
* 2 - invalid job file or usage (raised before anything is fetched)
* 130 / 143 - interrupted by SIGINT / SIGTERM (outputs flushed and closed)
"""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass, replace
from pathlib import Path

import client
from jobs import JobFile, count_requests, iter_requests

from .engine import Engine
from .extract import redact_data
from .fetch import FetchSettings, timing_trace_config
from .outcome import Outcome
from .sinks.bodies import BodyStore
from .sinks.console import Console, Summary
from .sinks.jsonl import JsonlSink

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Where results go and how much to say, after CLI overrides."""

    output: Path | str | None = None  # None: the job's output.jsonl, else stdout ("-")
    bodies: Path | None = None  # None: the job's output.bodies
    quiet: bool = False
    verbose: bool = False


@dataclass(slots=True)
class RunResult:
    exit_code: int
    summary: Summary
    wall: float


def denies_private(job: JobFile) -> bool:
    """Whether private addresses are refused: ``session.deny_private``, else on for
    crawls and link checks (their URLs come from pages nobody vetted: security.md H1),
    unless a proxy dials for us (it picks the address; nothing here could check it)."""
    chosen = job.session.deny_private
    if chosen is not None:
        return chosen
    return (job.crawl is not None or job.check is not None) and job.session.proxy is None


def make_session(job: JobFile) -> client.ClientSession:
    """The one shared session of a run, configured from ``job.session``."""
    spec = job.session
    connector = client.TCPConnector(
        # The engine keeps `concurrency` requests in flight; the connector's limit also
        # caps idle sockets (in use + idle <= limit), so twice that keeps a socket per
        # active host slot instead of closing and redialling on every host switch.
        limit=2 * job.limits.concurrency,
        ssl=None if spec.verify_tls else False,
        ttl_dns_cache=60,
        address_policy=client.deny_private() if denies_private(job) else None,
    )
    auth = client.BasicAuth(spec.auth.user, spec.auth.password) if spec.auth else None
    return client.ClientSession(
        connector=connector,
        cookies=dict(spec.cookies) or None,
        auth=auth,
        proxy=spec.proxy,
        timeout=client.ClientTimeout(total=None),  # each request carries its own
        trace_configs=[timing_trace_config()],
    )


async def run_job(job: JobFile, options: RunOptions) -> RunResult:
    """Fetch every request of ``job``; records stream out as they end."""
    output = options.output if options.output is not None else (job.output.jsonl or "-")
    bodies_dir = options.bodies if options.bodies is not None else job.output.bodies
    store = BodyStore(bodies_dir) if bodies_dir is not None else None
    jsonl = JsonlSink(output)
    summary = Summary()
    console = Console(total=count_requests(job), quiet=options.quiet, verbose=options.verbose)

    def on_outcome(outcome: Outcome) -> None:
        if job.secrets:
            outcome = _redacted(outcome, job)
        jsonl.write(outcome)
        summary.add(outcome)
        console.update(outcome)

    started = time.perf_counter()
    received: list[int] = []
    try:
        async with make_session(job) as session:
            engine = Engine(
                session,
                iter_requests(job),
                job.limits,
                FetchSettings(store, job.output.save, job.output.max_body),
                on_outcome,
            )
            with _signals(engine, received):
                await engine.run()
    finally:
        jsonl.close()
        if store is not None:
            await store.close()
    wall = time.perf_counter() - started
    console.finish(summary, wall)
    return RunResult(_exit_code(summary, received), summary, wall)


def _redacted(outcome: Outcome, job: JobFile) -> Outcome:
    """``outcome`` with the job's secrets (e.g. ``?key=${TOKEN}`` in a URL) masked."""
    mask = job.redact
    error = outcome.error
    return replace(
        outcome,
        url=mask(outcome.url),
        final_url=mask(outcome.final_url) if outcome.final_url is not None else None,
        redirects=tuple((status, mask(url)) for status, url in outcome.redirects),
        error=replace(error, message=mask(error.message)) if error else None,
        extra=redact_data(outcome.extra, mask) if outcome.extra else outcome.extra,
    )


def _exit_code(summary: Summary, received: list[int]) -> int:
    if received:
        return EXIT_SIGTERM if received[0] == signal.SIGTERM else EXIT_SIGINT
    return EXIT_OK if summary.failed == 0 else EXIT_FAILED


class _signals:
    """SIGINT/SIGTERM stop scheduling (a second one is left to the default action)."""

    def __init__(self, engine: Engine, received: list[int]) -> None:
        self._engine = engine
        self._received = received
        self._installed: list[int] = []

    def __enter__(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, self._on_signal, signum)
            except (NotImplementedError, RuntimeError, ValueError):
                continue  # not the main thread (tests) or no signal support
            self._installed.append(signum)

    def _on_signal(self, signum: int) -> None:
        self._received.append(signum)
        self._engine.stop()
        asyncio.get_running_loop().remove_signal_handler(signum)

    def __exit__(self, *exc: object) -> None:
        loop = asyncio.get_running_loop()
        for signum in self._installed:
            loop.remove_signal_handler(signum)
