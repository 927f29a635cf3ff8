"""The ``crawl:`` and ``check:`` sections (crawl mode and link-check mode).

A job has ``requests:``, ``crawl:`` or ``check:``: exactly one of them
(``jobs.load`` enforces that). Regular expressions are compiled here, at
load time, so a bad one is reported with its position like any other
mistake. ``check:`` targets that are paths obey the job-file path rules
(relative, no ``..``, inside the job directory even through symlinks) and
must exist; they are stored as absolute path strings.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from jobs import convert as cv
from jobs.checks import check_regex, check_url
from jobs.model import CacheTTL, CheckSpec, CrawlScope, CrawlSpec
from jobs.scalars import (
    FALSES,
    TRUES,
    Converter,
    Ctx,
    Invalid,
    as_map,
    fields,
    get_bool,
    get_int,
    get_str,
    kind_of,
)
from jobs.secret import show
from jobs.sections import ELSEWHERE, section
from jobs.yamlsafe import Node, Poison, Scalar, Seq, child_path

T = TypeVar("T")

MAX_DEPTH = 1_000
MAX_PAGES = 100_000_000  # the frontier lives in SQLite, not in RAM
URL_MARK = "://"  # a target containing this is a URL, anything else a path


def one_or_many(
    ctx: Ctx,
    node: Node,
    path: str,
    convert: Converter[T],
    *,
    what: str,
    required: bool = False,
) -> tuple[T, ...]:
    """One value or a list of values, each read by *convert*; all items are checked."""
    if isinstance(node, Poison):
        raise Invalid()
    if not isinstance(node, Seq):
        return (convert(ctx, node, path),)
    if required and not node.items:
        raise ctx.error(node, path, f"must list at least one {what}")
    out: list[T] = []
    failed = False
    for index, item in enumerate(node.items):
        if isinstance(item, Poison):
            failed = True
            continue
        try:
            out.append(convert(ctx, item, child_path(path, index)))
        except Invalid:
            failed = True
    if failed:
        raise Invalid()
    return tuple(out)


def regex(ctx: Ctx, node: Node, path: str) -> str:
    """A regular expression, compiled now so a bad one is reported at its position."""
    text = get_str(ctx, node, path, "a regular expression")
    return cv.checked(ctx, node, path, check_regex, text)


def regexes(ctx: Ctx, node: Node, path: str) -> tuple[str, ...]:
    """One regular expression or a list of them."""
    return one_or_many(ctx, node, path, regex, what="regular expression")


def _seeds(ctx: Ctx, node: Node, path: str) -> tuple[str, ...]:
    return one_or_many(ctx, node, path, cv.url, what="seed URL", required=True)


def _prefixes(ctx: Ctx, node: Node, path: str) -> tuple[str, ...]:
    # A prefix is compared with the start of absolute URLs: it must be one itself.
    return one_or_many(ctx, node, path, cv.url, what="URL prefix")


def _depth(ctx: Ctx, node: Node, path: str) -> int:
    return get_int(ctx, node, path, 0, MAX_DEPTH)


def _pages(ctx: Ctx, node: Node, path: str) -> int:
    return get_int(ctx, node, path, 1, MAX_PAGES)


SCOPE: dict[str, Converter[Any]] = {
    "same_host": get_bool,
    "prefix": _prefixes,
    "include": regexes,
    "exclude": regexes,
}
CACHE: dict[str, Converter[Any]] = {"ok": cv.non_negative, "broken": cv.non_negative}


def scope(ctx: Ctx, node: Node, path: str) -> CrawlScope:
    """``crawl.scope:``: same host, URL prefixes, include / exclude regexes."""
    values = section(ctx, node, path, SCOPE)
    if "prefix" in values:
        values["prefixes"] = values.pop("prefix")
    return CrawlScope(**values)


CRAWL: dict[str, Converter[Any]] = {
    "seeds": _seeds,
    "scope": scope,
    "max_depth": _depth,
    "max_pages": _pages,
    "robots": get_bool,
    "sitemaps": get_bool,
    "conditional": get_bool,
}


def crawl(ctx: Ctx, node: Node, path: str) -> CrawlSpec:
    """``crawl:``: seeds (required), scope, limits, robots, sitemaps, conditional."""
    mapping = as_map(ctx, node, path, "a mapping with 'seeds'")
    values = fields(ctx, mapping, path, CRAWL, required=("seeds",), elsewhere=ELSEWHERE)
    if "seeds" not in values:
        raise Invalid()
    return CrawlSpec(**values)


def _target(ctx: Ctx, node: Node, path: str) -> str:
    """A URL, or an existing file or directory inside the job directory (absolute str)."""
    text = get_str(ctx, node, path, "a path or URL")
    if URL_MARK in text:
        return cv.checked(ctx, node, path, check_url, text)
    full = cv.join_relative(ctx, node, path, text)
    problem = target_problem(full, show(text))
    if problem is None:
        base = os.path.realpath(ctx.base_dir)
        if os.path.commonpath([os.path.realpath(full), base]) != base:
            problem = f"target {show(text)} leads outside the job directory (through a symlink)"
    if problem is not None:
        raise ctx.error(node, path, problem)
    return str(full)


def target_problem(full: Path, shown: str, where: str = "the job file's directory") -> str | None:
    """Why *full* cannot be a link-check target (missing, not a file or directory), or None."""
    try:
        mode = full.stat().st_mode
    except OSError:
        return f"target {shown} not found (paths are relative to {where})"
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return f"target {shown} is not a file or directory"
    return None


def _targets(ctx: Ctx, node: Node, path: str) -> tuple[str, ...]:
    return one_or_many(ctx, node, path, _target, what="target", required=True)


def cache(ctx: Ctx, node: Node, path: str) -> CacheTTL | None:
    """``cache: {ok: seconds, broken: seconds}``, ``true`` (defaults) or ``false`` (None)."""
    if isinstance(node, Scalar) and node.plain and node.text in TRUES | FALSES:
        return CacheTTL() if node.text in TRUES else None
    what = "a mapping like {ok: 86400, broken: 3600}, or false"
    if isinstance(node, Scalar):
        raise ctx.error(node, path, f"must be {what}, not {kind_of(node)}")
    return CacheTTL(**section(ctx, node, path, CACHE, what))


CHECK: dict[str, Converter[Any]] = {
    "targets": _targets,
    "accept": cv.status_set,
    "exclude": regexes,
    "fragments": get_bool,
    "external": get_bool,
    "indeterminate": cv.status_set,
    "cache": cache,
    "max_depth": _depth,
    "max_pages": _pages,
    "robots": get_bool,
}


def check(ctx: Ctx, node: Node, path: str) -> CheckSpec:
    """``check:``: targets (required), accepted / indeterminate statuses, excludes, cache."""
    mapping = as_map(ctx, node, path, "a mapping with 'targets'")
    values = fields(ctx, mapping, path, CHECK, required=("targets",), elsewhere=ELSEWHERE)
    if "targets" not in values:
        raise Invalid()
    return accept_wins(CheckSpec(**values))


def accept_wins(spec: CheckSpec) -> CheckSpec:
    """*spec* with accepted codes removed from ``indeterminate``: a code in both is ok."""
    if spec.indeterminate.isdisjoint(spec.accept):
        return spec
    return replace(spec, indeterminate=spec.indeterminate - spec.accept)


def command_line_targets(
    targets: Sequence[str], cwd: Path, report: Callable[[str, str], None]
) -> tuple[str, ...]:
    """``fetchrun check`` arguments: URLs checked, paths made absolute and checked to exist.

    Unlike a job file, the command line may name any path (absolute, ``..``).
    Each problem goes to ``report(path, message)``.
    """
    out: list[str] = []
    for index, text in enumerate(targets):
        where = child_path("targets", index)
        if URL_MARK in text:
            try:
                out.append(check_url(text))
            except ValueError as exc:
                report(where, f"{show(text)}: {exc}")
            continue
        if not text:
            report(where, "path is empty")
            continue
        full = Path(os.path.abspath(cwd / text))
        problem = target_problem(full, show(text), "the current directory")
        if problem is None:
            out.append(str(full))
        else:
            report(where, problem)
    return tuple(out)
