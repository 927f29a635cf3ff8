"""A link check's results: one ``LinkResult`` per place a link appears, and the CI reports.

The verdict of an occurrence is its target's (checked once), except that an
``ok`` target whose ids are known fails a ``#fragment`` it does not have.
Reports are written whole to a temp file and renamed, so CI never reads half
a report.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO
from urllib.parse import unquote

from jobs import CheckSpec, Output

from ..reports import (
    LinkResult,
    render_annotations,
    render_junit,
    render_markdown,
    render_sarif,
)
from ..reports.model import describe
from .state import StateStore

# HTML §7.4.6.4: "top" (and the empty fragment) always scroll to the top.
_ALWAYS_THERE = frozenset({"", "top"})


def link_results(
    store: StateStore, check: CheckSpec, exclude: Sequence[re.Pattern[str]]
) -> Iterator[LinkResult]:
    """Every occurrence with its verdict, ordered by source and line."""
    source: str | None = None
    seen: set[tuple[str, str | None, int | None, str]] = set()
    for occ in store.iter_occurrences():
        # A local scan interrupted and run again at the resume records its files twice.
        if occ.source != source:
            source, seen = occ.source, set()
        key = (occ.target, occ.fragment, occ.line, occ.kind)
        if key in seen:
            continue
        seen.add(key)
        shown = occ.target + (f"#{occ.fragment}" if occ.fragment is not None else "")
        if any(p.search(occ.target) for p in exclude):
            yield LinkResult(shown, occ.source, occ.line, None, "excluded", "excluded by pattern")
            continue
        res = store.result(occ.target)
        if res is None:
            yield LinkResult(
                shown,
                occ.source,
                occ.line,
                None,
                "excluded",
                "not checked (out of scope, or beyond max_pages)",
            )
            continue
        verdict, reason = res.verdict, res.reason
        if (
            verdict == "ok"
            and check.fragments
            and occ.fragment is not None
            and res.ids is not None
            and occ.fragment not in _ALWAYS_THERE
            and occ.fragment not in res.ids
            and unquote(occ.fragment) not in res.ids
        ):
            verdict, reason = "broken", f"fragment #{occ.fragment} not found in the target"
        yield LinkResult(
            shown,
            occ.source,
            occ.line,
            res.status,
            verdict,  # type: ignore[arg-type]
            reason or "",
            res.final_url,
        )


def write_reports(
    results: list[LinkResult], output: Output, *, stdout: IO[str] | None = None
) -> None:
    """Write the reports the job asks for; annotations go to stdout."""
    if output.junit is not None:
        _write_atomic(output.junit, render_junit(results))
    if output.sarif is not None:
        _write_atomic(output.sarif, render_sarif(results))
    if output.markdown is not None:
        _write_atomic(output.markdown, render_markdown(results))
    annotations = output.annotations
    if annotations is None:
        annotations = os.environ.get("GITHUB_ACTIONS") == "true"
    if annotations:
        stream = stdout if stdout is not None else sys.stdout
        stream.write(render_annotations(results))
        stream.flush()


def print_problems(results: list[LinkResult], stream: IO[str], limit: int = 50) -> None:
    """A short human list of broken and indeterminate links with where they are."""
    counts = {"ok": 0, "broken": 0, "indeterminate": 0, "excluded": 0}
    shown = 0
    for r in results:
        counts[r.verdict] += 1
        if r.verdict in ("broken", "indeterminate") and shown < limit:
            shown += 1
            where = f"{r.source}:{r.line}" if r.line is not None else r.source
            stream.write(f"{r.verdict.upper():13} {where}: {describe(r)}\n")
    problems = counts["broken"] + counts["indeterminate"]
    if problems > shown:
        stream.write(f"... and {problems - shown} more\n")
    stream.write(
        f"links: {counts['ok']} ok, {counts['broken']} broken, "
        f"{counts['indeterminate']} indeterminate, {counts['excluded']} excluded\n"
    )


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
