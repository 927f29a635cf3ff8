"""Request bodies: the ``Payload`` family and ``get_payload``, as aiohttp has them.

A payload knows its ``Content-Type``, its ``size`` (``None``: sent chunked),
whether it can be sent again (``reusable``) and how to ``write`` itself into a
``BodyWriter``. Header safety (REQ-03): header names must be tokens and values
free of control characters but HTAB, checked (``ValueError``) when built.
"""

from __future__ import annotations

import enum
import io
import json
import os
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from typing import Any, Protocol
from urllib.parse import quote

from multidict import CIMultiDict

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
            import mimetypes  # on first use: not part of `import client`

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


# The IO payloads subclass ``Payload``, so ``payload_io`` imports this module;
# importing it back here, after every name it needs is defined, lets this module
# re-export those classes and keep the whole default registry table (whose order
# decides ``isinstance`` matching) in one place. A lazy import would instead hide
# the names from ``from client.payload import IOPayload`` and from mypy.
from .payload_io import CHUNK_SIZE as CHUNK_SIZE  # noqa: E402  (after the base: see above)
from .payload_io import (  # noqa: E402
    AsyncIterablePayload,
    BufferedReaderPayload,
    BytesIOPayload,
    IOBasePayload,
    IOPayload,
    StreamReaderPayload,
    StreamWrapperPayload,
    StringIOPayload,
    TextIOPayload,
    _SupportsIterAny,
    streamer,
)

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
