"""``StreamReader``: a response body as aiohttp's ``resp.content``.

The protocol feeds raw body bytes in; readers pull decoded bytes out. When
the body is content-encoded, decompression happens *in the reader* and only
as far as it reads (``decoders.ContentDecoder`` yields bounded steps), so a
decompression bomb costs at most one step of memory beyond what the caller
asked for. Back-pressure: above ``high_water`` buffered bytes the feeder is
asked to pause the transport; below ``low_water`` it resumes.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Final

from .exceptions import ClientPayloadError, ContentEncodingError

if TYPE_CHECKING:
    from .decoders import ContentDecoder

__all__ = ("EMPTY_PAYLOAD", "EofStream", "StreamReader")


class EofStream(Exception):
    """Internal: the stream is at its end."""


class StreamReader:
    """A buffered, back-pressured byte stream with aiohttp's reading API."""

    total_bytes: int
    total_raw_bytes: int

    def __init__(
        self,
        *,
        limit: int = 2**16,
        loop: asyncio.AbstractEventLoop | None = None,
        decoder: ContentDecoder | None = None,
        on_pause: Callable[[], None] | None = None,
        on_resume: Callable[[], None] | None = None,
        on_read: Callable[[], None] | None = None,
    ) -> None:
        self._loop = loop if loop is not None else asyncio.get_running_loop()
        self._low_water = limit
        self._high_water = limit * 2
        self._buffer: deque[bytes] = deque()
        self._size = 0  # bytes in _buffer plus raw bytes not yet decoded
        self._chunk_ends: deque[int] = deque()  # total_bytes at each HTTP chunk end
        self._eof = False
        self._waiter: asyncio.Future[None] | None = None
        self._eof_waiter: asyncio.Future[None] | None = None
        self._exception: BaseException | None = None
        self._decoder = decoder
        self._raw: deque[bytes] = deque()
        self._pending: Iterator[bytes] | None = None
        self._flushed = decoder is None
        self._paused = False
        self._on_pause = on_pause
        self._on_resume = on_resume
        self._on_read = on_read
        self._eof_callbacks: list[Callable[[], None]] = []
        self.total_bytes = 0
        self.total_raw_bytes = 0
        self._read_pos = 0

    def __repr__(self) -> str:
        state = []
        if self._size:
            state.append(f"{self._size} bytes")
        if self._eof:
            state.append("eof")
        if self._exception is not None:
            state.append(f"e={self._exception!r}")
        if self._paused:
            state.append("paused")
        return f"<StreamReader {' '.join(state)}>"

    # -- feeding side (the protocol) ---------------------------------------

    def feed_data(self, data: bytes) -> None:
        """Append body bytes as received from the wire."""
        if not data:
            return
        self.total_raw_bytes += len(data)
        self._size += len(data)
        if self._decoder is None:
            self.total_bytes += len(data)
            self._buffer.append(data)
        else:
            self._raw.append(data)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
        if self._size > self._high_water and not self._paused and self._on_pause is not None:
            self._paused = True
            self._on_pause()

    def begin_http_chunk_receiving(self) -> None:
        """Kept for aiohttp API parity; chunk boundaries come via end_http_chunk_receiving."""

    def end_http_chunk_receiving(self) -> None:
        """Mark an HTTP chunk boundary at the current position (for ``iter_chunks``)."""
        if self._decoder is None and (
            not self._chunk_ends or self._chunk_ends[-1] != self.total_bytes
        ):
            self._chunk_ends.append(self.total_bytes)

    def feed_eof(self) -> None:
        """The body is complete."""
        self._eof = True
        if self._waiter is not None or self._eof_waiter is not None:
            self._wake()
        callbacks = self._eof_callbacks
        if callbacks:
            self._eof_callbacks = []
            for cb in callbacks:
                cb()

    def set_exception(self, exc: BaseException) -> None:
        """Fail the stream: pending and future reads raise ``exc``."""
        self._exception = exc
        self._eof_callbacks.clear()
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_exception(exc)
        self._wake_eof()

    def on_eof(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the body is complete (now, if it already is)."""
        if self._eof:
            callback()
        else:
            self._eof_callbacks.append(callback)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
        self._wake_eof()

    def _wake_eof(self) -> None:
        waiter = self._eof_waiter
        if waiter is not None:
            self._eof_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- state -------------------------------------------------------------

    def exception(self) -> BaseException | None:
        return self._exception

    def is_eof(self) -> bool:
        """True once the feeder has signalled the end (data may remain buffered)."""
        return self._eof

    def at_eof(self) -> bool:
        """True when the body is complete and everything has been read."""
        return (
            self._eof
            and not self._buffer
            and not self._raw
            and self._pending is None
            and (self._flushed)
        )

    async def wait_eof(self) -> None:
        if self._eof or self._exception is not None:
            return
        self._eof_waiter = self._loop.create_future()
        try:
            await self._eof_waiter
        finally:
            self._eof_waiter = None

    def unread_data(self, data: bytes) -> None:
        """Push ``data`` back to the front of the buffer."""
        if data:
            self._buffer.appendleft(data)
            self._size += len(data)
            self._read_pos -= len(data)

    # -- decoding ----------------------------------------------------------

    def _decode_step(self) -> bool:
        """Move one decoded piece into the buffer; False when nothing is available yet."""
        decoder = self._decoder
        assert decoder is not None
        try:
            while True:
                if self._pending is not None:
                    piece = next(self._pending, None)
                    if piece is None:
                        self._pending = None
                        continue
                    if piece:
                        self._buffer.append(piece)
                        self._size += len(piece)
                        self.total_bytes += len(piece)
                        return True
                    continue
                if self._raw:
                    raw = self._raw.popleft()
                    self._size -= len(raw)
                    self._pending = decoder.decompress(raw)
                    continue
                if self._eof and not self._flushed:
                    self._flushed = True
                    self._pending = decoder.flush()
                    continue
                return False
        except ContentEncodingError as exc:
            self._pending = None
            self._raw.clear()
            self._flushed = True
            error = ClientPayloadError(f"Can not decode content-encoding: {exc}")
            error.__cause__ = exc
            self._exception = error
            raise error from exc

    # -- reading side --------------------------------------------------------

    def _done(self) -> bool:
        return self._eof and (self._decoder is None or (self._flushed and self._pending is None))

    async def _wait(self, func_name: str) -> None:
        if self._waiter is not None:
            raise RuntimeError(
                f"{func_name}() called while another coroutine is already waiting for data"
            )
        waiter = self._waiter = self._loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    async def _fill(self, func_name: str) -> bool:
        """Wait until data is buffered; False at the end of the stream."""
        while True:
            if self._exception is not None:
                raise self._exception
            if self._buffer:
                return True
            if self._decoder is not None and self._decode_step():
                # Decoding costs CPU, not I/O: let other tasks run between pieces
                # so that a decompression bomb cannot stall the loop (security.md C4).
                await asyncio.sleep(0)
                return True
            if self._done():
                return False
            await self._wait(func_name)

    def _take(self, n: int) -> bytes:
        """Remove up to ``n`` bytes (``-1``: the first buffered block) from the buffer."""
        data = self._buffer.popleft()
        if 0 <= n < len(data):
            self._buffer.appendleft(data[n:])
            data = data[:n]
        self._size -= len(data)
        self._read_pos += len(data)
        if self._paused and self._size < self._low_water and self._on_resume is not None:
            self._paused = False
            self._on_resume()
        if self._on_read is not None:
            self._on_read()
        return data

    async def readany(self) -> bytes:
        """Whatever is buffered (at least one byte), or ``b""`` at the end."""
        if not await self._fill("readany"):
            return b""
        return self._take(-1)

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes; with ``n < 0``, the whole rest of the body."""
        if n == 0:
            return b""
        if n > 0:
            if not await self._fill("read"):
                return b""
            return self._take(n)
        blocks: list[bytes] = []
        if self._eof and self._decoder is None and self._exception is None:
            # Hot path: a small body already complete, undecoded. Same steps as the
            # loop below (every block through _take), without two _fill coroutines.
            buffer = self._buffer
            if len(buffer) == 1 and self._on_read is None and not self._paused:
                data = buffer.popleft()  # one block, no hooks: _take(-1) in short
                self._size -= len(data)
                self._read_pos += len(data)
                return data
            while self._buffer:
                blocks.append(self._take(-1))
            if self._exception is not None:  # set by a _take callback: as _fill would
                raise self._exception
            return b"".join(blocks)
        while await self._fill("read"):
            while self._buffer:
                blocks.append(self._take(-1))
        return b"".join(blocks)

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes, or ``asyncio.IncompleteReadError``."""
        blocks: list[bytes] = []
        remaining = n
        while remaining > 0:
            if not await self._fill("readexactly"):
                partial = b"".join(blocks)
                raise asyncio.IncompleteReadError(partial, n)
            block = self._take(remaining)
            blocks.append(block)
            remaining -= len(block)
        return b"".join(blocks)

    async def readuntil(self, separator: bytes = b"\n", max_size: int | None = None) -> bytes:
        """Bytes up to and including ``separator`` (or to the end of the stream)."""
        if not separator:
            raise ValueError("Separator should be at least one-byte string")
        limit = max_size if max_size is not None else self._high_water
        found: list[bytes] = []
        size = 0
        while await self._fill("readuntil"):
            block = self._buffer[0]
            if found and len(separator) > 1:
                # The separator may straddle two blocks: join and rescan.
                block = self._buffer.popleft()
                self._size -= len(block)
                prev = found.pop()
                size -= len(prev)
                self._read_pos -= len(prev)  # prev goes back: it is taken again below
                block = prev + block
                self._buffer.appendleft(block)
                self._size += len(block)
            pos = block.find(separator)
            take = pos + len(separator) if pos >= 0 else len(block)
            piece = self._take(take)
            found.append(piece)
            size += len(piece)
            if pos >= 0:
                break
            if size > limit:
                raise ValueError("Chunk too big")
        return b"".join(found)

    async def readline(self, *, max_line_length: int | None = None) -> bytes:
        """One line including its ``\\n`` (the last line may lack it)."""
        return await self.readuntil(b"\n", max_line_length)

    async def readchunk(self) -> tuple[bytes, bool]:
        """The next piece and whether it ends an HTTP chunk (aiohttp's ``readchunk``)."""
        if not await self._fill("readchunk"):
            return b"", False
        ends = self._chunk_ends
        while ends and ends[0] <= self._read_pos:
            ends.popleft()
        if not ends:
            return self._take(-1), False
        data = self._take(ends[0] - self._read_pos)
        if self._read_pos == ends[0]:
            ends.popleft()
            return data, True
        return data, False

    def read_nowait(self, n: int = -1) -> bytes:
        """What is buffered right now, without waiting.

        Decodes at most about ``2 * limit`` bytes more: compressed bytes
        pending in a bomb are not "buffered" (security.md C4).
        """
        if self._exception is not None:
            raise self._exception
        if self._waiter is not None:
            raise RuntimeError("Called while some coroutine is waiting for incoming data.")
        blocks: list[bytes] = []
        taken = 0
        while n != 0 and (
            self._buffer
            or (self._decoder is not None and taken < self._high_water and self._decode_step())
        ):
            block = self._take(n)
            blocks.append(block)
            taken += len(block)
            if n > 0:
                n -= len(block)
        return b"".join(blocks)

    # -- iteration -----------------------------------------------------------

    async def iter_chunked(self, n: int) -> AsyncIterator[bytes]:
        """Blocks of exactly ``n`` bytes (the last may be shorter)."""
        while True:
            block = await self._read_up_to(n)
            if not block:
                return
            yield block

    async def _read_up_to(self, n: int) -> bytes:
        blocks: list[bytes] = []
        remaining = n
        while remaining > 0 and await self._fill("iter_chunked"):
            block = self._take(remaining)
            blocks.append(block)
            remaining -= len(block)
        return blocks[0] if len(blocks) == 1 else b"".join(blocks)

    async def iter_any(self) -> AsyncIterator[bytes]:
        """Blocks as they arrive."""
        while True:
            block = await self.readany()
            if not block:
                return
            yield block

    async def iter_chunks(self) -> AsyncIterator[tuple[bytes, bool]]:
        """``(data, end_of_http_chunk)`` pairs."""
        while True:
            data, end = await self.readchunk()
            if not data and not end:
                return
            yield data, end

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iter_lines()

    async def _iter_lines(self) -> AsyncIterator[bytes]:
        while True:
            line = await self.readline()
            if not line:
                return
            yield line


class _EmptyStreamReader(StreamReader):
    """The body of a response that has none (HEAD, 204, 304)."""

    def __init__(self) -> None:  # no loop needed
        self._buffer = deque()
        self._raw = deque()
        self._pending = None
        self._flushed = True
        self._decoder = None
        self._eof = True
        self._exception = None
        self._waiter = None
        self._eof_waiter = None
        self._eof_callbacks = []
        self._chunk_ends = deque()
        self._size = 0
        self._paused = False
        self._on_read = None
        self._on_resume = None
        self._on_pause = None
        self.total_bytes = 0
        self.total_raw_bytes = 0
        self._read_pos = 0

    def __repr__(self) -> str:
        return "<EmptyStreamReader>"


EMPTY_PAYLOAD: Final[StreamReader] = _EmptyStreamReader()
