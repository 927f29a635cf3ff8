"""``ClientResponse``: status, headers and body of one answer, with aiohttp's API.

The connection goes back to the pool by itself when the body's last byte
arrives (the protocol sees the end of the message), not when the user
finishes reading: the rest is already buffered here. Leaving ``async with``
early closes the connection instead, since its body was not drained.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable
from contextlib import suppress
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple

from multidict import CIMultiDictProxy, MultiDict, MultiDictProxy
from yarl import URL

from .exceptions import ClientResponseError, ContentTypeError
from .helpers import (
    ContentDisposition,
    content_disposition_filename,
    parse_content_disposition,
    parse_link_header,
    parse_mimetype,
)
from .reqinfo import RequestInfo
from .streams import EMPTY_PAYLOAD, StreamReader
from .tracing import trace_body

if TYPE_CHECKING:
    from http.cookies import SimpleCookie

    from .connection import Connection
    from .http1 import ResponseHead
    from .tracing import Trace


class HttpVersion(NamedTuple):
    major: int
    minor: int


HttpVersion10 = HttpVersion(1, 0)
HttpVersion11 = HttpVersion(1, 1)
_VERSIONS: dict[tuple[int, int], HttpVersion] = {(1, 0): HttpVersion10, (1, 1): HttpVersion11}

_JSON_RE = re.compile(r"^application/(?:[\w.+-]+?\+)?json")
ERROR_BODY_SNIPPET = 2048


CharsetResolver = Callable[["ClientResponse", bytes], str]


def default_charset_resolver(response: ClientResponse, body: bytes) -> str:
    return "utf-8"


class ClientResponse:
    """An HTTP response. Use as ``async with session.get(url) as resp:``."""

    content: StreamReader
    _body: bytes | None

    def __init__(
        self,
        method: str,
        url: URL,
        *,
        request_info: RequestInfo,
        history: tuple[ClientResponse, ...] = (),
        traces: list[Trace] | None = None,
        session: Any = None,
        fallback_charset_resolver: CharsetResolver = default_charset_resolver,
    ) -> None:
        self.method = method
        self._real_url = url
        self._url = url.with_fragment(None) if url.fragment else url
        self._request_info = request_info
        self._history = history
        self._traces = traces
        self._session = session
        self._fallback_charset = fallback_charset_resolver
        self.status = 0
        self.reason: str | None = None
        self.version: HttpVersion | None = None
        self._headers: CIMultiDictProxy[str] | None = None
        self.raw_headers: tuple[tuple[bytes, bytes], ...] = ()
        self.content = EMPTY_PAYLOAD
        self._body = None
        self._connection: Connection | None = None
        self._in_context = False
        self._released = False
        self._cookies: SimpleCookie | None = None

    def __repr__(self) -> str:
        return f"<ClientResponse({self._url}) [{self.status} {self.reason}]>\n{self._headers}\n"

    # -- set up by the session ---------------------------------------------------

    def _start(self, head: ResponseHead, stream: StreamReader, conn: Connection) -> None:
        self.status = head.status
        self.reason = head.reason
        # The two versions the parser yields share one instance each (no tuple per response).
        self.version = _VERSIONS.get(head.version) or HttpVersion(*head.version)
        self._headers = CIMultiDictProxy(head.headers)
        self.raw_headers = head.raw_headers
        if self._traces:
            trace_body(stream, self.method, self._url, self._traces)  # fires per chunk read
        self.content = stream
        if stream._eof or stream._exception is not None:  # is_eof(), exception()
            return  # the body is complete: the connection already went back
        self._connection = conn
        stream.on_eof(self._on_body_end)

    def _on_body_end(self) -> None:
        self._connection = None

    # -- attributes (aiohttp names) -------------------------------------------------

    @property
    def url(self) -> URL:
        return self._url

    @property
    def real_url(self) -> URL:
        return self._real_url

    @property
    def host(self) -> str:
        return self._url.host or ""

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        assert self._headers is not None
        return self._headers

    @property
    def ok(self) -> bool:
        """True for any status below 400 (aiohttp's definition)."""
        return self.status < 400

    @property
    def history(self) -> tuple[ClientResponse, ...]:
        return self._history

    @property
    def request_info(self) -> RequestInfo:
        return self._request_info

    @property
    def connection(self) -> Connection | None:
        return self._connection

    @property
    def closed(self) -> bool:
        return self._released and self._connection is None

    @property
    def content_type(self) -> str:
        raw = self.headers.get("Content-Type")
        if raw is None:
            return "application/octet-stream"
        mime = parse_mimetype(raw)
        if not mime.type:
            return "application/octet-stream"
        suffix = f"+{mime.suffix}" if mime.suffix else ""  # e.g. application/problem+json
        return f"{mime.type}/{mime.subtype}{suffix}"

    @property
    def charset(self) -> str | None:
        raw = self.headers.get("Content-Type")
        if raw is None:
            return None
        return parse_mimetype(raw).parameters.get("charset")

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        return int(value) if value is not None and value.isdigit() else None

    @property
    def cookies(self) -> SimpleCookie:
        """Cookies set by this response (not by earlier redirect hops)."""
        if self._cookies is None:
            # Imported here: `import client` stays free of http.cookies (start-up time).
            from http.cookies import SimpleCookie

            from .cookie_parse import parse_set_cookie_headers

            # Our linear parser, not SimpleCookie.load (quadratic before 3.11.10,
            # CVE-2024-7592, and it drops a whole header on one bad cookie).
            jar = SimpleCookie()
            morsels, _ = parse_set_cookie_headers(self.headers.getall("Set-Cookie", ()))
            for morsel in morsels:
                dict.__setitem__(jar, morsel.key, morsel)
            self._cookies = jar
        return self._cookies

    @property
    def links(self) -> MultiDictProxy[MultiDictProxy[str | URL]]:
        value = self.headers.get("Link")
        if not value:
            return MultiDictProxy(MultiDict())
        return parse_link_header(value, self._url)

    @property
    def content_disposition(self) -> ContentDisposition | None:
        raw = self.headers.get("Content-Disposition")
        if raw is None:
            return None
        disposition_type, params = parse_content_disposition(raw)
        return ContentDisposition(
            disposition_type, MappingProxyType(params), content_disposition_filename(params)
        )

    # -- body --------------------------------------------------------------------

    async def read(self) -> bytes:
        """The whole body (decoded per Content-Encoding), cached."""
        if self._body is None:
            try:
                self._body = await self.content.read()
            except BaseException:
                self.close()
                raise
        return self._body

    def get_encoding(self) -> str:
        charset = self.charset
        if charset:
            try:
                codecs.lookup(charset)
            except LookupError as exc:
                raise ValueError(f"Unknown charset {charset!r} in Content-Type") from exc
            return charset
        if _JSON_RE.match(self.content_type) or self.content_type == "application/rdap+json":
            return "utf-8"
        if self._body is None:
            raise RuntimeError("Cannot compute fallback encoding of a not yet read body")
        return self._fallback_charset(self, self._body)

    async def text(self, encoding: str | None = None, errors: str = "strict") -> str:
        body = await self.read()
        return body.decode(encoding or self.get_encoding(), errors=errors)

    async def json(
        self,
        *,
        encoding: str | None = None,
        loads: Callable[[str], Any] = json.loads,
        content_type: str | None = "application/json",
    ) -> Any:
        """The body parsed as JSON; ``ContentTypeError`` unless the type says JSON."""
        body = await self.read()
        if content_type is not None and not _is_expected_type(self.content_type, content_type):
            raise ContentTypeError(
                self._request_info,
                self._history,
                status=self.status,
                message=(
                    "Attempt to decode JSON with unexpected mimetype: "
                    f"{self.headers.get('Content-Type', '')}"
                ),
                headers=self.headers,
            )
        if not body.strip():
            return None
        return loads(body.decode(encoding or self.get_encoding()))

    # -- lifecycle ---------------------------------------------------------------

    def raise_for_status(self) -> None:
        """Raise ``ClientResponseError`` for a status of 400 or more."""
        if self.status < 400:
            return
        snippet = self._body[:ERROR_BODY_SNIPPET] if self._body is not None else None
        if not self._in_context:
            self.release()
        raise ClientResponseError(
            self._request_info,
            self._history,
            status=self.status,
            message=self.reason or "",
            headers=self.headers,
            body=snippet,
        )

    def release(self) -> None:
        """Done with this response: an unfinished body closes the connection."""
        self._released = True
        conn = self._connection
        if conn is not None:
            self._connection = None
            conn.close()

    def close(self) -> None:
        self.release()

    async def wait_for_close(self) -> None:
        self.release()

    # RequestContextManager does what these two do inline (no coroutine) unless a
    # subclass overrides them: keep it in step.
    async def __aenter__(self) -> ClientResponse:
        self._in_context = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._in_context = False
        self.release()

    def __del__(self) -> None:
        # A response dropped without release: never leave its socket checked out.
        conn = getattr(self, "_connection", None)
        if conn is not None:
            self._connection = None
            with suppress(RuntimeError):  # the loop may already be closed
                conn.close()


def _is_expected_type(actual: str, expected: str) -> bool:
    if expected == "application/json":
        return _JSON_RE.match(actual) is not None
    return expected in actual
