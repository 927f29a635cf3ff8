"""CI report writers for link checking: JUnit XML, SARIF 2.1.0, GitHub annotations, Markdown.

Every writer is a pure ``render_*(results, ...) -> str``; the caller decides where
the text goes (a file, stdout, ``$GITHUB_STEP_SUMMARY``).
"""

from __future__ import annotations

from .github import render_annotations
from .junit import render_junit
from .markdown import render_markdown
from .model import (
    EXIT_LINKS_BROKEN,
    EXIT_LINKS_INDETERMINATE,
    EXIT_LINKS_OK,
    LinkResult,
    Verdict,
    verdict_exit_code,
)
from .sarif import SARIF_SCHEMA_URI, render_sarif

__all__ = [
    "EXIT_LINKS_BROKEN",
    "EXIT_LINKS_INDETERMINATE",
    "EXIT_LINKS_OK",
    "SARIF_SCHEMA_URI",
    "LinkResult",
    "Verdict",
    "render_annotations",
    "render_junit",
    "render_markdown",
    "render_sarif",
    "verdict_exit_code",
]
