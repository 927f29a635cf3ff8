"""``data`` for records: the runner's half of ``extract:`` and ``follow:``.

``open_tap`` looks at a response head and returns a tap (or None when there
is nothing to extract); ``fetch`` feeds it the body chunks it streams anyway,
then awaits ``finish``:

* The built-in ``title`` of HTML responses is read from the first bytes as
  they arrive (``runner.extract_title``); with the default plan (title only)
  nothing else happens and no body is kept.
* Other body fields keep the body in memory only when the content type fits
  one of them (HTML/XML for css and xpath, JSON for json, any text for
  regex) and it is at most ``MAX_EXTRACT_BODY`` bytes; past that each field
  gets the error "too large to extract". Other responses are never parsed.
* Parsing and querying run on the event loop up to ``OFFLOOP_BYTES`` and in a
  worker thread above. Measured with lxml 6: the demo's 200 KB catalogue page
  with six fields takes ~13 ms, a 2 MB page with 16,000 items ~0.6 s (libxml2
  releases the GIL while it parses and searches, so the loop keeps running).

Extraction never fails a fetch: a field that cannot be read is ``null``
(``[]`` with ``all``) in ``data`` and its reason is in ``data_errors``.
"""

from __future__ import annotations

import asyncio
import codecs
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from jobs.model import Fields, Follow, RequestOptions

from .extract_fields import (
    KINDS_FOR,
    Doc,
    DocKind,
    apply_fields,
    follow_links,
    header_value,
    header_values,
)
from .extract_title import TitleScan, html_encoding

MiB = 1024 * 1024
MAX_EXTRACT_BODY = 8 * MiB
OFFLOOP_BYTES = 64 * 1024
_TOO_LARGE = "too large"
_KIND_OF_MIME: dict[str, DocKind] = {
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/xml": "xml",
    "application/xml": "xml",
    "application/json": "json",
    "text/json": "json",
    "application/javascript": "text",
    "application/ecmascript": "text",
}


@dataclass(frozen=True, slots=True)
class Plan:
    """What one request's options ask of its responses (computed once per options)."""

    fields: Fields
    title: str | None  # the data key of the built-in title, if wanted
    follow: Follow | None
    body_kinds: frozenset[DocKind]  # content kinds for which the body is kept
    has_body_fields: bool
    has_headers: bool
    title_only: bool  # nothing but the built-in title (the default)


@dataclass(frozen=True, slots=True)
class Extraction:
    """What came out of one response."""

    data: dict[str, Any]
    errors: dict[str, str]
    links: tuple[str, ...] = ()
    ms: float | None = None  # parse + query time of the body fields

    def record_fields(self) -> dict[str, Any]:
        """The record keys: ``data``, plus ``data_errors`` / ``extract_ms`` when set."""
        out: dict[str, Any] = {"data": self.data}
        if self.errors:
            out["data_errors"] = self.errors
        if self.ms is not None:
            out["extract_ms"] = round(self.ms, 3)
        return out


_plans: dict[int, tuple[RequestOptions, Plan | None]] = {}


def plan_for(options: RequestOptions) -> Plan | None:
    """The extraction plan of *options*, or None when it extracts nothing."""
    # Keyed by identity: every spec of one entry shares its options object,
    # and hashing the field tuples for each response would cost more.
    hit = _plans.get(id(options))
    if hit is not None and hit[0] is options:
        return hit[1]
    plan = _make_plan(options.extract, options.follow)
    if len(_plans) >= 4096:
        _plans.clear()
    _plans[id(options)] = (options, plan)
    return plan


def _make_plan(fields: Fields, follow: Follow | None) -> Plan | None:
    if not fields and follow is None:
        return None
    title = next((name for name, e in fields if e.kind == "title"), None)
    rules = [e for _n, e in fields] + ([follow.rule] if follow is not None else [])
    kinds = frozenset(k for e in rules for k in KINDS_FOR.get(e.kind, ()))
    has_body = any(e.kind in KINDS_FOR for _n, e in fields)
    has_headers = any(e.kind == "header" for _n, e in fields)
    title_only = title is not None and len(fields) == 1 and follow is None
    return Plan(fields, title, follow, kinds, has_body, has_headers, title_only)


_kinds: dict[str, tuple[DocKind | None, str | None]] = {}


def content_kind(content_type: str | None) -> tuple[DocKind | None, str | None]:
    """``(kind, charset)`` of a Content-Type; kind None for bodies we never parse."""
    if not content_type:
        return None, None
    known = _kinds.get(content_type)  # servers repeat a handful of values
    if known is None:
        if len(_kinds) >= 256:
            _kinds.clear()
        known = _kinds[content_type] = _parse_content_type(content_type)
    return known


def _parse_content_type(content_type: str) -> tuple[DocKind | None, str | None]:
    mime, _, params = content_type.partition(";")
    mime = mime.strip().lower()
    kind = _KIND_OF_MIME.get(mime)
    if kind is None:
        if mime.endswith("+json"):
            kind = "json"
        elif mime.endswith("+xml"):
            kind = "xml"
        elif mime.startswith("text/"):
            kind = "text"
    charset = None
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = _codec(value.strip().strip('"'))
    return kind, charset


def _codec(label: str) -> str | None:
    """*label* if it names a text encoding Python knows, else None (the server erred)."""
    if not label or len(label) > 40:
        return None
    try:
        info = codecs.lookup(label)
    except LookupError:
        return None
    # The label itself, not Python's name for it: libxml2 knows "windows-1252", not "cp1252".
    return label.lower() if getattr(info, "_is_text_encoding", True) else None


class Tap(Protocol):
    """What ``fetch`` drives: every body chunk, then ``finish`` once."""

    def feed(self, chunk: bytes) -> None: ...

    async def finish(self, final_url: str) -> Extraction: ...


def open_tap(
    options: RequestOptions, headers: Mapping[str, str], declared: int | None
) -> Tap | None:
    """A tap for this response, or None when nothing will be extracted from it."""
    plan = plan_for(options)
    if plan is None:
        return None
    kind, charset = content_kind(headers.get("Content-Type"))
    bodyless = options.method == "HEAD"
    title = plan.title is not None and kind == "html" and not bodyless
    if title and plan.title_only and plan.title is not None:
        return TitleTap(plan.title, charset)  # the default plan: the cheapest path
    if not (title or plan.has_body_fields or plan.has_headers or kind in plan.body_kinds):
        return None  # e.g. the default title on a JSON response
    found = header_values(headers, plan.fields) if plan.has_headers else {}
    tap = BodyTap(plan, None if bodyless else kind, charset, declared, found, title)
    tap.content_type = headers.get("Content-Type")
    if bodyless:
        tap.refusal = "a HEAD response has no body"
    return tap


class BodyTap:
    """Sees one response's body chunks; ``finish`` gives its ``Extraction``."""

    __slots__ = (
        "_charset",
        "_chunks",
        "_headers",
        "_keep",
        "_kind",
        "_plan",
        "_scan",
        "_size",
        "content_type",
        "refusal",
    )  # fmt: skip

    def __init__(
        self,
        plan: Plan,
        kind: DocKind | None,
        charset: str | None,
        declared: int | None,
        headers: dict[str, list[str]],
        title: bool,
    ) -> None:
        self._plan = plan
        self._kind = kind
        self._charset = charset
        self._headers = headers
        self._scan: TitleScan | None = TitleScan(charset) if title else None
        self._chunks: list[bytes] = []
        self._size = 0
        wanted = kind is not None and kind in plan.body_kinds
        self._keep = wanted and (declared is None or declared <= MAX_EXTRACT_BODY)
        self.refusal = _TOO_LARGE if wanted and not self._keep else None
        self.content_type: str | None = None  # for error messages

    def feed(self, chunk: bytes) -> None:
        """One body chunk, as received (after content decoding)."""
        scan = self._scan
        if scan is not None and not scan.done:
            scan.feed(chunk)
        if self._keep:
            self._size += len(chunk)
            if self._size > MAX_EXTRACT_BODY:
                self._keep, self.refusal = False, _TOO_LARGE
                self._chunks.clear()
            else:
                self._chunks.append(chunk)

    async def finish(self, final_url: str) -> Extraction:
        """Extract every field (off the loop for a large body)."""
        title = await self._scan.result() if self._scan is not None else None
        if self._keep and self._size > OFFLOOP_BYTES:
            result = await asyncio.to_thread(self._extract, final_url)
        else:
            result = self._extract(final_url)
        if self._plan.title is not None and self._scan is not None:
            result.data[self._plan.title] = title
        return result

    def _extract(self, url: str) -> Extraction:
        plan = self._plan
        started = time.perf_counter()
        doc = None
        if self._keep and self._kind is not None:
            body = b"".join(self._chunks)
            self._chunks.clear()
            encoding = (
                html_encoding(self._charset, body) if self._kind == "html" else (self._charset)
            )
            doc = Doc(self._kind, body, encoding, url)
        refusal = self.refusal
        if refusal == _TOO_LARGE:
            refusal = f"body too large to extract (over {MAX_EXTRACT_BODY} bytes)"
        body_data, errors = apply_fields(doc, plan.fields, refusal, self.content_type)
        links = follow_links(doc, plan.follow, url) if plan.follow is not None else ()
        data: dict[str, Any] = {}
        for name, extractor in plan.fields:
            if extractor.kind == "header":
                values = self._headers.get(extractor.expr, [])
                data[name], error = header_value(values, extractor, url)
                if error is not None:
                    errors[name] = error
            elif name in body_data:
                data[name] = body_data[name]
            elif extractor.kind == "title" and self._scan is not None:
                data[name] = None  # filled by finish() from the scan
        ms = (time.perf_counter() - started) * 1000 if plan.has_body_fields else None
        return Extraction(data, errors, links, ms)


def redact_data(value: Any, mask: Callable[[str], str]) -> Any:
    """*value* (record extras: data, follow) with *mask* applied to every string."""
    # Pages echo URLs, and a job's URLs may carry secrets (``?key=${TOKEN}``).
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, list):
        return [redact_data(v, mask) for v in value]
    if isinstance(value, dict):
        return {k: redact_data(v, mask) for k, v in value.items()}
    return value


class TitleTap(TitleScan):
    """The tap of the default plan on an HTML response: the title, nothing else."""

    __slots__ = ("_key",)

    def __init__(self, key: str, charset: str | None) -> None:
        super().__init__(charset)
        self._key = key

    async def finish(self, final_url: str) -> Extraction:
        """``{key: title}``."""
        return Extraction({self._key: await self.result()}, {})
