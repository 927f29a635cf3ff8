"""``${NAME}`` interpolation from the environment, for secrets in job files.

``$${`` is a literal ``${``. A missing or empty variable is an error naming
the variable (CI systems often pass an unset secret as an empty string, e.g.
to pull requests from forks); error messages never contain any variable's
value. A string that received a value becomes a ``Secret``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from jobs.secret import Secret

_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)(\}?)")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def interpolate(
    text: str,
    env: Mapping[str, str],
    values: set[str] | None = None,
    public: frozenset[str] = frozenset(),
) -> tuple[str, list[str]]:
    """Return *text* with variables substituted, and the error messages.

    The result is a ``Secret`` if at least one variable not named in *public*
    (the job's ``public_env``) was substituted. Each such value is added to
    *values* if given: redacting only the whole result would miss the value
    inside URLs later expanded from a template.
    """
    if "$" not in text:
        return text, []
    parts: list[str] = []
    errors: list[str] = []
    substituted = False
    pos = 0
    for match in _TOKEN.finditer(text):
        parts.append(text[pos : match.start()])
        pos = match.end()
        if match.group(0) == "$${":
            parts.append("${")
            continue
        value, error = _lookup(match.group(1), bool(match.group(2)), env)
        if error:
            errors.append(error)
        else:
            parts.append(value)
            if match.group(1) in public:
                continue  # declared public (e.g. a base URL): shown as is
            substituted = True
            if values is not None:
                values.add(value)
    parts.append(text[pos:])
    result = "".join(parts)
    return (Secret(result) if substituted else result), errors


def _lookup(name: str, closed: bool, env: Mapping[str, str]) -> tuple[str, str]:
    """(value, "") or ("", error message)."""
    if not closed:
        return "", "unterminated '${' (write '$${' for a literal '${')"
    if not NAME.fullmatch(name):
        shown = name if len(name) <= 40 else name[:40] + "..."
        return "", (
            f"invalid variable reference {'${' + shown + '}'!r}: "
            "use ${NAME} with letters, digits and '_'"
        )
    value = env.get(name)
    if value is None:
        return "", f"environment variable {name} is not set"
    if value == "":
        return "", f"environment variable {name} is empty"
    return value, ""
