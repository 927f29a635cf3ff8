"""Sans-IO HTTP/1.1 response codec: bytes in, events out.

llhttp (``httptools.HttpResponseParser``, strict: no leniency flags) parses
status lines, fields and chunked framing.  This module owns what llhttp cannot
know or does not bound: body framing by method and status (RFC 9112 §6.3),
size limits counted across fragmented feeds (head, chunk-size lines,
trailers), the keep-alive verdict, and poisoning: bytes after the end of a
message are never parsed as the next response (security.md PARSE-12).
No ``await``, no sockets, no clock.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

from httptools import (
    HttpParserError,
    HttpParserInvalidStatusError,
    HttpParserUpgrade,
    HttpResponseParser,
)
from multidict import CIMultiDict

from .exceptions import (
    BadHttpMessage,
    BadStatusLine,
    ContentLengthError,
    HttpProcessingError,
    InvalidHeader,
    TransferEncodingError,
)
from .http1_events import (
    CHUNK_END,
    END,
    ChunkEnd,
    EndOfMessage,
    Event,
    InformationalHead,
    Phase,
    ResponseHead,
)
from .http1_framing import body_headers, check_len, connection_persists

__all__ = [
    "CHUNK_END",
    "END",
    "ChunkEnd",
    "EndOfMessage",
    "Event",
    "InformationalHead",
    "Phase",
    "ResponseCodec",
    "ResponseHead",
]


_IDLE, _HEAD, _LENGTH, _CHUNKED, _CLOSE, _DONE, _UPGRADED, _FAILED = Phase

# RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ];
# reason-phrase = *( HTAB / SP / VCHAR / obs-text ).  Only 1.0 and 1.1 are
# HTTP/1 versions we speak (0.9 and "2.0" on an h1 connection are desync bait).

_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([1-5][0-9][0-9])(?: ([^\x00-\x08\n-\x1f\x7f]*))?\r\n")
_STATUS_PREFIXES = (b"HTTP/1.1 ", b"HTTP/1.0 ")
_TERMINATOR = b"\r\n\r\n"
_SE = "surrogateescape"

# Chunked-body accounting (_account_chunked): what the bytes after an event are.
_CK_LINE, _CK_DATA, _CK_AFTER_SIZE = range(3)
_EV_CHUNK_HEADER, _EV_CHUNK_COMPLETE = -1, -2


class ResponseCodec:
    """Turns the bytes of one connection into response events.

    :meth:`start` before each response, :meth:`feed` every received buffer,
    :meth:`feed_eof` when the peer closes.  A framing or limit violation raises
    an ``HttpProcessingError`` subclass; the codec is then dead (close it).
    """

    def __init__(
        self,
        *,
        max_line_size: int = 8190,
        max_field_size: int = 8190,
        max_headers: int = 128,
        max_header_block: int = 65536,
        max_informational: int = 10,
    ) -> None:
        self._max_line = max_line_size
        self._max_field = max_field_size
        self._max_headers = max_headers
        self._max_block = max_header_block
        self._max_info = max_informational
        # A head this short is within every line and count limit (a field line
        # takes at least 4 bytes with its CRLF): no need to split it.
        self._small_head = min(max_line_size, max_field_size, 4 * max_headers + 3)
        # One list for the fields of every head (cleared, never replaced), so the
        # per-field callback appends without looking the codec's attributes up.
        self._raw: list[tuple[bytes, bytes]] = []
        append = self._raw.append
        # httptools looks the on_* callbacks up on this object once per parser;
        # a namespace keeps those names off the codec's public surface.
        self._callbacks = SimpleNamespace(
            on_header=lambda name, value: append((name, value)),
            on_headers_complete=self._on_headers_complete,
            on_body=self._on_body,
            on_message_complete=self._on_message_complete,
            on_chunk_header=lambda: self._ck_log.append(_EV_CHUNK_HEADER),
            on_chunk_complete=self._on_chunk_complete,
        )
        self._poisoned = False  # stray bytes seen: never reuse the connection
        self._eof = False
        self._keep_alive = False
        self._trailing = bytearray()
        self._buf = bytearray()  # a head that arrived in pieces; empty between heads
        self._arm("GET", expect_upgrade=False)
        self._phase = _IDLE

    def start(self, method: str, *, expect_upgrade: bool = False) -> None:
        """Arm the codec for the response to a request made with ``method``.

        ``expect_upgrade`` accepts a 101 (the request asked to upgrade).
        Raises ``RuntimeError`` while a response is in progress, and when the
        connection cannot carry another response (not reusable).
        """
        phase = self._phase
        if phase in (_HEAD, _LENGTH, _CHUNKED, _CLOSE):
            raise RuntimeError("a response is still in progress")
        if self._poisoned or self._eof or phase in (_FAILED, _UPGRADED):
            raise RuntimeError(f"connection is not reusable: {self!r}")
        if phase is _DONE and not self._keep_alive:
            raise RuntimeError("the previous response did not allow keep-alive")
        self._arm(method, expect_upgrade=expect_upgrade)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Parse ``data`` and return the events it completes (maybe none)."""
        if type(data) is not bytes:
            data = bytes(data)  # events outlive the caller's (reusable) buffer
        if self._phase is _LENGTH and len(data) < self._remaining:
            # Hot path: the middle of a Content-Length body, no copy.
            self._remaining -= len(data)
            return [data] if data else []
        out: list[Event] = []
        if data:
            try:
                self._run(data, out)
            except HttpProcessingError:
                self._fail()
                raise
        return out

    def feed_eof(self) -> list[Event]:
        """The peer closed: ``[END]`` for a read-until-close body.

        Raises ``ContentLengthError`` / ``TransferEncodingError`` for a body cut
        short; ``[]`` if no complete head arrived (:attr:`started` says whether
        any byte did, i.e. whether a retry is safe).
        """
        phase = self._phase
        self._eof = True
        if phase is _LENGTH:
            self._fail()
            raise ContentLengthError(f"closed with {self._remaining} body bytes missing")
        if phase is _CHUNKED:
            self._fail()
            raise TransferEncodingError("connection closed before the last chunk")
        if phase is _CLOSE:
            self._phase = _DONE
            return [END]
        if phase is _HEAD:
            self._fail()
        return []

    @property
    def started(self) -> bool:
        """True once any byte of the current response has been received."""
        return self._started

    @property
    def complete(self) -> bool:
        """True once END was emitted for the current response."""
        return self._phase is _DONE or self._phase is _UPGRADED

    @property
    def reusable(self) -> bool:
        """Complete, keep-alive, no stray or trailing bytes, not upgraded."""
        return self._phase is _DONE and self._keep_alive and not self._poisoned and not self._eof

    @property
    def phase(self) -> Phase:
        """The codec's state, for diagnostics and ``repr``."""
        return self._phase

    def take_trailing(self) -> bytes:
        """Bytes received after an upgrade (101 or CONNECT tunnel); else ``b""``."""
        data, self._trailing = bytes(self._trailing), bytearray()
        return data

    def __repr__(self) -> str:
        state = f"{self._phase.value} method={self._method!r} started={self._started}"
        return f"<ResponseCodec {state} reusable={self.reusable} poisoned={self._poisoned}>"

    def _arm(self, method: str, *, expect_upgrade: bool) -> None:
        self._method = method
        self._is_head = method == "HEAD"
        self._is_connect = method == "CONNECT"
        self._expect_upgrade = expect_upgrade
        self._phase = _HEAD
        self._started = False
        self._keep_alive = False
        self._n_info = 0
        self._remaining = 0
        self._new_head()

    def _new_head(self) -> None:
        self._parser: HttpResponseParser | None = None
        self._line_start = 0  # in _buf: where the current (partial) line begins
        self._n_lines = 0  # complete field lines so far
        self._head_len = 0  # head bytes consumed before _buf's current contents ended
        self._status_end = 0  # in _buf: just past the status line's LF, once complete
        self._status_match: re.Match[bytes] | None = None
        self._status_ok = False
        self._raw.clear()
        self._hdrs_done = False
        self._msg_done = False

    def _fail(self) -> None:
        self._phase = _FAILED
        self._parser = None
        self._buf = bytearray()

    def _run(self, data: bytes, out: list[Event]) -> None:
        pos, end = 0, len(data)
        while pos < end:
            phase = self._phase
            if phase is _HEAD:
                self._started = True
                pos = self._feed_head(data, pos, out)
            elif phase is _LENGTH:
                remaining, left = self._remaining, end - pos
                take = remaining if remaining < left else left
                out.append(data if take == end else data[pos : pos + take])
                pos += take
                self._remaining -= take
                if not self._remaining:
                    self._phase = _DONE
                    out.append(END)
            elif phase is _CHUNKED:
                pos = self._feed_chunked(data, pos, out)
            elif phase is _CLOSE:
                out.append(data if pos == 0 else data[pos:])
                return
            elif phase is _UPGRADED:
                self._trailing += data[pos:] if pos else data
                return
            else:
                # After END (or before any request): unsolicited bytes poison the
                # connection and are never parsed (RFC 9112 §9.3, PARSE-12).
                if phase is not _FAILED:
                    self._poisoned = True
                return

    # -- head -----------------------------------------------------------------------

    def _feed_head(self, data: bytes, pos: int, out: list[Event]) -> int:
        """Consume head bytes from ``data[pos:]``; return where the head ended."""
        if not self._buf:
            # Fast path: the whole head is in this buffer.
            idx = data.find(_TERMINATOR, pos, pos + self._max_block)
            if idx >= 0:
                head = data[pos : idx + 4]
                if len(head) <= self._small_head:  # _check_head's short case, inline
                    match = _STATUS_LINE.match(head)
                    if match is None:
                        raise BadStatusLine(f"invalid status line: {head[:100]!r}")
                    self._status_ok = True
                else:
                    match = self._check_head(head)
                parser = self._parser = HttpResponseParser(self._callbacks)
                try:  # _parse_head, inline
                    parser.feed_data(head)
                except (HttpParserError, HttpParserUpgrade) as exc:
                    self._parse_error(exc)
                self._finish_head(match, out, head)
                return idx + 4
        # A head in pieces: _buf keeps only the status line and the unfinished
        # line (llhttp holds the parsed fields), so memory stays under twice the
        # block limit however the bytes are cut (LIM-01).
        buf = self._buf
        old = len(buf)
        piece = memoryview(data)[pos : pos + self._max_block - self._head_len]  # no copy
        buf += piece
        if self._parser is None:
            self._parser = HttpResponseParser(self._callbacks)
        end = self._check_partial(old)
        if end < 0:
            self._head_len += len(piece)
            self._parse_head(piece)
            self._compact()
            return pos + len(piece)
        used = end - old  # the head ends inside this piece
        self._parse_head(piece[:used])
        status = self._status_match
        self._buf = bytearray()
        self._head_len = 0
        if status is None:  # cannot happen: the end is only seen after the status line
            raise BadStatusLine("incomplete status line")
        self._finish_head(status, out)
        return pos + used

    def _check_partial(self, old: int) -> int:
        """Bound a head arriving in pieces before llhttp sees the new bytes (LIM-01).

        Checks every line the bytes from ``old`` on complete, and the partial
        last one, so the verdict never depends on segmentation (aiohttp
        CVE-2026-54277).  Returns the offset just past the empty line that ends
        the head, or -1 while it is incomplete.
        """
        buf = self._buf
        start = self._line_start
        nl = buf.find(b"\n", old)
        while nl >= 0:
            if start == 0:
                if buf[nl - 1 : nl] != b"\r":
                    raise BadStatusLine("status line not terminated by CRLF")
                self._status_match = self._check_status_line(bytes(buf[: nl - 1]))
                self._status_end = nl + 1
            elif nl - start == 1 and buf[start] == 0x0D:  # CR LF alone: the end
                check_len(self._head_len + nl + 1 - old, self._max_block, "response head")
                return nl + 1
            else:
                check_len(nl - start - 1, self._max_field, "header field")
                self._n_lines += 1
                if self._n_lines > self._max_headers:
                    raise BadHttpMessage(f"more than {self._max_headers} header fields")
            start = nl + 1
            nl = buf.find(b"\n", start)
        self._line_start = start
        if start == 0:
            check_len(len(buf) - 1, self._max_line, "status line")  # CR?
            prefix = bytes(buf[:9])
            if not any(p.startswith(prefix) for p in _STATUS_PREFIXES):
                raise BadStatusLine(f"not an HTTP/1.x status line: {prefix!r}")
        else:
            check_len(len(buf) - start - 1, self._max_field, "header field")  # CR?
        # Not complete yet, so the head will be longer than what has come so far.
        check_len(self._head_len + len(buf) - old + 1, self._max_block, "response head")
        return -1

    def _compact(self) -> None:
        """Drop the field lines already checked (and parsed), keep the status line."""
        cut = self._status_end
        if self._line_start > cut:
            buf = self._buf
            self._buf = buf[:cut] + buf[self._line_start :]
            self._line_start = cut

    def _check_status_line(self, line: bytes) -> re.Match[bytes]:
        check_len(len(line), self._max_line, "status line")
        match = _STATUS_LINE.match(line + b"\r\n")
        if match is None:
            raise BadStatusLine(f"invalid status line: {line[:100]!r}")
        self._status_ok = True
        return match

    def _check_head(self, head: bytes) -> re.Match[bytes]:
        """Limits on a complete head (``head`` ends with CRLF CRLF)."""
        if len(head) <= self._small_head:
            # No line can be too long and at most len/4 fields fit: skip the split.
            match = _STATUS_LINE.match(head)
            if match is None:
                raise BadStatusLine(f"invalid status line: {head[:100]!r}")
            self._status_ok = True
            return match
        lines = head.split(b"\r\n")
        match = self._check_status_line(lines[0])
        if len(lines) - 3 > self._max_headers:
            raise BadHttpMessage(f"more than {self._max_headers} header fields")
        if max(map(len, lines)) > self._max_field:
            for line in lines[1:]:
                check_len(len(line), self._max_field, "header field")
        return match

    def _parse_head(self, chunk: bytes | memoryview) -> None:
        assert self._parser is not None
        try:
            self._parser.feed_data(chunk)
        except (HttpParserError, HttpParserUpgrade) as exc:
            self._parse_error(exc)

    def _parse_error(self, exc: HttpParserError | HttpParserUpgrade) -> None:
        """llhttp refused head bytes: raise our error for it (or ignore an upgrade's)."""
        if isinstance(exc, HttpParserUpgrade):
            return  # a 101 with Upgrade headers: nothing after the head was fed
        if self._hdrs_done:
            return  # llhttp "pauses" after any 101; only head bytes were fed
        msg = str(exc)
        if isinstance(exc, HttpParserInvalidStatusError) or not self._status_ok:
            raise BadStatusLine(msg) from exc
        cls = TransferEncodingError if "Transfer-Encoding" in msg else InvalidHeader
        raise cls(msg) from exc

    def _finish_head(
        self, match: re.Match[bytes], out: list[Event], head: bytes | None = None
    ) -> None:
        if not self._hdrs_done:
            raise BadHttpMessage("incomplete response head")
        status = int(match[2])
        raw = self._raw
        # llhttp keeps trailing OWS, RFC 9110 §5.5 drops it.
        ascii_head = head is not None and head.isascii()
        if ascii_head:
            # The common head: plain decode() gives the same strings without the
            # error-handler lookups (~25 % of this step).
            pairs = [(n.decode(), v.decode().rstrip(" \t")) for n, v in raw]
        else:  # decoded as aiohttp does
            pairs = [(n.decode("utf-8", _SE), v.decode("utf-8", _SE).rstrip(" \t")) for n, v in raw]
        headers: CIMultiDict[str] = CIMultiDict(pairs)
        length, chunked = body_headers(headers)
        upgrade = status == 101 or (self._is_connect and 200 <= status < 300)
        if status < 200 and not (upgrade and self._expect_upgrade):
            self._informational(status, headers, out)
            return
        if upgrade and self._is_connect and (length is not None or chunked):
            raise BadHttpMessage("a 2xx to CONNECT must not declare a body (RFC 9110 §9.3.6)")
        if length and not (upgrade or chunked or self._is_head or status == 204 or status == 304):
            self._remaining = length  # _body_phase's common case, inline
            phase = _LENGTH
        else:
            phase = self._body_phase(status, upgrade, chunked, length)
        minor = match[1] == b"1"
        connection = headers.getall("Connection", None)
        keep_alive = (
            phase is not _CLOSE
            and not upgrade
            and (minor if connection is None else connection_persists(connection, minor))
        )
        reason_bytes = match[3] or b""
        reason = reason_bytes.decode() if ascii_head else reason_bytes.decode("utf-8", _SE)
        version = (1, 1) if minor else (1, 0)
        out.append(
            ResponseHead(
                status, reason, version, headers, tuple(raw), keep_alive, upgrade, chunked, length
            )
        )
        self._keep_alive = keep_alive
        self._phase = phase
        raw.clear()  # trailers land here and are dropped
        if phase is _CHUNKED:
            self._ck_state, self._ck_gap, self._tr_bytes, self._tr_count = _CK_LINE, 0, 0, 0
            self._ck_log: list[int] = []
            return
        self._parser = None
        if phase is _DONE or phase is _UPGRADED:
            out.append(END)

    def _informational(self, status: int, headers: CIMultiDict[str], out: list[Event]) -> None:
        if status == 101:
            raise BadHttpMessage("101 Switching Protocols to a request that did not upgrade")
        self._n_info += 1
        if self._n_info > self._max_info:
            raise BadHttpMessage(f"more than {self._max_info} informational responses")
        out.append(InformationalHead(status, headers))
        self._new_head()  # the final response follows (RFC 9110 §15.2)

    def _body_phase(self, status: int, upgrade: bool, chunked: bool, length: int | None) -> Phase:
        """How this response's body is delimited (RFC 9112 §6.3)."""
        if upgrade:
            return _UPGRADED
        if self._is_head or status == 204 or status == 304:
            return _DONE
        if chunked:
            return _CHUNKED
        if length is None:
            return _CLOSE  # read until the server closes; never reusable
        self._remaining = length
        return _LENGTH if length else _DONE

    # -- chunked body ---------------------------------------------------------------

    def _feed_chunked(self, data: bytes, pos: int, out: list[Event]) -> int:
        assert self._parser is not None
        self._out = out
        log = self._ck_log
        log.clear()
        try:
            self._parser.feed_data(memoryview(data)[pos:] if pos else data)
        except (HttpParserError, HttpParserUpgrade) as exc:
            # Once the message is done, llhttp choking on what follows (data
            # after "Connection: close", garbage) only confirms those bytes
            # are stray; they poison the connection below.
            if not self._msg_done:
                raise TransferEncodingError(str(exc)) from exc
        finally:
            self._raw.clear()
        end = self._account_chunked(data, pos, log)
        if not self._msg_done:
            return len(data)
        self._phase = _DONE
        self._parser = None
        out.append(END)
        return end

    def _account_chunked(self, data: bytes, p: int, log: list[int]) -> int:
        """Bound the framing bytes llhttp just consumed (PARSE-05/06).

        llhttp streams chunk extensions and trailers unbounded and reports no
        positions, so bytes are attributed from the order of its events: body
        data (``n > 0``), a chunk header (just after a size line's LF), a chunk
        completion (after the CRLF that follows data, or after the last chunk's
        trailer section).  Returns the offset just past the message, if done.
        """
        state, gap = self._ck_state, self._ck_gap
        for ev in log:
            if ev > 0:
                p += ev
                state, gap = _CK_DATA, 0
            elif ev == _EV_CHUNK_HEADER:
                nl = data.find(b"\n", p)
                check_len(gap + nl - p - 1, self._max_line, "chunk-size line")
                p, state, gap = nl + 1, _CK_AFTER_SIZE, 0
            elif state == _CK_DATA:
                p, state, gap = data.find(b"\n", p) + 1, _CK_LINE, 0
            else:  # the last chunk: its trailer section ends here
                p, gap = self._scan_trailers(data, p, gap)
                state = _CK_LINE
        if not self._msg_done:
            if state == _CK_AFTER_SIZE:
                # No data followed the size line: it was the last chunk's.
                p, gap = self._scan_trailers(data, p, gap)
            else:
                gap += len(data) - p
                if state == _CK_LINE:
                    check_len(gap - 1, self._max_line, "chunk-size line")  # CR?
        self._ck_state, self._ck_gap = state, gap
        return p

    def _scan_trailers(self, data: bytes, p: int, line: int) -> tuple[int, int]:
        """Walk trailer lines from ``p``; return (end offset, partial line length)."""
        end = len(data)
        while True:
            nl = data.find(b"\n", p)
            seg = (end if nl < 0 else nl) - p
            line += seg
            self._tr_bytes += seg + (nl >= 0)
            check_len(line - 1, self._max_field, "trailer field")  # CR?
            check_len(self._tr_bytes, self._max_block, "trailer section")
            if nl < 0:
                return end, line
            p = nl + 1
            if line == 1:  # just the CR: the empty line ends the section
                return p, 0
            self._tr_count += 1
            if self._tr_count > self._max_headers:
                raise BadHttpMessage(f"more than {self._max_headers} trailer fields")
            line = 0

    def _on_headers_complete(self) -> None:
        self._hdrs_done = True

    def _on_body(self, body: bytes) -> None:
        self._out.append(body)
        self._ck_log.append(len(body))

    def _on_chunk_complete(self) -> None:
        self._ck_log.append(_EV_CHUNK_COMPLETE)
        self._out.append(CHUNK_END)

    def _on_message_complete(self) -> None:
        self._msg_done = True
        if self._phase is _CHUNKED:
            # What follows is never the next response.  llhttp may go on
            # parsing it; its events now land in lists that are dropped.
            self._out = []
            self._ck_log = []

