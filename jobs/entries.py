"""The ``requests:`` list: plain URLs, request mappings, URL templates with
``range:``, and ``urls_file:`` references.

A URL template uses ``{name}`` placeholders (optionally zero-padded:
``{page:03d}``); every placeholder needs a ``range:`` variable and every
variable must be used. Braces are otherwise illegal in URLs (RFC 3986), so
there is no escaping to learn.
"""

from __future__ import annotations

import math
import os
import re
import stat
import string
from pathlib import Path
from typing import Any

from jobs import convert as cv
from jobs import sections
from jobs.checks import check_url
from jobs.model import Location, RangeVar, Request, RequestOverrides, RetryPolicy
from jobs.scalars import Converter, Ctx, Invalid, as_list, as_map, fields, get_int, get_str
from jobs.secret import Secret, show
from jobs.yamlsafe import Map, Node, Poison, Scalar, child_path

# A pull request must not be able to queue an endless job (security.md K5):
# this caps one entry's ranges and the sum over the whole file.
MAX_EXPANSION = 10_000_000
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_FORMAT_SPEC = re.compile(r"(?:0[1-9])?d?")


def requests(ctx: Ctx, node: Node, path: str, job_retry: RetryPolicy) -> tuple[Request, ...]:
    """Every valid entry of ``requests:`` (invalid ones are reported)."""
    items = as_list(ctx, node, path, "a list of URLs or request mappings")
    if not items:
        raise ctx.error(node, path, "must list at least one request")
    spec = _entry_spec(job_retry)
    out: list[Request] = []
    expanded = 0
    for index, item in enumerate(items):
        if isinstance(item, Poison):
            continue
        before = len(ctx.problems)
        try:
            request = _entry(ctx, item, child_path(path, index), spec)
        except Invalid:
            continue
        if len(ctx.problems) == before:
            expanded += _expansion(request)
            if expanded > MAX_EXPANSION:
                ctx.error(
                    item,
                    child_path(path, index),
                    f"the ranges of this job expand to more than {MAX_EXPANSION:,} requests",
                )
                break
            out.append(request)
    return tuple(out)


def _expansion(request: Request) -> int:
    return math.prod(len(var.values()) for var in request.ranges) if request.ranges else 1


def _entry_spec(job_retry: RetryPolicy) -> dict[str, Converter[Any]]:
    def retry(ctx: Ctx, node: Node, path: str) -> dict[str, Any]:
        return sections.retry_patch(ctx, node, path, job_retry)

    return {
        "url": get_str,
        "urls_file": urls_file,
        "range": ranges,
        "name": get_str,
        "headers": cv.headers,
        **sections.REQUEST_DEFAULTS,
        "timeout": sections.timeout_patch,
        "retry": retry,
        "save": cv.save_mode,
    }


def _entry(ctx: Ctx, node: Node, path: str, spec: dict[str, Converter[Any]]) -> Request:
    source = Location(ctx.filename, node.line, node.col)
    if isinstance(node, Scalar):
        text = get_str(ctx, node, path, "a URL")
        return Request(source, url=_template(ctx, node, path, text, ()))
    mapping = as_map(ctx, node, path, "a URL or a mapping with 'url' or 'urls_file'")
    values = fields(ctx, mapping, path, spec, elsewhere=sections.ELSEWHERE)
    _check_source_keys(ctx, mapping, path)
    url = values.get("url")
    # A broken 'range' was reported already; checking the URL against it would repeat it.
    if url is not None and ("range" in values or "range" not in mapping.entries):
        url_node = mapping.entries["url"][1]
        try:
            url = _template(ctx, url_node, child_path(path, "url"), url, values.get("range", ()))
        except Invalid:
            pass  # reported; keep checking the other keys of this entry
    return Request(
        source,
        url=url,
        ranges=values.get("range", ()),
        urls_file=values.get("urls_file"),
        overrides=_overrides(ctx, mapping, path, values),
    )


def _check_source_keys(ctx: Ctx, mapping: Map, path: str) -> None:
    keys = mapping.entries
    if "url" in keys and "urls_file" in keys:
        ctx.error(
            keys["urls_file"][0],
            child_path(path, "urls_file"),
            "'url' and 'urls_file' are mutually exclusive; use one per entry",
        )
    elif "url" not in keys and "urls_file" not in keys:
        ctx.error(mapping, path, "needs 'url' or 'urls_file'")
    if "range" in keys and "url" not in keys:
        ctx.error(
            keys["range"][0],
            child_path(path, "range"),
            "'range' needs a 'url' with {name} placeholders",
        )


def _overrides(ctx: Ctx, mapping: Map, path: str, values: dict[str, Any]) -> RequestOverrides:
    return RequestOverrides(
        method=values.get("method"),
        name=values.get("name"),
        headers=values.get("headers"),
        params=values.get("params"),
        body=sections.body_of(ctx, mapping, path, values),
        expect=values.get("expect"),
        follow_redirects=values.get("follow_redirects"),
        max_redirects=values.get("max_redirects"),
        save=values.get("save"),
        timeout=tuple(values.get("timeout", {}).items()),
        retry=tuple(values.get("retry", {}).items()),
        extract=values.get("extract"),
        follow=values.get("follow"),
    )


def _template(ctx: Ctx, node: Node, path: str, text: str, rvars: tuple[RangeVar, ...]) -> str:
    """Check a URL (template) against its range variables; returns *text*."""
    names = _placeholders(ctx, node, path, text)
    declared = {var.name for var in rvars}
    hidden = isinstance(text, Secret)
    for name in names:
        if name not in declared:
            label = "a placeholder" if hidden else f"placeholder {{{name}}}"
            hint = "" if rvars else "; add a 'range:' for it (the mapping form)"
            raise ctx.error(node, path, f"{label} is not defined in 'range'{hint}")
    for var in rvars:
        if var.name not in names:
            raise ctx.error(node, path, f"range variable {var.name!r} is not used in the URL")
    # Values ascend, so the first and last combinations bound every variable.
    for pick in (0, -1):
        sample = text.format_map({var.name: var.values()[pick] for var in rvars})
        cv.checked(ctx, node, path, check_url, sample)
    return text


def _placeholders(ctx: Ctx, node: Node, path: str, text: str) -> set[str]:
    if "{" not in text and "}" not in text:
        return set()
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError:
        raise ctx.error(
            node, path, "unbalanced '{' or '}' in URL (placeholders are written {name})"
        ) from None
    names: set[str] = set()
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if not _IDENT.fullmatch(field) or conversion or not _FORMAT_SPEC.fullmatch(spec or ""):
            raise ctx.error(
                node, path, "invalid placeholder: write {name} or a zero-padded {name:03d}"
            )
        names.add(field)
    return names


def ranges(ctx: Ctx, node: Node, path: str) -> tuple[RangeVar, ...]:
    """``range: {page: [1, 500], size: [10, 50, 10]}`` (inclusive, optional step)."""
    what = "a mapping of placeholder names to [start, end] or [start, end, step]"
    mapping = as_map(ctx, node, path, what)
    if not mapping.entries:
        raise ctx.error(node, path, f"must be {what}, not empty")
    out: list[RangeVar] = []
    failed = False
    for name, (key_node, value_node) in mapping.entries.items():
        sub = child_path(path, name)
        try:
            if not _IDENT.fullmatch(name):
                raise ctx.error(key_node, sub, "placeholder names use letters, digits and '_'")
            out.append(_range_var(ctx, name, value_node, sub))
        except Invalid:
            failed = True
    if failed:
        raise Invalid()
    total = math.prod(len(var.values()) for var in out)
    if total > MAX_EXPANSION:
        raise ctx.error(
            node, path, f"expands to {total:,} requests; the limit is {MAX_EXPANSION:,}"
        )
    return tuple(out)


def _range_var(ctx: Ctx, name: str, node: Node, path: str) -> RangeVar:
    items = as_list(ctx, node, path, "[start, end] or [start, end, step]")
    if len(items) not in (2, 3):
        raise ctx.error(node, path, "must be [start, end] or [start, end, step]")
    start = get_int(ctx, items[0], child_path(path, 0), 0)
    end = get_int(ctx, items[1], child_path(path, 1), 0)
    step = get_int(ctx, items[2], child_path(path, 2), 1) if len(items) == 3 else 1
    if end < start:
        raise ctx.error(node, path, f"end ({end}) must be >= start ({start})")
    return RangeVar(name, start, end, step)


def urls_file(ctx: Ctx, node: Node, path: str) -> Path:
    """An existing regular file inside the job directory (symlinks included)."""
    text = get_str(ctx, node, path, "a path")
    shown = show(text)
    full = cv.join_relative(ctx, node, path, text)
    try:
        info = full.stat()
    except OSError:
        raise ctx.error(
            node,
            path,
            f"urls_file {shown} not found (paths are relative to the job file's directory)",
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise ctx.error(node, path, f"urls_file {shown} is not a regular file")
    base = os.path.realpath(ctx.base_dir)
    if os.path.commonpath([os.path.realpath(full), base]) != base:
        raise ctx.error(
            node, path, f"urls_file {shown} leads outside the job directory (through a symlink)"
        )
    return full
