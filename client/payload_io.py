"""File, IO-object and streaming request bodies, split out of ``payload``.

These payloads read their bytes from something at write time (a file on the
default executor, an async iterable, another response's ``content``, a
``@streamer`` function) rather than holding them in memory. ``payload`` builds
on nothing here: it imports these classes at its end to re-export and register
them, so ``from client.payload import IOPayload`` keeps working.
"""

from __future__ import annotations

import asyncio
import codecs
import functools
import io
import os
import stat
import threading
import types
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import IO, Any, Protocol, runtime_checkable

from .exceptions import ClientPayloadError
from .payload import BodyWriter, Payload, StringPayload, _text_params, guess_filename

# fmt: off
__all__ = (
    "CHUNK_SIZE", "AsyncIterablePayload", "BufferedReaderPayload", "BytesIOPayload",
    "IOBasePayload", "IOPayload", "StreamReaderPayload", "StreamWrapperPayload",
    "StringIOPayload", "TextIOPayload", "streamer",
)
# fmt: on


CHUNK_SIZE = 2**18  # 256 KiB per executor read, as aiohttp


class StringIOPayload(StringPayload):
    """An ``io.StringIO``, read whole (from its position) when built."""

    def __init__(self, value: IO[str], **kwargs: Any) -> None:
        super().__init__(value.read(), **kwargs)


class IOBasePayload(Payload):
    """A binary file, read in 256 KiB chunks on the default executor.

    ``size``: bytes left after the position at build time, or ``None`` (pipes,
    ``/proc`` files). Seekable files are reusable: each write rewinds to that
    position. ``close`` closes the file, as aiohttp's session does after a request.
    """

    _value: IO[Any]
    _in_executor = True

    def __init__(self, value: IO[Any], disposition: str | None = "attachment", **kwargs: Any):
        if kwargs.get("filename") is None:
            kwargs["filename"] = guess_filename(value)
        super().__init__(value, **kwargs)
        has_disposition = "Content-Disposition" in self._headers
        if self._filename is not None and disposition is not None and not has_disposition:
            self.set_content_disposition(disposition, filename=self._filename)
        self._start = _tell(value)
        self._size = self._measure()
        # A cancelled write can leave a read running in a worker thread; each
        # write bumps the generation so that stale read becomes a no-op, and
        # the lock keeps it from interleaving with the next write's seek.
        self._lock = threading.Lock()
        self._generation = 0

    def _measure(self) -> int | None:
        if self._start is None:
            return None
        try:
            st = os.fstat(self._value.fileno())
        except (OSError, AttributeError, ValueError):  # no descriptor (BytesIO): seek to the end
            end = self._value.seek(0, io.SEEK_END)
            self._value.seek(self._start)
            return max(end - self._start, 0)
        # Pipes and files that claim size 0 (/proc) are sent chunked, read to EOF.
        return max(st.st_size - self._start, 0) if stat.S_ISREG(st.st_mode) and st.st_size else None

    @property
    def reusable(self) -> bool:
        """True when the file is seekable (it is rewound before each write)."""
        return self._start is not None

    def _read(self, generation: int, size: int, rewind: bool) -> bytes:
        with self._lock:
            if generation != self._generation:
                return b""
            if rewind and self._start is not None:
                self._value.seek(self._start)
            return self._encode(self._value.read(size))

    def _encode(self, chunk: Any) -> bytes:
        return chunk or b""  # raw non-blocking files may return None

    async def write(self, writer: BodyWriter) -> None:
        """Stream the file; raise ``ClientPayloadError`` if it ends before ``size``."""
        self._check_reuse()
        if self._start is None:
            self._consumed = True  # a non-seekable file cannot be read twice
        self._generation += 1
        generation, remaining = self._generation, self._size
        loop = asyncio.get_running_loop()
        rewind = True
        while remaining is None or remaining > 0:
            want = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
            if self._in_executor:
                chunk = await loop.run_in_executor(None, self._read, generation, want, rewind)
            else:
                chunk = self._read(generation, want, rewind)
            if not chunk:
                break
            rewind = False
            if remaining is not None:
                remaining -= len(chunk)
            await writer.write(chunk)
        if remaining:
            raise ClientPayloadError(f"file ended {remaining} bytes short of its size {self._size}")

    def _close_file(self) -> None:
        with self._lock:
            self._generation += 1
            self._value.close()

    async def close(self) -> None:
        """Close the file (off the event loop, after any in-flight read)."""
        self._consumed = True
        if not self._value.closed:
            await asyncio.get_running_loop().run_in_executor(None, self._close_file)


def _tell(value: IO[Any]) -> int | None:
    try:
        return value.tell() if value.seekable() else None
    except (OSError, AttributeError):
        return None


IOPayload = IOBasePayload  # the contract's name for the binary file payload


class BufferedReaderPayload(IOBasePayload):
    """A file opened with ``open(path, 'rb')`` (or ``'r+b'``)."""


class TextIOPayload(IOBasePayload):
    """A text file, encoded as it is read; sent chunked, as its encoded size is unknown.

    (aiohttp sends ``fstat - tell`` as the length: wrong when newlines are translated.)
    """

    _default_content_type = "text/plain; charset=utf-8"

    def __init__(
        self,
        value: IO[str],
        *,
        encoding: str | None = None,
        content_type: str | None = None,
        **kwargs: Any,
    ) -> None:
        encoding, content_type = _text_params(encoding, content_type)
        self._encoder = codecs.getincrementalencoder(encoding)()
        super().__init__(value, content_type=content_type, encoding=encoding, **kwargs)

    def _measure(self) -> int | None:
        return None

    def _read(self, generation: int, size: int, rewind: bool) -> bytes:
        if rewind:
            self._encoder.reset()  # e.g. UTF-16 must emit its BOM again
        return super()._read(generation, size, rewind)

    def _encode(self, chunk: Any) -> bytes:
        return self._encoder.encode(chunk) if chunk else b""


class BytesIOPayload(IOBasePayload):
    """An ``io.BytesIO``: read in the loop (memory needs no executor); left open."""

    _in_executor = False

    async def close(self) -> None:
        """Mark consumed; aiohttp does not close a BytesIO either."""
        self._consumed = True


class AsyncIterablePayload(Payload):
    """An async iterable of bytes (e.g. an async generator): chunked and one-shot."""

    def __init__(self, value: AsyncIterable[bytes], **kwargs: Any) -> None:
        if not isinstance(value, AsyncIterable):
            raise TypeError(f"value must be an AsyncIterable, got {type(value)!r}")
        super().__init__(value, **kwargs)
        self._iter: AsyncIterator[bytes] = value.__aiter__()
        self._finished = False

    @property
    def reusable(self) -> bool:
        """Always False: the iterator cannot be rewound."""
        return False

    async def write(self, writer: BodyWriter) -> None:
        """Forward each non-empty chunk (an empty one would end a chunked body)."""
        self._check_reuse()
        self._consumed = True  # set before the first await: a partial write is final
        while True:
            try:
                chunk = await anext(self._iter)
            except StopAsyncIteration:
                self._finished = True
                return
            except BaseException:
                self._finished = True  # an exception out of the iterator has ended it
                raise
            if not isinstance(chunk, bytes | bytearray | memoryview):
                raise TypeError(f"async iterable body yielded {type(chunk).__name__}, not bytes")
            if chunk:
                await writer.write(chunk)

    async def close(self) -> None:
        """Close an unfinished async generator so its ``finally`` blocks run now."""
        self._consumed = True
        aclose = getattr(self._iter, "aclose", None)
        if not self._finished and aclose is not None:
            self._finished = True
            await aclose()


@runtime_checkable
class _SupportsIterAny(Protocol):
    def iter_any(self) -> AsyncIterator[bytes]: ...


class StreamReaderPayload(AsyncIterablePayload):
    """Another response's ``content`` (anything with ``iter_any()``), forwarded as read."""

    def __init__(self, value: _SupportsIterAny, **kwargs: Any) -> None:
        super().__init__(value.iter_any(), **kwargs)


class StreamWrapperPayload(Payload):
    """Body written by a ``@streamer`` function, called afresh on each write."""

    _value: Callable[[BodyWriter], Awaitable[None]]

    async def write(self, writer: BodyWriter) -> None:
        """Run the streamer function against ``writer``."""
        await self._value(writer)


class streamer:
    """Deprecated aiohttp decorator: ``func(writer, *args)`` writes the body itself.

    ``types.coroutine`` lets old generator functions ``yield from writer.write(...)``.
    """

    def __init__(self, func: Callable[..., Any]) -> None:
        self._func: Callable[..., Awaitable[None]] = types.coroutine(func)

    def __call__(self, *args: Any, **kwargs: Any) -> StreamWrapperPayload:
        return StreamWrapperPayload(functools.partial(self._func, *args, **kwargs))
