"""A Markdown summary of a link check, suitable for ``$GITHUB_STEP_SUMMARY``.

Counts come first, then one table of broken and indeterminate links grouped by
source (sources in order of first appearance, rows by line). Every cell is
escaped: Markdown punctuation is backslash-escaped (``\\|`` keeps GFM tables
intact, ``\\``` stops code spans), line breaks become spaces and control
characters U+FFFD, so page text cannot reshape the summary or inject HTML.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .model import LinkResult, strip_controls

_MD_SPECIAL_RE = re.compile(r"([\\`*_\[\]<>|&~#!])")
_BREAK_RE = re.compile(r"[\r\n\t]+")
_MAX_CELL = 300
_VERDICT_LABEL = {"broken": "broken", "indeterminate": "indeterminate"}


def escape_cell(text: str, limit: int = _MAX_CELL) -> str:
    """Escape *text* for one GFM table cell, truncating past *limit* characters."""
    text = _BREAK_RE.sub(" ", strip_controls(text))
    if len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    return _MD_SPECIAL_RE.sub(r"\\\1", text)


def _row(result: LinkResult) -> str:
    cells = (
        escape_cell(result.source),
        "" if result.line is None else str(result.line),
        _VERDICT_LABEL[result.verdict],
        "" if result.status is None else str(result.status),
        escape_cell(result.url),
        escape_cell(result.reason),
    )
    return "| " + " | ".join(cells) + " |"


def render_markdown(
    results: Iterable[LinkResult], title: str = "Link check", max_rows: int = 1000
) -> str:
    """Render a summary: counts, then a table of problem links grouped by source.

    At most *max_rows* rows are listed (the step summary is capped at 1 MiB);
    the rest are counted in a closing line.
    """
    counts = {"ok": 0, "broken": 0, "indeterminate": 0, "excluded": 0}
    groups: dict[str, list[LinkResult]] = {}
    for r in results:
        counts[r.verdict] += 1
        if r.verdict in _VERDICT_LABEL:
            groups.setdefault(r.source, []).append(r)
    total = sum(counts.values())
    lines = [
        f"## {escape_cell(title)}",
        "",
        f"**{total}** links: **{counts['ok']}** ok, **{counts['broken']}** broken, "
        f"**{counts['indeterminate']}** indeterminate, **{counts['excluded']}** excluded.",
    ]
    problems = [
        r
        for group in groups.values()
        for r in sorted(group, key=lambda r: (r.line is None, r.line or 0))
    ]
    if not problems:
        return "\n".join(lines) + "\n"
    lines += [
        "",
        "| Source | Line | Verdict | Status | URL | Reason |",
        "|---|---:|---|---:|---|---|",
    ]
    lines += [_row(r) for r in problems[:max_rows]]
    if len(problems) > max_rows:
        lines += ["", f"\u2026and {len(problems) - max_rows} more not listed."]
    return "\n".join(lines) + "\n"
