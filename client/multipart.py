"""``MultipartWriter``: a multipart body (RFC 2046 §5.1, RFC 7578) built from payloads.

Wire layout, as aiohttp writes it (no preamble, no epilogue)::

    --BOUNDARY CRLF  part headers CRLF CRLF  part body CRLF   (per part)
    --BOUNDARY-- CRLF

Part headers are checked when a part is appended and again when they are
serialized, so a header changed in between cannot inject a line (REQ-03).
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

from .payload import (
    BodyWriter,
    JsonPayload,
    Payload,
    StringPayload,
    check_header_value,
    check_token,
    get_payload,
)

__all__ = ("MultipartWriter",)

# RFC 2046 §5.1.1: 1-70 of DIGIT ALPHA '()+_,-./:=? and space, not ending in space.
_BOUNDARY_RE = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTENT_CODINGS = frozenset(("deflate", "gzip"))
_TRANSFER_ENCODINGS = frozenset(("base64", "quoted-printable"))
# RFC 7578 §4.7-4.8: form-data parts carry no coding or length headers.
_FORM_DATA_FORBIDDEN = ("Content-Encoding", "Content-Length", "Content-Transfer-Encoding")

_Part = tuple[Payload, str | None, str | None]  # payload, content coding, transfer encoding


def _check_boundary(boundary: str) -> str:
    if not isinstance(boundary, str):
        raise TypeError(f"boundary must be str, got {type(boundary).__name__}")
    if _BOUNDARY_RE.fullmatch(boundary) is None:
        raise ValueError(f"invalid multipart boundary (RFC 2046 §5.1.1): {boundary!r}")
    return boundary


def part_headers(payload: Payload) -> bytes:
    """A part's header block (``Name: value`` CRLF lines and the empty line), checked."""
    lines = []
    for name, value in payload.headers.items():
        check_token(name)
        check_header_value(value, f"{name} header")
        lines.append(f"{name}: {value}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("utf-8")


class MultipartWriter(Payload):
    """A ``multipart/<subtype>`` body; itself a ``Payload``, so writers nest.

    ``boundary`` defaults to a random ``uuid4().hex``; a given one must follow
    RFC 2046 and is quoted in ``Content-Type`` when it is not a token.
    """

    def __init__(self, subtype: str = "mixed", boundary: str | None = None) -> None:
        check_token(subtype, "multipart subtype")
        import uuid  # on first use: keeps uuid out of `import client`

        boundary = uuid.uuid4().hex if boundary is None else _check_boundary(boundary)
        quoted = boundary if _TOKEN_RE.fullmatch(boundary) else f'"{boundary}"'
        super().__init__(None, content_type=f"multipart/{subtype}; boundary={quoted}")
        self._boundary = boundary.encode("ascii")
        self._parts: list[_Part] = []
        self._is_form_data = subtype == "form-data"

    @property
    def boundary(self) -> str:
        """The boundary string (without quotes)."""
        return self._boundary.decode("ascii")

    def __enter__(self) -> MultipartWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        pass

    def __iter__(self) -> Iterator[_Part]:
        """``(payload, content_coding, transfer_encoding)`` per part, as aiohttp."""
        return iter(self._parts)

    def __len__(self) -> int:
        return len(self._parts)

    def __bool__(self) -> bool:
        return True  # an empty multipart body is still a body

    def append(self, obj: Any, headers: Mapping[str, str] | None = None) -> Payload:
        """Add a part from any value ``get_payload`` accepts (or a ``Payload``)."""
        if isinstance(obj, Payload):
            if headers:
                obj.headers.update(headers)
            return self.append_payload(obj)
        return self.append_payload(get_payload(obj, headers=headers, disposition="attachment"))

    def append_payload(self, payload: Payload) -> Payload:
        """Add ``payload`` as the next part; its headers are checked now."""
        coding = transfer = None
        headers = payload.headers
        if self._is_form_data:
            for name in _FORM_DATA_FORBIDDEN:
                if name in headers:
                    raise ValueError(f"{name} is not allowed in a form-data part (RFC 7578)")
            if "Content-Disposition" not in headers:
                payload.set_content_disposition("form-data", name=f"section-{len(self._parts)}")
        else:
            coding = _known(headers.get("Content-Encoding", ""), _CONTENT_CODINGS, "identity")
            transfer = _known(
                headers.get("Content-Transfer-Encoding", ""), _TRANSFER_ENCODINGS, "binary"
            )
            if payload.size is not None and not (coding or transfer):
                headers["Content-Length"] = str(payload.size)
        part_headers(payload)
        self._parts.append((payload, coding, transfer))
        return payload

    def append_json(self, obj: Any, headers: Mapping[str, str] | None = None) -> Payload:
        """Add ``obj`` as an ``application/json`` part."""
        return self.append_payload(JsonPayload(obj, headers=headers))

    def append_form(
        self,
        obj: Sequence[tuple[str, str]] | Mapping[str, str],
        headers: Mapping[str, str] | None = None,
    ) -> Payload:
        """Add an ``application/x-www-form-urlencoded`` part."""
        pairs = list(obj.items()) if isinstance(obj, Mapping) else obj
        body = urlencode(pairs, doseq=True)
        ctype = "application/x-www-form-urlencoded"
        return self.append_payload(StringPayload(body, content_type=ctype, headers=headers))

    @property
    def size(self) -> int | None:
        """Exact body length when every part's size is known (and not re-encoded)."""
        delimiter = len(self._boundary) + 4  # "--" boundary CRLF
        total = delimiter + 2  # closing "--" boundary "--" CRLF
        for part, coding, transfer in self._parts:
            if part.size is None or coding or transfer:
                return None
            total += delimiter + len(part_headers(part)) + part.size + 2
        return total

    @property
    def reusable(self) -> bool:
        """True when every part can be written again."""
        return all(part.reusable for part, _, _ in self._parts)

    @property
    def consumed(self) -> bool:
        """True once closed, or once any part can no longer be written."""
        return self._consumed or any(part.consumed for part, _, _ in self._parts)

    async def write(self, writer: BodyWriter, close_boundary: bool = True) -> None:
        """Write every part, then the closing delimiter (unless ``close_boundary`` is False)."""
        delimiter = b"--" + self._boundary + b"\r\n"
        for part, coding, transfer in self._parts:
            await writer.write(delimiter + part_headers(part))
            if coding or transfer:
                encoder = _PartEncoder(writer, coding, transfer)
                await part.write(encoder)
                await encoder.finish()
            else:
                await part.write(writer)
            await writer.write(b"\r\n")
        if close_boundary:
            await writer.write(b"--" + self._boundary + b"--\r\n")

    async def close(self) -> None:
        """Close every part (files among them)."""
        self._consumed = True
        for part, _, _ in self._parts:
            await part.close()


def _known(value: str, allowed: frozenset[str], identity: str) -> str | None:
    value = value.lower()
    if value in ("", identity):
        return None
    if value not in allowed:
        raise ValueError(f"unsupported part encoding: {value!r}")
    return value


class _PartEncoder:
    """Applies a part's Content-Encoding and then its Content-Transfer-Encoding."""

    def __init__(self, writer: BodyWriter, coding: str | None, transfer: str | None) -> None:
        self._writer = writer
        self._transfer = transfer
        self._pending = bytearray()  # base64 works on 3-byte groups
        self._compressor: Any = None
        if coding is not None:
            # RFC 9110 §8.4.1.2: "deflate" is the zlib format; aiohttp sends raw
            # deflate (wbits -15) here, which is what MIME readers it pairs with expect.
            wbits = 16 + zlib.MAX_WBITS if coding == "gzip" else -zlib.MAX_WBITS
            self._compressor = zlib.compressobj(wbits=wbits)

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._compressor is not None:
            data = self._compressor.compress(data)
        await self._emit(bytes(data))

    async def _emit(self, data: bytes) -> None:
        if self._transfer == "base64":
            self._pending += data
            whole = len(self._pending) - len(self._pending) % 3
            data = base64.b64encode(self._pending[:whole])
            del self._pending[:whole]
        elif self._transfer == "quoted-printable":
            data = binascii.b2a_qp(data)
        if data:
            await self._writer.write(data)

    async def finish(self) -> None:
        if self._compressor is not None:
            await self._emit(self._compressor.flush())
        if self._pending:
            await self._writer.write(base64.b64encode(self._pending))
