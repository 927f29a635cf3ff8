"""GitHub Actions workflow commands (annotations) for link checks, printed to stdout.

Format, per GitHub's "Workflow commands for GitHub Actions" documentation::

    ::error file=docs/a.md,line=12,title=Broken link::https://x/ : HTTP 404

Broken links are ``::error``, indeterminate ones ``::warning``; ok and excluded
links print nothing. Escaping follows the runner toolkit: in the message ``%``,
CR and LF become ``%25``, ``%0D``, ``%0A``; in property values ``:`` and ``,``
also become ``%3A`` and ``%2C``. Control characters such as ESC are replaced by
U+FFFD first, so page text can neither start a new workflow command nor drive
the terminal.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from .model import LinkResult, describe, strip_controls

_TITLES = {"broken": "Broken link", "indeterminate": "Indeterminate link"}
_COMMANDS = {"broken": "error", "indeterminate": "warning"}


def escape_data(text: str) -> str:
    """Escape a workflow command's message (the part after ``::``)."""
    text = strip_controls(text)
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow command property value (``file=``, ``title=``...)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _is_url(source: str) -> bool:
    parts = urlsplit(source)
    return bool(parts.scheme and parts.netloc)


def annotation(result: LinkResult) -> str | None:
    """One annotation line (no newline) for *result*, or ``None`` when it needs none."""
    command = _COMMANDS.get(result.verdict)
    if command is None:
        return None
    message = describe(result)
    props: list[str] = []
    if _is_url(result.source):
        # An annotation's file must be a path in the repository; a page URL is
        # only useful as text.
        message += f" [on {result.source}]"
    else:
        props.append(f"file={escape_property(result.source)}")
        if result.line is not None:
            props.append(f"line={result.line}")
    props.append(f"title={escape_property(_TITLES[result.verdict])}")
    return f"::{command} {','.join(props)}::{escape_data(message)}"


def render_annotations(results: Iterable[LinkResult]) -> str:
    """All annotation lines for *results*, newline-terminated (empty when all is well)."""
    lines = [line for r in results if (line := annotation(r)) is not None]
    return "".join(line + "\n" for line in lines)
