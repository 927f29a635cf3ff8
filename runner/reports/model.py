"""The one result type every CI report writer consumes, and the run's exit code.

Exit codes sit beside the runner's (``runner.app``: 0 ok, 1 failed, 2 usage,
130/143 signals): a link check exits 0 when nothing is broken or indeterminate,
1 when any link is broken, and 3 when the only problems are indeterminate
answers (403/429/bot challenges after the retry budget), so CI can tell "the
site refused to answer" from "the link is dead".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Verdict = Literal["ok", "broken", "indeterminate", "excluded"]

EXIT_LINKS_OK = 0
EXIT_LINKS_BROKEN = 1
EXIT_LINKS_INDETERMINATE = 3

# C0 (bar TAB/LF/CR, handled per format), DEL and C1 controls: ESC in a CI log
# is a terminal escape, and XML 1.0 cannot carry most C0 characters at all.
# Lone surrogates (surrogateescape'd bytes) and U+FFFE/U+FFFF cannot be encoded
# or are not XML characters either.
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class LinkResult:
    """One checked link.

    ``source`` is the file path or page URL the link was found in; ``line`` its
    1-based line there when known. ``status`` is the final HTTP status, ``None``
    when no response arrived. ``reason`` explains the verdict (server- or
    page-derived text: writers escape it).
    """

    url: str
    source: str
    line: int | None
    status: int | None
    verdict: Verdict
    reason: str
    final_url: str | None = None


def verdict_exit_code(results: Iterable[LinkResult]) -> int:
    """0 when all ok/excluded, 1 when any link is broken, else 3 if any is indeterminate."""
    indeterminate = False
    for r in results:
        if r.verdict == "broken":
            return EXIT_LINKS_BROKEN
        if r.verdict == "indeterminate":
            indeterminate = True
    return EXIT_LINKS_INDETERMINATE if indeterminate else EXIT_LINKS_OK


def strip_controls(text: str) -> str:
    """Replace control characters (except TAB, LF, CR) and lone surrogates with U+FFFD."""
    return _CONTROL_RE.sub("\ufffd", text)


def describe(result: LinkResult) -> str:
    """A one-line human message: URL, status and reason (unescaped)."""
    status = f"HTTP {result.status}" if result.status is not None else "no response"
    text = f"{result.url}: {status}"
    if result.reason:
        text += f" ({result.reason})"
    if result.final_url and result.final_url != result.url:
        text += f" -> {result.final_url}"
    return text
