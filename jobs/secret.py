"""``Secret``: a string that came from the environment (or is a credential).

It *is* the real value (a ``str`` subclass), so it can be handed to the HTTP
client unchanged; only ``repr()`` is masked, which keeps it out of dataclass
reprs, tracebacks and debug logs. Code that prints values on purpose must ask
``is_secret()`` or use ``JobFile.redact()``.
"""

from __future__ import annotations

from collections.abc import Iterable

MASK = "***"


class Secret(str):
    """A string whose ``repr`` never shows its value."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"


def is_secret(value: object) -> bool:
    """True if *value* must not be shown to users."""
    return isinstance(value, Secret)


def show(value: str, limit: int = 60) -> str:
    """A quoted, escaped, truncated rendering for error messages; ``***`` for secrets."""
    if isinstance(value, Secret):
        return MASK
    if len(value) > limit:
        value = value[:limit] + "..."
    return repr(value)


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret in *text* with ``***``.

    Longest first, so a secret that contains another is masked whole.
    """
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and secret in text:
            text = text.replace(secret, MASK)
    return text
