"""The built-in page title: the first ``<title>`` of an HTML body, from its first bytes.

Part of ``runner.extract``; runs on the event loop, so it is cheap: the body
chunks that hold the head are kept by reference (no copies), and libxml2
parses only the bytes up to the first ``</title``, in batches.
"""

from __future__ import annotations

import asyncio
import codecs
import re
import threading

from lxml import etree

TITLE_SCAN_BYTES = 64 * 1024
_SNIFF = 1024  # bytes searched for a BOM or a charset declaration
_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def html_encoding(charset: str | None, body: bytes) -> str | None:
    """The encoding to parse HTML with; None lets libxml2 read a BOM or ``<meta charset>``.

    Without either, libxml2 falls back to Latin-1; we assume UTF-8, the
    encoding of nearly every page served today.
    """
    if charset is not None:
        return charset
    head = body[:_SNIFF]
    if head.startswith(_BOMS) or b"charset" in head.lower():
        return None
    return "utf-8"


class TitleScan:
    """The first ``<title>`` of an HTML body, from its first bytes only.

    ``feed`` only remembers the first chunks (no copies) and where ``</title``
    first appears; ``result`` parses them with libxml2 in a batch with the
    other responses that end in the same event-loop turn (see ``_Batch``).
    """

    __slots__ = ("_charset", "_chunks", "_end", "_quick", "_size", "done")

    def __init__(self, charset: str | None) -> None:
        self._charset = charset
        self._chunks: list[bytes] = []
        self._size = 0
        self._end = -1  # where the first ``</title`` starts, once seen
        self._quick: str | None = None  # the title, when quick_title read it
        self.done = False  # enough bytes are kept

    def feed(self, chunk: bytes) -> None:
        """Keep *chunk* while the title's end (plus a margin) is not in hand."""
        if self.done:
            return
        if not self._size:  # the first chunk holds nearly every page's whole head
            self._quick = quick_title(chunk, self._charset)
            if self._quick is not None:
                self.done = True
                return
        if self._end < 0:
            self._end = self._find_end(chunk)
        self._chunks.append(chunk)
        self._size += len(chunk)
        enough = self._end >= 0 and self._size >= self._end + _MARGIN
        self.done = enough or self._size >= TITLE_SCAN_BYTES

    def _find_end(self, chunk: bytes) -> int:
        """The body offset of the first ``</title`` within the scan limit, or -1."""
        limit = TITLE_SCAN_BYTES - self._size
        if self._chunks:  # the tag may straddle two chunks
            tail = self._chunks[-1][1 - len(_END_TAG) :]
            found = _title_end(tail + chunk[: len(_END_TAG) - 1], 0, len(tail) + limit)
            if found >= 0:
                return self._size - len(tail) + found
        found = _title_end(chunk, 0, limit)
        return self._size + found if found >= 0 else -1

    async def result(self) -> str | None:
        """The title (None if there is none in the first ``TITLE_SCAN_BYTES``)."""
        if self._quick is not None:
            return self._quick
        if not self._chunks:
            return None
        data = b"".join(self._chunks)  # one chunk: the same object, no copy
        self._chunks = []
        self.done = True
        return await _batch_parse(data, self._end, self._charset)


_END_TAG = b"</title"
_MARGIN = 4096  # bytes kept past the first </title, for a real title after a fake one
_parsers = threading.local()
_batches = threading.local()


def _title_end(data: bytes, start: int, stop: int) -> int:
    """Where the first ``</title`` (as usually written) starts in data[start:stop], or -1."""
    end = data.find(_END_TAG, start, stop)
    return end if end >= 0 else data.find(b"</TITLE", start, stop)


def _batch_parse(data: bytes, end: int, charset: str | None) -> asyncio.Future[str | None]:
    """The title of *data*, parsed on the next turn of the loop together with others.

    Parsing a tiny head costs a few microseconds when libxml2's code is in the
    CPU caches and three times that when it is not, as between two responses;
    parsing every head that arrives in one loop turn back to back (dozens at
    a time in a busy run) keeps it warm.
    """
    loop = asyncio.get_running_loop()
    batch: _Batch | None = getattr(_batches, "batch", None)
    if batch is None or batch.loop is not loop:
        batch = _batches.batch = _Batch(loop)
    future: asyncio.Future[str | None] = loop.create_future()
    if not batch.pending:
        loop.call_soon(batch.flush)
    batch.pending.append((data, end, charset, future))
    return future


class _Batch:
    """Heads waiting for the next loop turn, per thread (one loop a thread)."""

    __slots__ = ("loop", "pending")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pending: list[tuple[bytes, int, str | None, asyncio.Future[str | None]]] = []

    def flush(self) -> None:
        pending, self.pending = self.pending, []
        for data, end, charset, future in pending:
            if not future.done():  # its request may have been cancelled meanwhile
                future.set_result(title_of(data, end, charset))


def title_of(data: bytes, end: int, charset: str | None) -> str | None:
    """The first title of *data*: the bytes before *end* first, else the first 64 KiB."""
    title = _first_title(data[:end], charset) if end >= 0 else None
    if title is None:
        # ``</title`` sat in a comment or a script, or is spelt ``</Title``.
        title = _first_title(data[:TITLE_SCAN_BYTES], charset)
    return title


def _first_title(data: bytes, charset: str | None) -> str | None:
    """The text of the first title element in *data* (spaces collapsed), or None."""
    encoding = html_encoding(charset, data)
    cache: dict[str | None, etree.HTMLParser] | None = getattr(_parsers, "by_encoding", None)
    if cache is None or len(cache) > 16:
        cache = _parsers.by_encoding = {}
    parser = cache.get(encoding)
    if parser is None:
        parser = cache[encoding] = etree.HTMLParser(encoding=encoding, no_network=True)
    try:
        root = etree.fromstring(data, parser)
    except (etree.LxmlError, LookupError):
        return None  # an unreadable head has no title
    element = next(root.iter("title"), None) if root is not None else None
    if element is None:
        return None
    # Title content is text only (RCDATA, HTML §13.1.2.6): no child elements to walk.
    return " ".join((element.text or "").split())


# -- the quick path: a plain head read with one regex, no parser ---------------------
#
# libxml2 costs 30-50 µs per page even for a tiny head, most of it set-up. When the
# bytes before the first <title> are only a doctype, ordinary tags and text (no
# comment, no element whose content is not markup, no svg/math), all printable ASCII,
# and the title is printable ASCII without "&" or "<", the parser finds exactly that
# text: the regex reads it. Anything else goes to libxml2 as before.
_WS = rb"[\t\n\r ]"
_TEXT = rb"[\t\n\r\x20-\x3b\x3d-\x7e]+"  # printable ASCII but "<"
_NAME = rb"[\x21\x23-\x26\x28-\x2e\x30-\x3b\x3f-\x7e]+"  # no space " ' / < = >
_VALUE = (
    rb"(?:\x22[\t\n\r\x20\x21\x23-\x3b\x3d-\x7e]*\x22"  # "...", no < inside
    rb"|'[\t\n\r\x20-\x26\x28-\x3b\x3d-\x7e]*'"  # '...', no < inside
    rb"|[\x21\x23-\x26\x28-\x3b\x3f-\x5f\x61-\x7e]+)"  # unquoted
)
_NOT_PLAIN = (  # raw-text and foreign elements, and the title itself
    rb"script|style|textarea|xmp|iframe|noembed|noframes|noscript|plaintext|template"
    rb"|svg|math|title"
)
_TAG = (
    rb"</?(?!(?:" + _NOT_PLAIN + rb")(?![A-Za-z0-9-]))[A-Za-z][A-Za-z0-9-]*"
    rb"(?:" + _WS + rb"+" + _NAME + rb"(?:" + _WS + rb"*=" + _WS + rb"*" + _VALUE + rb")?)*"
    rb"" + _WS + rb"*/?>"
)
_DOCTYPE = rb"<!doctype[\t\n\r\x20-\x3b\x3d\x3f-\x7e]*>"
_QUICK = re.compile(
    rb"(?:" + _DOCTYPE + rb"|" + _TAG + rb"|" + _TEXT + rb")*+"  # possessive: no backtracking
    rb"<title(?:" + _WS + rb"+[\x20\x21\x23-\x26\x28-\x3b\x3d\x3f-\x7e]*)?>"  # no quotes
    rb"([\t\n\r\x20-\x25\x27-\x3b\x3d-\x7e]*)</title>",  # no & (entities), no <
    re.IGNORECASE,
)
_CHARSET_WORD = re.compile(rb"charset", re.IGNORECASE)
_CHARSET = re.compile(rb"charset[\t\n\r ]*=[\t\n\r ]*[\x22']?([a-z0-9_.:-]*)")
# Labels under which printable ASCII bytes decode to themselves in libxml2 (iconv) as in
# Python; not Shift_JIS and friends (0x5C is a yen sign there), nor UTF-16.
_ASCII_SAFE = frozenset(
    {"utf-8", "utf8", "us-ascii", "ascii", "latin1", "latin-1"}
    | {f"iso-8859-{n}" for n in (1, 2, 3, 4, 5, 7, 9, 10, 13, 14, 15, 16)}
    | {f"windows-{n}" for n in range(1250, 1259)}
    | {f"cp{n}" for n in range(1250, 1259)}
)


def quick_title(data: bytes, charset: str | None) -> str | None:
    """The title of a plain head read without a parser; None when libxml2 must decide."""
    match = _QUICK.match(data, 0, TITLE_SCAN_BYTES)
    if match is None:
        return None
    if charset is not None and charset.lower() not in _ASCII_SAFE:
        return None
    # libxml2 sees the bytes up to the title's end: a <meta> there may name the encoding,
    # which must be one that reads ASCII as ASCII.
    if _CHARSET_WORD.search(data, 0, match.end()) is not None:
        for label in _CHARSET.findall(data[: match.end()].lower()):
            if label.decode("ascii") not in _ASCII_SAFE:
                return None
    return " ".join(match.group(1).decode("ascii").split())
