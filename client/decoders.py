"""Response content decoding (``Content-Encoding``): gzip, deflate, br and zstd.

Every compressed body is treated as a potential bomb (security.md C4-C6): each
decoder is a lazy generator that does its work only as the consumer pulls and
never hands out more than ``DECODE_STEP`` bytes per piece; stacked codings are
capped at ``MAX_CODINGS``; gzip members and zstd frames at ``max_members``; the
zstd window at ``zstd_max_window``.  Library errors surface only as
``ContentEncodingError``.
"""

from __future__ import annotations

import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator

from .exceptions import ContentEncodingError
from .zstd_frames import _ZstdFramer

__all__ = ["ACCEPT_ENCODING", "DECODE_STEP", "MAX_CODINGS", "ContentDecoder", "make_decoder"]

ACCEPT_ENCODING = "gzip, deflate, br, zstd"
MAX_CODINGS = 5  # curl, urllib3 and undici all settled on 5 (security.md C5)
DECODE_STEP = 256 * 1024

# Compressed bytes handed to a C decoder per call.  zlib and brotli copy the input
# they have not consumed yet whenever an output limit stops them, so a bounded
# input slice keeps those copies small instead of re-copying a whole large chunk.
_IN_STEP = 64 * 1024

_Buffer = bytes | memoryview


class ContentDecoder(ABC):
    """Incremental decoder for one response body's content codings."""

    __slots__ = ("_encodings",)

    def __init__(self, encodings: tuple[str, ...]) -> None:
        self._encodings = encodings

    @property
    def encodings(self) -> tuple[str, ...]:
        """Codings undone, normalized, in header order (i.e. order of application)."""
        return self._encodings

    @abstractmethod
    def decompress(self, data: bytes) -> Iterator[bytes]:
        """Lazily decode the next piece of the body.

        Yields decoded pieces of at most ``DECODE_STEP`` bytes, doing the work as
        the consumer pulls.  Exhaust the iterator before calling again.
        """

    @abstractmethod
    def flush(self) -> Iterator[bytes]:
        """End of body: yield what remains.

        Raises ``ContentEncodingError`` if the compressed stream is incomplete.
        An entirely empty body is accepted (servers label empty bodies too).
        """


def _slices(data: bytes) -> Iterator[_Buffer]:
    if len(data) <= _IN_STEP:
        yield data
        return
    view = memoryview(data)
    for start in range(0, len(view), _IN_STEP):
        yield view[start : start + _IN_STEP]


def _bounded(out: bytes) -> Iterator[bytes]:
    """Split an oversized decoder output into DECODE_STEP pieces (defensive)."""
    if len(out) <= DECODE_STEP:
        yield out
        return
    view = memoryview(out)
    for start in range(0, len(view), DECODE_STEP):
        yield bytes(view[start : start + DECODE_STEP])


def _truncated(coding: str) -> ContentEncodingError:
    return ContentEncodingError(f"{coding}: compressed stream is truncated")


# -- gzip / deflate ----------------------------------------------------------------

_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_WBITS = zlib.MAX_WBITS
_RAW_WBITS = -zlib.MAX_WBITS


def _is_zlib_header(cmf: int, flg: int) -> bool:
    """RFC 1950 §2.2: CM=8, CINFO<=7 and the 16-bit header a multiple of 31."""
    return cmf & 0x0F == 8 and cmf >> 4 <= 7 and ((cmf << 8) | flg) % 31 == 0


class _ZlibDecoder(ContentDecoder):
    """gzip (RFC 1952, concatenated members allowed) or deflate.

    "deflate" is meant to be zlib-wrapped (RFC 9110 §8.4.1.2) but many servers
    send raw deflate; like browsers, the first two bytes decide.
    """

    __slots__ = ("_gzip", "_head", "_max_members", "_members", "_obj")

    def __init__(self, coding: str, max_members: int) -> None:
        super().__init__((coding,))
        self._gzip = coding == "gzip"
        self._obj: zlib._Decompress | None = None
        self._head = b""  # deflate: first byte held until the second one arrives
        self._members = 0
        self._max_members = max_members

    def decompress(self, data: bytes) -> Iterator[bytes]:
        if not data:
            return
        if self._obj is None and not self._gzip:
            if len(self._head) + len(data) < 2:
                self._head += data
                return
            first = self._head + data[: 2 - len(self._head)]
            wbits = _ZLIB_WBITS if _is_zlib_header(first[0], first[1]) else _RAW_WBITS
            self._obj = zlib.decompressobj(wbits)
            self._members = 1
            if self._head:
                head, self._head = self._head, b""
                yield from self._inflate(head)
        for chunk in _slices(data):
            yield from self._inflate(chunk)

    def _member(self) -> zlib._Decompress:
        """The decompressor for incoming bytes; a new one per gzip member."""
        obj = self._obj
        if obj is not None and not obj.eof:
            return obj
        if not self._gzip:
            raise ContentEncodingError("deflate: data after the end of the stream")
        if self._members >= self._max_members:
            raise ContentEncodingError(f"gzip: more than {self._max_members} members")
        self._members += 1
        self._obj = obj = zlib.decompressobj(_GZIP_WBITS)
        return obj

    def _step(self, obj: zlib._Decompress, chunk: _Buffer) -> bytes:
        try:
            return obj.decompress(chunk, DECODE_STEP)
        except zlib.error as exc:
            raise ContentEncodingError(f"{self._encodings[0]}: {exc}") from exc

    def _inflate(self, chunk: _Buffer) -> Iterator[bytes]:
        while chunk:
            obj = self._member()
            out = self._step(obj, chunk)
            if out:
                yield out
            # A full step means zlib stopped at max_length: input may remain in
            # unconsumed_tail, or output may still be pending inside zlib.
            while not obj.eof and (obj.unconsumed_tail or len(out) == DECODE_STEP):
                out = self._step(obj, obj.unconsumed_tail)
                if out:
                    yield out
            # After a gzip member, whatever follows must be another member.
            chunk = obj.unused_data if obj.eof else b""

    def flush(self) -> Iterator[bytes]:
        if self._head or (self._obj is not None and not self._obj.eof):
            raise _truncated(self._encodings[0])
        yield from ()


# -- brotli ------------------------------------------------------------------------

# The binding grows its output in blocks of 32, 64, 128 KiB ... and checks the
# limit between blocks, so asking for half a step returns at most ~224 KiB.
_BR_LIMIT = DECODE_STEP // 2


class _BrotliDecoder(ContentDecoder):
    """br (RFC 7932) through brotli>=1.2's output-limited ``process``."""

    __slots__ = ("_dec", "_fed")

    def __init__(self) -> None:
        super().__init__(("br",))
        import brotli  # here, not at import: ~0.5 ms of `import client` (with zstandard)

        self._dec = brotli.Decompressor()
        self._fed = False

    def _process(self, chunk: _Buffer) -> bytes:
        import brotli  # loaded by __init__: a dict lookup

        try:
            out: bytes = self._dec.process(chunk, output_buffer_limit=_BR_LIMIT)
        except brotli.error as exc:
            raise ContentEncodingError(f"br: {exc}") from exc
        return out

    def decompress(self, data: bytes) -> Iterator[bytes]:
        if not data:
            return
        self._fed = True
        dec = self._dec
        for chunk in _slices(data):
            out = self._process(chunk)
            # Pending output remains while the limit was hit (possibly with all
            # input consumed) or while the binding still holds unconsumed input.
            while True:
                if out:
                    yield from _bounded(out)
                more_input = not dec.can_accept_more_data()
                if len(out) < _BR_LIMIT and not more_input:
                    break
                out = self._process(b"")
                if not out and more_input:
                    raise ContentEncodingError("br: decoder made no progress")

    def flush(self) -> Iterator[bytes]:
        if self._fed and not self._dec.is_finished():
            raise _truncated("br")
        yield from ()


# -- zstd --------------------------------------------------------------------------


class _ZstdDecoder(ContentDecoder):
    """zstd (RFC 8878), multi-frame, with a bounded window."""

    __slots__ = ("_dobj", "_framer")

    def __init__(self, max_members: int, max_window: int) -> None:
        super().__init__(("zstd",))
        import zstandard  # on the first zstd body, not at `import client`

        dctx = zstandard.ZstdDecompressor(max_window_size=max_window)
        self._dobj = dctx.decompressobj(read_across_frames=True)
        self._framer = _ZstdFramer(max_members)

    def decompress(self, data: bytes) -> Iterator[bytes]:
        import zstandard  # loaded by __init__: a dict lookup

        view = memoryview(data)
        pos, end = 0, len(view)
        while pos < end:
            stop = self._framer.scan(view, pos, DECODE_STEP)
            try:
                out = self._dobj.decompress(data if stop - pos == end else view[pos:stop])
            except zstandard.ZstdError as exc:
                raise ContentEncodingError(f"zstd: {exc}") from exc
            pos = stop
            if out:
                yield from _bounded(out)

    def flush(self) -> Iterator[bytes]:
        if not self._framer.at_boundary:
            raise _truncated("zstd")
        yield from ()


# -- stacking and the factory ------------------------------------------------------


class _ChainDecoder(ContentDecoder):
    """Stacked codings; stage 0 undoes the coding applied last (RFC 9110 §8.4)."""

    __slots__ = ("_stages",)

    def __init__(self, encodings: tuple[str, ...], stages: list[ContentDecoder]) -> None:
        super().__init__(encodings)
        self._stages = stages

    def decompress(self, data: bytes) -> Iterator[bytes]:
        return self._feed(0, data)

    def _feed(self, index: int, data: bytes) -> Iterator[bytes]:
        # Each piece of an outer stage goes through the inner stages before the
        # outer stage is asked for its next piece: the whole chain stays lazy.
        pieces = self._stages[index].decompress(data)
        if index + 1 == len(self._stages):
            yield from pieces
            return
        for piece in pieces:
            yield from self._feed(index + 1, piece)

    def flush(self) -> Iterator[bytes]:
        last = len(self._stages) - 1
        for index, stage in enumerate(self._stages):
            for piece in stage.flush():
                if index == last:
                    yield piece
                else:
                    yield from self._feed(index + 1, piece)


_CODINGS = {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate", "br": "br", "zstd": "zstd"}


def _parse_codings(content_encoding: str) -> tuple[str, ...]:
    codings: list[str] = []
    for token in content_encoding.split(","):
        name = token.strip(" \t").lower()
        if not name or name == "identity":
            continue
        coding = _CODINGS.get(name) if name.isascii() else None
        if coding is None:
            shown = name if len(name) <= 32 else name[:32] + "..."
            raise ContentEncodingError(f"unsupported content coding {shown!r}")
        codings.append(coding)
        if len(codings) > MAX_CODINGS:
            raise ContentEncodingError(f"more than {MAX_CODINGS} content codings")
    return tuple(codings)


def _new_stage(coding: str, max_members: int, zstd_max_window: int) -> ContentDecoder:
    if coding == "br":
        return _BrotliDecoder()
    if coding == "zstd":
        return _ZstdDecoder(max_members, zstd_max_window)
    return _ZlibDecoder(coding, max_members)


def make_decoder(
    content_encoding: str,
    *,
    max_members: int = 1024,
    zstd_max_window: int = 1 << 27,
) -> ContentDecoder | None:
    """Build the decoder for a response's ``Content-Encoding``.

    ``content_encoding`` is every Content-Encoding field value joined with ", ".
    Tokens are case-insensitive; ``x-gzip`` means gzip; ``identity`` entries are
    skipped.  Returns ``None`` when nothing needs decoding.  Raises
    ``ContentEncodingError`` for an unknown coding or more than ``MAX_CODINGS``.
    ``max_members`` caps gzip members and zstd frames; ``zstd_max_window`` caps
    the window a zstd frame may declare.
    """
    codings = _parse_codings(content_encoding)
    if not codings:
        return None
    stages = [_new_stage(c, max_members, zstd_max_window) for c in reversed(codings)]
    if len(stages) == 1:
        return stages[0]
    return _ChainDecoder(codings, stages)
