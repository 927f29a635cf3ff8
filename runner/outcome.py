"""``Outcome``: how one request ended, as a frozen value (never an exception).

``to_record()`` gives the JSONL record; its shape is published as
``runner/record.schema.json`` and versioned by ``RECORD_VERSION``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RECORD_VERSION = 1
MAX_TEXT = 2048  # longest reason / error message / URL kept in a record


@dataclass(frozen=True, slots=True)
class Timings:
    """Milliseconds; ``None`` where a phase did not happen (a reused connection)."""

    dns: float | None = None
    connect: float | None = None  # TCP connect, TLS handshake included
    tls: float | None = None  # not separable through the client's public API yet
    ttfb: float | None = None  # request start to response head
    total: float | None = None

    def as_dict(self) -> dict[str, float | None]:
        return {
            "dns": _ms(self.dns),
            "connect": _ms(self.connect),
            "tls": _ms(self.tls),
            "ttfb": _ms(self.ttfb),
            "total": _ms(self.total),
        }


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """A failure class (``kind``) and a human message."""

    kind: str
    message: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """The end of one request, after all its attempts."""

    url: str
    method: str
    index: int
    source: str
    started_at: str
    name: str | None = None
    final_url: str | None = None
    status: int | None = None
    reason: str | None = None
    ok: bool = False
    size: int | None = None
    content_type: str | None = None
    timings: Timings = Timings()
    attempts: int = 1
    redirects: tuple[tuple[int, str], ...] = ()
    error: ErrorInfo | None = None
    sha256: str | None = None
    body_path: str | None = None
    retries_waited: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def status_class(self) -> str:
        """"2xx" ... "5xx", or "error" when no response arrived."""
        if self.status is None:
            return "error"
        return f"{self.status // 100}xx"

    def to_record(self) -> dict[str, Any]:
        """The JSONL record (plain JSON types; text fields bounded)."""
        record: dict[str, Any] = {
            "v": RECORD_VERSION,
            "url": _clip(self.url),
            "final_url": _clip(self.final_url) if self.final_url is not None else None,
            "method": self.method,
            "name": self.name,
            "status": self.status,
            "reason": _clip(self.reason) if self.reason is not None else None,
            "ok": self.ok,
            "size": self.size,
            "content_type": _clip(self.content_type) if self.content_type else None,
            "elapsed_ms": self.timings.as_dict(),
            "attempts": self.attempts,
            "redirects": [{"status": s, "url": _clip(u)} for s, u in self.redirects],
            "error": (
                {"kind": self.error.kind, "message": _clip(self.error.message)}
                if self.error is not None
                else None
            ),
            "sha256": self.sha256,
            "body_path": self.body_path,
            "started_at": self.started_at,
            "index": self.index,
            "source": self.source,
        }
        if self.extra:
            record.update(self.extra)
        return record


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def _clip(text: str) -> str:
    if not text.isascii():  # O(1); lone surrogates (undecodable bytes) are not valid I-JSON
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"
