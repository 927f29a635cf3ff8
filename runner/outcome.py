"""``Outcome``: how one request ended, as a frozen value (never an exception).

``to_record()`` gives the JSONL record; its shape is published as
``runner/record.schema.json`` and versioned by ``RECORD_VERSION``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

RECORD_VERSION = 1
MAX_TEXT = 2048  # longest reason / error message / URL kept in a record

# How records become JSON text: ASCII only (escapes, never raw control bytes), compact,
# unknown types as text: json.JSONEncoder(ensure_ascii=True, separators=(",", ":"),
# default=str).encode, whose every call builds its C encoder anew (~1 µs of 1.5 for a
# small dict). Built once here; records are trees, so no circular-reference markers.
_str = json.encoder.encode_basestring_ascii  # C
_make = getattr(json.encoder, "c_make_encoder", None)
_encoder = _make(None, str, _str, None, ":", ",", False, False, True) if _make else None
_slow = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), default=str).encode


def encode_json(value: Any) -> str:
    """*value* as compact ASCII JSON text (the JSONL format)."""
    if _encoder is None:  # no C accelerator in this Python
        return _slow(value)
    return "".join(_encoder(value, 0))


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
        """ "2xx" ... "5xx", or "error" when no response arrived."""
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

    def to_json(self) -> str:
        """``encode_json(self.to_record())``, built without the dict (~3x cheaper).

        The JSONL writer's path, once per request. Values of unexpected types and
        extras that would replace a record key take the dict path.
        """
        try:
            head = self._json_head()
        except _Unusual:
            return encode_json(self.to_record())
        extra = self.extra
        if not extra:
            return head + "}"
        if not _KEYS.isdisjoint(extra):
            return encode_json(self.to_record())
        return head + "," + encode_json(extra)[1:]  # dict.update order: record keys first

    def _json_head(self) -> str:
        t = self.timings
        error = self.error
        ctype = self.content_type
        return (
            f'{{"v":{RECORD_VERSION},"url":{_text(_clip(self.url))},'
            f'"final_url":{_opt_clipped(self.final_url)},"method":{_text(self.method)},'
            f'"name":{_opt_text(self.name)},"status":{_opt_int(self.status)},'
            f'"reason":{_opt_clipped(self.reason)},"ok":{_bool(self.ok)},'
            f'"size":{_opt_int(self.size)},'
            f'"content_type":{_text(_clip(ctype)) if ctype else "null"},'
            f'"elapsed_ms":{{"dns":{_opt_ms(t.dns)},"connect":{_opt_ms(t.connect)},'
            f'"tls":{_opt_ms(t.tls)},"ttfb":{_opt_ms(t.ttfb)},"total":{_opt_ms(t.total)}}},'
            f'"attempts":{_int(self.attempts)},"redirects":{_redirects(self.redirects)},'
            f'"error":{_error(error) if error is not None else "null"},'
            f'"sha256":{_opt_text(self.sha256)},"body_path":{_opt_text(self.body_path)},'
            f'"started_at":{_text(self.started_at)},"index":{_int(self.index)},'
            f'"source":{_text(self.source)}'
        )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def _clip(text: str) -> str:
    if not text.isascii():  # O(1); lone surrogates (undecodable bytes) are not valid I-JSON
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


# -- to_json's pieces: each gives the JSON text encode_json would, or raises _Unusual ---

_KEYS = frozenset(
    ("v", "url", "final_url", "method", "name", "status", "reason", "ok", "size",
     "content_type", "elapsed_ms", "attempts", "redirects", "error", "sha256",
     "body_path", "started_at", "index", "source")
)  # fmt: skip


class _Unusual(Exception):
    """A value to_json does not encode itself (encode_json's default=str, NaN...)."""


def _text(value: object) -> str:
    if type(value) is not str:
        raise _Unusual
    return _str(value)


def _opt_text(value: object) -> str:
    return "null" if value is None else _text(value)


def _opt_clipped(value: str | None) -> str:
    return "null" if value is None else _text(_clip(value))


def _int(value: object) -> str:
    if type(value) is not int:
        raise _Unusual
    return int.__repr__(value)


def _opt_int(value: object) -> str:
    return "null" if value is None else _int(value)


def _bool(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    raise _Unusual


def _opt_ms(seconds: float | None) -> str:
    if seconds is None:
        return "null"
    ms = _ms(seconds)
    if type(ms) is not float or ms - ms != 0.0:  # NaN and infinities: encode_json's spelling
        raise _Unusual
    return float.__repr__(ms)


def _redirects(redirects: tuple[tuple[int, str], ...]) -> str:
    if not redirects:
        return "[]"
    parts = [f'{{"status":{_int(s)},"url":{_text(_clip(u))}}}' for s, u in redirects]
    return "[" + ",".join(parts) + "]"


def _error(error: ErrorInfo) -> str:
    return f'{{"kind":{_text(error.kind)},"message":{_text(_clip(error.message))}}}'
