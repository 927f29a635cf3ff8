"""Websocket peers for tests/test_websocket.py.

* :class:`WSServer` - a real server from the ``websockets`` package on
  127.0.0.1, port 0, in the test's loop; the request path picks a behaviour
  (see :meth:`WSServer._handle`), and every connection's close code and
  reason as the server saw them is recorded.
* Raw helpers for :class:`ScriptedServer` handlers that play a hostile
  server: :func:`switching_protocols` (a 101 for the client's key, or a
  broken one), :func:`frame` (server frames built by hand, so they can be
  wrong on purpose) and :func:`read_frame` (the client's frames, unmasked).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import ssl
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .endpoint import LOOPBACK

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3


# -- a real server ----------------------------------------------------------------------


@dataclass
class WSServer:
    """``websockets`` server; pass ``serve()`` options (compression, subprotocols...)."""

    options: dict[str, object] = field(default_factory=dict)
    ssl_context: ssl.SSLContext | None = None
    closes: list[tuple[int | None, str | None]] = field(default_factory=list)
    port: int = 0
    _server: Server | None = None

    async def start(self) -> WSServer:
        options = {"compression": None, "ping_interval": None, **self.options}
        self._server = await serve(
            self._handle,
            LOOPBACK,
            0,
            ssl=self.ssl_context,
            process_request=_process_request,
            **options,  # type: ignore[arg-type]
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def url(self, path: str = "/echo", scheme: str | None = None) -> str:
        scheme = scheme or ("wss" if self.ssl_context is not None else "ws")
        return f"{scheme}://{LOOPBACK}:{self.port}{path}"

    async def _handle(self, ws: ServerConnection) -> None:
        split = urlsplit(ws.request.path if ws.request else "/")
        query = {k: v[0] for k, v in parse_qs(split.query).items()}
        try:
            await self._route(ws, split.path, query)
        except ConnectionClosed:
            pass
        finally:
            await ws.wait_closed()
            self.closes.append((ws.close_code, ws.close_reason))

    async def _route(self, ws: ServerConnection, path: str, query: dict[str, str]) -> None:
        if path == "/close":  # close with ?code=&reason=
            await ws.close(int(query.get("code", "1000")), query.get("reason", ""))
            return
        if path == "/headers":  # the handshake request's headers, as JSON
            assert ws.request is not None
            headers = dict(ws.request.headers.raw_items())  # names as the client spelled them
            await ws.send(json.dumps({"path": ws.request.path, **headers}))
        elif path == "/ping":  # ping the client; say when its pong arrives
            pong = await ws.ping(b"srv")
            await asyncio.wait_for(pong, 5)
            await ws.send("pong received")
        elif path == "/subprotocol":
            await ws.send(ws.subprotocol or "")
        elif path == "/big":  # ?n= bytes in one message
            await ws.send(b"\xab" * int(query["n"]))
        elif path == "/send-then-close":  # three messages, then CLOSE 4001
            for text in ("one", "two", "three"):
                await ws.send(text)
            await ws.close(4001, "bye")
            return
        async for message in ws:  # then echo
            await ws.send(message)


def _process_request(ws: ServerConnection, request: Request) -> Response | None:
    if request.path.startswith("/missing"):
        return ws.respond(HTTPStatus.NOT_FOUND, "no such socket\n")
    return None


# -- raw frames for scripted (hostile) servers -------------------------------------------


def accept_key(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` value for a client's key."""
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def request_header(request: bytes, name: str) -> str | None:
    """One header of a raw request head (first instance, case-insensitive)."""
    wanted = name.lower().encode()
    for line in request.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == wanted:
            return value.strip().decode("latin-1")
    return None


def switching_protocols(
    request: bytes,
    *,
    status: str = "101 Switching Protocols",
    accept: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    connection: str = "Upgrade",
) -> bytes:
    """A handshake answer to ``request``: correct unless told otherwise."""
    key = request_header(request, "Sec-WebSocket-Key") or ""
    lines = [
        f"HTTP/1.1 {status}",
        "Upgrade: websocket",
        f"Connection: {connection}",
        f"Sec-WebSocket-Accept: {accept if accept is not None else accept_key(key)}",
        *(f"{name}: {value}" for name, value in headers),
    ]
    if not status.startswith("101"):
        lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
    length: int | None = None,
) -> bytes:
    """A server frame; ``rsv`` is the 3 RSV bits (4 = RSV1), ``length`` overrides the size."""
    size = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mask_bit = 0x80 if mask is not None else 0
    if size < 126:
        head += bytes([mask_bit | size])
    elif size < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", size)
    if mask is not None:
        head += mask
        payload = _xor(payload, mask)
    return head + payload


def _xor(data: bytes, mask: bytes) -> bytes:
    n = len(data)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


@dataclass(frozen=True, slots=True)
class ClientFrame:
    """A frame the client sent, unmasked."""

    fin: bool
    rsv: int
    opcode: int
    mask: bytes
    payload: bytes

    @property
    def close_code(self) -> int | None:
        """The code of a CLOSE frame (None if it has none)."""
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None


async def read_frame(reader: asyncio.StreamReader) -> ClientFrame:
    """Read one client frame (clients must mask: a missing mask fails the test)."""
    b0, b1 = await reader.readexactly(2)
    assert b1 & 0x80, "client frame not masked"
    size = b1 & 0x7F
    if size == 126:
        (size,) = struct.unpack("!H", await reader.readexactly(2))
    elif size == 127:
        (size,) = struct.unpack("!Q", await reader.readexactly(8))
    mask = await reader.readexactly(4)
    data = await reader.readexactly(size)
    return ClientFrame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, mask, _xor(data, mask))


async def read_until_close(reader: asyncio.StreamReader) -> list[ClientFrame]:
    """Client frames up to and including its CLOSE (or up to EOF)."""
    frames: list[ClientFrame] = []
    try:
        while True:
            got = await read_frame(reader)
            frames.append(got)
            if got.opcode == 0x8:
                return frames
    except asyncio.IncompleteReadError:
        return frames
