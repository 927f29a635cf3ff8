"""``fetchrun check PATH_OR_URL...``: a link check without a job file.

    fetchrun check docs/ README.md https://example.org/ [--fragments] [--exclude RE]...
        [--accept 200-299,403] [--no-external] [--no-cache] [--no-robots] [--allow-private]
        [--max-pages N] [--max-depth N] [--concurrency N] [--per-host N] [--rate R]
        [--junit F] [--sarif F] [--markdown F] [--annotations | --no-annotations]
        [--output-dir DIR] [--fresh] [--quiet] [--verbose] [--no-uvloop]

Exit codes: 0 no broken links, 1 broken links, 2 usage, 3 only indeterminate
links (403/429/bot walls), 130/143 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobs import JobFile


def build_check_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fetchrun check",
        description="Check every link of local HTML/Markdown files and of sites, once each.",
        epilog="Exit codes: 0 no broken links, 1 broken links, 2 usage, "
        "3 only indeterminate links (403/429/bot walls), 130/143 interrupted.",
    )
    parser.add_argument("targets", nargs="+", metavar="PATH_OR_URL")
    parser.add_argument("--fragments", action="store_true", help="check #fragments too")
    parser.add_argument(
        "--exclude", action="append", default=[], metavar="REGEX", help="links not to check"
    )
    parser.add_argument("--accept", help="statuses counted ok, e.g. 200-299,403")
    parser.add_argument("--no-external", action="store_true", help="only links within the site")
    parser.add_argument("--no-cache", action="store_true", help="ignore earlier runs' results")
    parser.add_argument("--no-robots", action="store_true", help="ignore robots.txt")
    parser.add_argument(
        "--allow-private",
        action="store_true",
        help="check links to loopback/private addresses too (refused by default: SSRF)",
    )
    parser.add_argument("--max-pages", type=int, help="pages crawled per site at most")
    parser.add_argument("--max-depth", type=int, help="link depth crawled from each site URL")
    parser.add_argument("--concurrency", type=int, help="requests in flight")
    parser.add_argument("--per-host", type=int, help="requests in flight per host")
    parser.add_argument("--rate", type=float, help="requests per second per host")
    parser.add_argument("--junit", type=Path, help="write a JUnit XML report")
    parser.add_argument("--sarif", type=Path, help="write a SARIF 2.1.0 report")
    parser.add_argument("--markdown", type=Path, help="write a Markdown summary")
    parser.add_argument(
        "--annotations",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="GitHub annotations on stdout (default: when GITHUB_ACTIONS=true)",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path(".fetchrun") / "check",
        help="records.jsonl and the state (cache, resume) go here (default .fetchrun/check)",
    )
    parser.add_argument("--fresh", action="store_true", help="forget the saved state first")
    parser.add_argument("--quiet", "-q", action="store_true")
    parser.add_argument("--verbose", "-v", action="store_true")
    parser.add_argument("--no-uvloop", action="store_true")
    return parser


def main_check(argv: Sequence[str]) -> int:
    """``fetchrun check``'s entry point; returns the exit code."""
    args = build_check_parser().parse_args(argv)
    from jobs import JobError, job_for_check

    from .app import EXIT_USAGE, RunOptions
    from .cli import run_async
    from .crawl.run import run_site

    try:
        accept = status_set(args.accept) if args.accept else None
        job = job_for_check(
            args.targets,
            accept=accept,
            exclude=args.exclude,
            fragments=args.fragments,
            external=not args.no_external,
            cache=not args.no_cache,
            output_dir=args.output_dir,
        )
    except (JobError, ValueError) as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    job = _overrides(job, args)
    output = dataclasses.replace(
        job.output,
        junit=args.junit,
        sarif=args.sarif,
        markdown=args.markdown,
        annotations=args.annotations,
    )
    job = dataclasses.replace(job, output=output)
    options = RunOptions(quiet=args.quiet, verbose=args.verbose)
    return run_async(run_site(job, options, fresh=args.fresh), use_uvloop=not args.no_uvloop)


def status_set(text: str) -> frozenset[int]:
    """``200-299,403`` -> the statuses (100-599); ValueError names what is wrong."""
    found: set[int] = set()
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise ValueError(f"--accept: {part.strip()!r} is not a status or a range") from None
        if not 100 <= first <= last <= 599:
            raise ValueError(f"--accept: {part.strip()!r} is not within 100-599")
        found.update(range(first, last + 1))
    return frozenset(found)


def _overrides(job: JobFile, args: argparse.Namespace) -> JobFile:
    assert job.check is not None
    check = job.check
    if args.no_robots:
        check = dataclasses.replace(check, robots=False)
    if args.max_pages is not None:
        check = dataclasses.replace(check, max_pages=max(1, args.max_pages))
    if args.max_depth is not None:
        check = dataclasses.replace(check, max_depth=max(0, args.max_depth))
    session = job.session
    if args.allow_private:
        session = dataclasses.replace(session, deny_private=False)
    limits = job.limits
    for name in ("concurrency", "per_host"):
        value = getattr(args, name)
        if value is not None:
            limits = dataclasses.replace(limits, **{name: max(1, value)})
    if args.rate is not None and args.rate > 0:
        limits = dataclasses.replace(limits, rate_per_host=args.rate)
    return dataclasses.replace(job, check=check, limits=limits, session=session)
