"""Request bodies: the ``Payload`` family and ``get_payload``, as aiohttp has them.

A payload knows its ``Content-Type``, its ``size`` (``None``: sent chunked),
whether it can be sent again (``reusable``) and how to ``write`` itself into a
``BodyWriter``. Header safety (REQ-03): header names must be tokens and values
free of control characters but HTAB, checked (``ValueError``) when built.
"""

from __future__ import annotations

import asyncio
import codecs
import enum
import functools
import io
import json
import mimetypes
import os
import re
import stat
import threading
import types
from abc import ABC, abstractmethod
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
)
from typing import IO, Any, Protocol, runtime_checkable
from urllib.parse import quote

from multidict import CIMultiDict

from .exceptions import ClientPayloadError
from .helpers import parse_mimetype

# fmt: off
__all__ = (
    "PAYLOAD_REGISTRY", "AsyncIterablePayload", "BodyWriter", "BufferedReaderPayload",
    "BytesIOPayload", "BytesPayload", "IOBasePayload", "IOPayload", "JsonBytesPayload",
    "JsonPayload", "Payload", "StreamReaderPayload", "StreamWrapperPayload", "StringIOPayload",
    "StringPayload", "TextIOPayload", "content_disposition_header", "get_payload", "payload_type",
    "streamer",
)
# fmt: on

CHUNK_SIZE = 2**18  # 256 KiB per executor read, as aiohttp
_HeadersArg = Mapping[str, str] | Iterable[tuple[str, str]] | None

# RFC 9110 §5.6.2 token; §5.5 field values exclude CTLs (HTAB is allowed).
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CTL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def check_token(value: str, what: str = "header name") -> str:
    """Return ``value`` if it is an RFC 9110 token, else raise ``ValueError``."""
    if not isinstance(value, str) or _TOKEN_RE.fullmatch(value) is None:
        raise ValueError(f"invalid {what}: {value!r}")
    return value


def check_header_value(value: str, what: str = "header value") -> str:
    """Return ``value`` unless it holds CR, LF, NUL or another CTL (HTAB is fine)."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, got {type(value).__name__}")
    if _CTL_RE.search(value) is not None:
        raise ValueError(f"control character in {what}: {value!r}")
    return value


def _quoted(value: str) -> str:
    # RFC 9110 §5.6.4 quoted-string: only DQUOTE and backslash need a quoted-pair.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def content_disposition_header(
    disptype: str, quote_fields: bool = True, _charset: str = "utf-8", **params: str
) -> str:
    """Build a MIME ``Content-Disposition`` value (RFC 2183, RFC 7578 §4.2).

    With ``quote_fields`` (aiohttp's default) ``filename`` is percent-encoded
    inside quotes and other non-ASCII values use RFC 5987 ``key*=charset''...``;
    without it values are sent raw (UTF-8) with ``"`` and ``\\`` escaped.
    Control characters are rejected in every case.
    """
    check_token(disptype, "content disposition type")
    items = [disptype]
    for key, val in params.items():
        check_token(key, "content disposition parameter")
        check_header_value(val, f"content disposition parameter {key!r}")
        if not quote_fields:
            items.append(f"{key}={_quoted(val)}")
        elif key.lower() == "filename":
            items.append(f'{key}="{quote(val, "", encoding=_charset)}"')
        elif val.isascii():
            items.append(f"{key}={_quoted(val)}")
        else:
            items.append(f"{key}*={_charset}''{quote(val, '', encoding=_charset)}")
    return "; ".join(items)


def guess_filename(obj: Any, default: str | None = None) -> str | None:
    """The base name of ``obj.name`` (a file's path), or ``default``."""
    name = getattr(obj, "name", None)
    if isinstance(name, str) and name and not (name[0] == "<" and name[-1] == ">"):
        return os.path.basename(name) or default
    return default


class BodyWriter(Protocol):
    """What payloads write into; the request writer owns framing and compression."""

    async def write(self, data: bytes | bytearray | memoryview) -> None: ...


class Payload(ABC):
    """A request body, or one part of a multipart body."""

    _default_content_type = "application/octet-stream"
    _size: int | None = None

    def __init__(
        self,
        value: Any,
        *,
        headers: _HeadersArg = None,
        content_type: str | None = None,
        filename: str | None = None,
        encoding: str | None = None,
        disposition: str | None = None,
    ) -> None:
        self._value = value
        self._encoding = encoding
        self._filename = filename
        self._consumed = False
        if content_type is None:
            guessed = mimetypes.guess_type(filename)[0] if filename else None
            content_type = guessed or self._default_content_type
        self._headers: CIMultiDict[str] = CIMultiDict()
        self._headers["Content-Type"] = content_type
        if headers:
            self._headers.update(headers)
        for name, val in self._headers.items():
            check_token(name)
            check_header_value(val, f"{name} header")

    @property
    def size(self) -> int | None:
        """Bytes ``write`` will produce, or ``None`` when unknown (chunked)."""
        return self._size

    @property
    def filename(self) -> str | None:
        """File name sent in ``Content-Disposition``, if any."""
        return self._filename

    @property
    def headers(self) -> CIMultiDict[str]:
        """Per-part headers (used inside multipart bodies)."""
        return self._headers

    @property
    def encoding(self) -> str | None:
        """Text encoding used to produce the bytes, if any."""
        return self._encoding

    @property
    def content_type(self) -> str:
        """The ``Content-Type`` header value."""
        return self._headers["Content-Type"]

    @property
    def reusable(self) -> bool:
        """Whether ``write`` can run again (redirect 307/308, retry)."""
        return True

    @property
    def consumed(self) -> bool:
        """True once the payload can no longer be written (one-shot started, or closed)."""
        return self._consumed

    def set_content_disposition(
        self, disptype: str, quote_fields: bool = True, _charset: str = "utf-8", **params: str
    ) -> None:
        """Set ``Content-Disposition`` (see ``content_disposition_header``)."""
        self._headers["Content-Disposition"] = content_disposition_header(
            disptype, quote_fields, _charset, **params
        )

    @abstractmethod
    async def write(self, writer: BodyWriter) -> None:
        """Write the whole body into ``writer``."""

    async def close(self) -> None:  # noqa: B027  (a hook: most payloads hold nothing)
        """Release resources; the default payload holds none."""

    def _check_reuse(self) -> None:
        if self._consumed:
            raise RuntimeError(f"{type(self).__name__} was already consumed and cannot be re-sent")


class BytesPayload(Payload):
    """Bytes-like body; sized and reusable."""

    def __init__(self, value: bytes | bytearray | memoryview, **kwargs: Any) -> None:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError(f"value argument must be byte-ish, not {type(value)!r}")
        if isinstance(value, memoryview) and (value.ndim != 1 or value.format != "B"):
            value = value.cast("B") if value.c_contiguous else memoryview(value.tobytes())
        # aiohttp does not guess a type from the file name for raw bytes
        kwargs["content_type"] = kwargs.get("content_type") or "application/octet-stream"
        super().__init__(value, **kwargs)
        self._size = len(value)

    async def write(self, writer: BodyWriter) -> None:
        """Write the bytes in one call."""
        await writer.write(self._value)


class StringPayload(BytesPayload):
    """Text encoded with ``encoding``, else the charset of ``content_type``, else UTF-8."""

    def __init__(
        self,
        value: str,
        *,
        encoding: str | None = None,
        content_type: str | None = None,
        **kwargs: Any,
    ) -> None:
        encoding, content_type = _text_params(encoding, content_type)
        super().__init__(
            value.encode(encoding), encoding=encoding, content_type=content_type, **kwargs
        )


def _text_params(encoding: str | None, content_type: str | None) -> tuple[str, str]:
    """(encoding, content type): an explicit encoding wins, else the type's charset."""
    if encoding is None:
        content_type = content_type or "text/plain; charset=utf-8"
        return parse_mimetype(content_type).parameters.get("charset") or "utf-8", content_type
    return encoding, content_type or f"text/plain; charset={encoding}"


class StringIOPayload(StringPayload):
    """An ``io.StringIO``, read whole (from its position) when built."""

    def __init__(self, value: IO[str], **kwargs: Any) -> None:
        super().__init__(value.read(), **kwargs)


class JsonPayload(BytesPayload):
    """``dumps(value)`` encoded as ``encoding``, ``application/json``."""

    def __init__(
        self,
        value: Any,
        encoding: str = "utf-8",
        content_type: str = "application/json",
        dumps: Callable[[Any], str] = json.dumps,
        **kwargs: Any,
    ) -> None:
        body = dumps(value).encode(encoding)
        super().__init__(body, content_type=content_type, encoding=encoding, **kwargs)


class JsonBytesPayload(BytesPayload):
    """For JSON encoders that return bytes (e.g. orjson)."""

    def __init__(
        self,
        value: Any,
        dumps: Callable[[Any], bytes],
        content_type: str = "application/json",
        **kwargs: Any,
    ) -> None:
        super().__init__(dumps(value), content_type=content_type, **kwargs)


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


class Order(enum.StrEnum):
    """Where a registered payload factory is tried."""

    normal = "normal"
    try_first = "try_first"
    try_last = "try_last"


_Factory = Callable[..., Payload]


class PayloadRegistry:
    """Maps value types to payload factories: exact type first, then ``isinstance``."""

    def __init__(self) -> None:
        self._entries: dict[Order, list[tuple[_Factory, Any]]] = {o: [] for o in Order}
        self._exact: dict[type, _Factory] = {}

    def register(self, factory: _Factory, type_: Any, *, order: Order = Order.normal) -> None:
        """Register ``factory`` for ``type_`` (a type or a tuple of types)."""
        self._entries[order].append((factory, type_))
        if order is Order.normal:
            self._exact.update(
                dict.fromkeys(type_ if isinstance(type_, tuple) else (type_,), factory)
            )

    def get(self, data: Any, **kwargs: Any) -> Payload:
        """Build the payload for ``data``; ``TypeError`` when no factory accepts it."""
        first = self._entries[Order.try_first]
        factory = (_match(data, first) if first else None) or self._exact.get(type(data))
        if factory is None and isinstance(data, Payload):
            return data
        entries = self._entries
        factory = factory or _match(data, entries[Order.normal] + entries[Order.try_last])
        if factory is not None:
            return factory(data, **kwargs)
        raise TypeError(
            f"unsupported body type {type(data).__name__}: use bytes, str, a file object, "
            "an async iterable of bytes, FormData or a Payload (sync generators are not accepted)"
        )


def _match(data: Any, entries: list[tuple[_Factory, Any]]) -> _Factory | None:
    return next((factory for factory, type_ in entries if isinstance(data, type_)), None)


PAYLOAD_REGISTRY = PayloadRegistry()


def payload_type(type_: Any, *, order: Order = Order.normal) -> Callable[[type[Payload]], Any]:
    """Class decorator registering a ``Payload`` subclass for ``type_``."""

    def register(factory: type[Payload]) -> type[Payload]:
        PAYLOAD_REGISTRY.register(factory, type_, order=order)
        return factory

    return register


def get_payload(
    data: Any,
    *,
    content_type: str | None = None,
    filename: str | None = None,
    headers: _HeadersArg = None,
    encoding: str | None = None,
    disposition: str | None = None,
) -> Payload:
    """The ``Payload`` for ``data``; a ``Payload`` is returned unchanged.

    ``disposition``: the ``Content-Disposition`` type a named file payload gets.
    ``None`` (the default, right for a request body, as aiohttp's session asks)
    adds none; ``MultipartWriter.append`` passes ``"attachment"`` as aiohttp does.
    """
    kwargs = {"content_type": content_type, "filename": filename, "encoding": encoding}
    return PAYLOAD_REGISTRY.get(data, headers=headers, disposition=disposition, **kwargs)


for _factory, _type in (
    (BytesPayload, (bytes, bytearray, memoryview)),
    (StringPayload, str),
    (StringIOPayload, io.StringIO),
    (TextIOPayload, io.TextIOBase),
    (BytesIOPayload, io.BytesIO),
    (BufferedReaderPayload, (io.BufferedReader, io.BufferedRandom)),
    (IOBasePayload, io.IOBase),
):
    PAYLOAD_REGISTRY.register(_factory, _type)
# Last, so that our StreamReader (which is also an AsyncIterable of lines) is
# forwarded as raw bytes, and more specific registrations win.
PAYLOAD_REGISTRY.register(StreamReaderPayload, _SupportsIterAny, order=Order.try_last)
PAYLOAD_REGISTRY.register(AsyncIterablePayload, AsyncIterable, order=Order.try_last)
