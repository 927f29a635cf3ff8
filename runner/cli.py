"""The ``fetchrun`` command line.

    fetchrun JOB.yaml [--concurrency N] [--per-host N] [--rate R]
                      [--output PATH|-] [--bodies DIR] [--validate] [--dry-run]
                      [--quiet] [--verbose] [--no-uvloop]
    fetchrun URL...          quick use, no YAML
    fetchrun -               URLs on standard input, one a line
    fetchrun demo            the built-in local demo site and sample_jobs/demo.yaml
    fetchrun check PATH_OR_URL... [--fragments] [--exclude RE] [--junit F] [--sarif F] ...
                             link check of local HTML/Markdown trees and sites

Exit codes: see ``runner.app``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

    from jobs import JobFile

    from .app import RunResult


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fetchrun",
        description="Fetch URLs politely and fast: YAML jobs in, JSONL records and bodies out.",
        epilog="Exit codes: 0 all as expected, 1 some requests failed their expectation, "
        "2 invalid job file or usage, 130/143 interrupted.",
    )
    parser.add_argument("targets", nargs="+", metavar="JOB.yaml | URL | - | demo")
    parser.add_argument("--concurrency", type=_positive_int, help="requests in flight")
    parser.add_argument("--per-host", type=_positive_int, help="requests in flight per host")
    parser.add_argument("--rate", type=_positive_float, help="requests per second per host")
    parser.add_argument("--output", "-o", help="JSONL records to PATH, or - for stdout")
    parser.add_argument("--bodies", type=Path, help="save response bodies under DIR")
    parser.add_argument(
        "--fresh", action="store_true", help="crawl/check: forget the saved state, start over"
    )
    parser.add_argument("--validate", action="store_true", help="check the job file and exit")
    parser.add_argument("--dry-run", action="store_true", help="list the requests, fetch none")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    parser.add_argument("--verbose", "-v", action="store_true", help="a line per request")
    parser.add_argument(
        "--no-uvloop",
        action="store_true",
        help="use asyncio's own event loop even when uvloop is installed",
    )
    parser.add_argument("--version", action="version", version="fetchrun 0.1.0")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["check"]:
        from .check_cli import main_check

        return main_check(argv[1:])
    args = build_parser().parse_args(argv)
    # Imported once the arguments parse: `fetchrun --help` loads no client, no YAML.
    from jobs import JobError

    from .app import EXIT_FAILED, EXIT_SIGINT, EXIT_USAGE, RunOptions, run_job

    if args.targets == ["demo"]:
        from .demo import run_demo

        return run_demo(output=args.output, quiet=args.quiet)
    try:
        job = _load(args.targets)
        job = _apply_overrides(job, args)
    except JobError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except (OSError, ValueError) as exc:
        print(f"fetchrun: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.validate:
        if not args.quiet:
            print(f"{job.source}: ok", file=sys.stderr)
        return 0
    if args.dry_run:
        return _dry_run(job)
    options = RunOptions(
        output=args.output, bodies=args.bodies, quiet=args.quiet, verbose=args.verbose
    )
    if job.crawl is not None or job.check is not None:
        from .crawl.run import run_site

        return run_async(run_site(job, options, fresh=args.fresh), use_uvloop=not args.no_uvloop)
    try:
        result = _run(run_job(job, options), use_uvloop=not args.no_uvloop)
    except NotImplementedError as exc:
        print(f"fetchrun: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_SIGINT
    except OSError as exc:  # results could not be written (ENOSPC, a bad --output...)
        print(f"fetchrun: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return result.exit_code


def run_async(coro: Coroutine[Any, Any, RunResult], *, use_uvloop: bool) -> int:
    """Run a job coroutine; its exit code, or the usual codes for what escapes it."""
    from .app import EXIT_FAILED, EXIT_SIGINT, EXIT_USAGE

    try:
        return _run(coro, use_uvloop=use_uvloop).exit_code
    except NotImplementedError as exc:
        print(f"fetchrun: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_SIGINT
    except (OSError, ValueError) as exc:  # outputs or state could not be written or read
        print(f"fetchrun: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _run(coro: Coroutine[Any, Any, RunResult], *, use_uvloop: bool) -> RunResult:
    """Run the job on uvloop when it is installed (the ``uvloop`` extra) and wanted."""
    import asyncio
    with asyncio.Runner(loop_factory=_uvloop_factory() if use_uvloop else None) as runner:
        return runner.run(coro)


def _uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def _load(targets: list[str]) -> JobFile:
    from jobs import job_from_urls, load_job

    first = targets[0]
    if len(targets) == 1 and first.endswith((".yaml", ".yml")):
        return load_job(first)
    if targets == ["-"]:
        return job_from_urls(_stdin_urls(), source="<stdin>")
    if any(t.endswith((".yaml", ".yml")) for t in targets):
        raise ValueError("give one job file, or URLs, not both")
    return job_from_urls(targets)


def _stdin_urls() -> Iterator[str]:
    for line in sys.stdin:
        yield line.rstrip("\r\n")


def _apply_overrides(job: JobFile, args: argparse.Namespace) -> JobFile:
    limits = job.limits
    if args.concurrency is not None:
        limits = dataclasses.replace(limits, concurrency=args.concurrency)
    if args.per_host is not None:
        limits = dataclasses.replace(limits, per_host=args.per_host)
    if args.rate is not None:
        limits = dataclasses.replace(limits, rate_per_host=args.rate)
    return dataclasses.replace(job, limits=limits)


def _dry_run(job: JobFile) -> int:
    from jobs import iter_requests

    count = 0
    out = sys.stdout
    site = job.crawl.seeds if job.crawl is not None else job.check.targets if job.check else ()
    for target in site:  # a crawl or a check starts here; what it finds is not known yet
        out.write(job.redact(f"{'CRAWL' if job.crawl else 'CHECK'} {target}") + "\n")
    if site:
        print(f"{len(site)} starting points", file=sys.stderr)
        return 0
    for spec in iter_requests(job):
        count += 1
        line = f"{spec.method} {spec.url}" if spec.valid else f"INVALID {spec.source}: {spec.error}"
        out.write(job.redact(line) + "\n")
    print(f"{count} requests", file=sys.stderr)
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
