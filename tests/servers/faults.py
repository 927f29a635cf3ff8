"""FaultServer: a :class:`ScriptedServer` for the hostile-peer suite (tests/hostile/).

The first connections run *fault* scripts; every connection after them is a
healthy keep-alive peer (:class:`Serve`) that answers each request ``200`` with
body ``ok`` and an ``X-Conn`` header naming its connection.  A test can then
prove that the request after a fault went out on a *fresh* socket and got its
own answer, not bytes left over from the fault::

    server.faults([ReadRequest(), Send(bad_bytes), ExpectClose()])
    ...  # the request fails
    await server.wait_closed_by_client(0)   # the client dropped the bad socket

Extra steps: :class:`Serve`, :class:`StreamForever`, :class:`AwaitBytes` (then
``Close``/``Reset``: the keep-alive race), :class:`ExpectClose`,
:class:`Route` (a keep-alive server answering by request path).  Body
builders make decompression bombs in milliseconds and chunked framing.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache

import brotli

from client import AbstractResolver
from client.resolver import ResolveResult

from .endpoint import LOOPBACK
from .scripted import (
    _PEER_GONE,
    ReadRequest,
    Script,
    ScriptedConnection,
    ScriptedServer,
    Send,
    http_response,
)

__all__ = [
    "OK_BODY",
    "AnyName",
    "AwaitBytes",
    "ExpectClose",
    "FaultServer",
    "Route",
    "SendOK",
    "Serve",
    "StreamForever",
    "br_bomb",
    "chunked",
    "ok_response",
    "reply",
    "request_path",
    "zlib_bomb",
    "zstd_bomb",
]

MiB = 1 << 20
OK_BODY = b"ok"


def ok_response(conn_index: int, *, body: bytes = OK_BODY) -> bytes:
    """The healthy answer: ``200``, ``body``, ``X-Conn: <connection index>``."""
    return http_response(200, body, headers=[("X-Conn", str(conn_index))])


def request_path(raw: bytes) -> str:
    """The request-target of a raw request (``/`` if unparsable)."""
    parts = raw.split(b"\r\n", 1)[0].split(b" ")
    return parts[1].decode("latin-1") if len(parts) == 3 else "/"


def chunked(*pieces: bytes) -> bytes:
    """A correctly framed chunked body (RFC 9112 §7.1) of ``pieces``."""
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p) + b"0\r\n\r\n"


@dataclass(frozen=True, slots=True)
class Serve:
    """A healthy keep-alive peer: answer every request with :func:`ok_response`."""

    async def run(self, conn: ScriptedConnection) -> None:
        while True:
            try:
                await conn.read_request()
            except asyncio.IncompleteReadError:
                return  # the client closed an idle connection
            await conn.send(ok_response(conn.index))


@dataclass(frozen=True, slots=True)
class SendOK:
    """Send :func:`ok_response` for this connection once."""

    async def run(self, conn: ScriptedConnection) -> None:
        await conn.send(ok_response(conn.index))


@dataclass(frozen=True, slots=True)
class Route:
    """Keep-alive: answer each request with ``routes[path](raw request)``.

    An unknown path gets :func:`ok_response`.  A route returning ``b""``
    closes the connection instead of answering.
    """

    routes: Mapping[str, Callable[[bytes], bytes]]

    async def run(self, conn: ScriptedConnection) -> None:
        while True:
            try:
                raw = await conn.read_request()
            except asyncio.IncompleteReadError:
                return
            reply = self.routes.get(request_path(raw).split("?", 1)[0])
            data = reply(raw) if reply is not None else ok_response(conn.index)
            if not data:
                return
            await conn.send(data)


@dataclass(frozen=True, slots=True)
class StreamForever:
    """Send ``piece`` again and again (after ``interval`` s) until the client leaves."""

    piece: bytes
    interval: float = 0.0

    async def run(self, conn: ScriptedConnection) -> None:
        while True:
            await conn.send(self.piece)
            await asyncio.sleep(self.interval)


@dataclass(frozen=True, slots=True)
class AwaitBytes:
    """Wait until the client sends something (e.g. its next request) - read 1 byte."""

    async def run(self, conn: ScriptedConnection) -> None:
        data = await conn.reader.read(1)
        if data:
            _server(conn).after_fault.setdefault(conn.index, bytearray()).extend(data)


@dataclass(frozen=True, slots=True)
class ExpectClose:
    """Wait (at most ``timeout`` s) for the client to close; record that it did.

    Anything the client sends meanwhile is kept in ``after_fault``: a client
    that reused a poisoned connection shows up there.
    """

    timeout: float = 5.0

    async def run(self, conn: ScriptedConnection) -> None:
        server = _server(conn)
        got = server.after_fault.setdefault(conn.index, bytearray())
        try:
            async with asyncio.timeout(self.timeout):
                while data := await conn.reader.read(65536):
                    got.extend(data)
        except TimeoutError:
            return
        except _PEER_GONE:
            pass
        server.closed_by_client.add(conn.index)


def _server(conn: ScriptedConnection) -> FaultServer:
    server = conn._server
    if not isinstance(server, FaultServer):
        raise TypeError("this step needs a FaultServer")
    return server


HEALTHY: Script = (Serve(),)


class FaultServer(ScriptedServer):
    """``faults(script, ...)``: those connections misbehave, later ones are healthy."""

    def __init__(self, *, ssl: ssl.SSLContext | None = None) -> None:
        super().__init__(ssl=ssl)
        #: Connection indexes whose client closed its side (see :class:`ExpectClose`).
        self.closed_by_client: set[int] = set()
        #: Bytes the client sent on a connection after its fault.
        self.after_fault: dict[int, bytearray] = {}
        self.script(HEALTHY)

    def faults(self, *scripts: Script) -> None:
        """Connection *i* runs ``scripts[i]``; every later connection is healthy."""
        self.script(*scripts, HEALTHY)

    def routes(self, routes: Mapping[str, Callable[[bytes], bytes]]) -> None:
        """Every connection runs :class:`Route` over ``routes`` (keep-alive, by path)."""
        self.script([Route(routes)])

    async def close(self) -> None:
        """Drop every connection first, so each step ends on EOF instead of a cancel."""
        self._closing.set()
        for conn in self.connections:
            conn.reset()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1)
        await super().close()

    async def wait_closed_by_client(self, index: int, timeout: float = 3.0) -> None:
        """Return once the client closed connection ``index``; fail after ``timeout``.

        Evidence: an :class:`ExpectClose` step saw EOF, or a write failed
        because the peer was gone (a server still sending when the client left).
        """
        async with asyncio.timeout(timeout):
            while not self._gone(index):
                await asyncio.sleep(0.005)

    def _gone(self, index: int) -> bool:
        if index in self.closed_by_client:
            return True
        return index < len(self.connections) and self.connections[index].error is not None


def reply(data: bytes) -> Script:
    """The fault most tests need: read the request, send ``data``, wait for the close."""
    return (ReadRequest(), Send(data), ExpectClose())


# -- decompression bombs, built in milliseconds ----------------------------------------------


@cache
def zlib_bomb(wbits: int, decoded: int) -> bytes:
    """Zeros at ~1000:1 (gzip: wbits 31, zlib: 15, raw deflate: -15).

    After a full flush, each MiB of zeros compresses to the same byte-aligned
    block, so the block is repeated instead of compressing ``decoded`` bytes.
    """
    zeros = bytes(MiB)
    obj = zlib.compressobj(9, zlib.DEFLATED, wbits)
    first = obj.compress(zeros) + obj.flush(zlib.Z_FULL_FLUSH)
    block = obj.compress(zeros) + obj.flush(zlib.Z_FULL_FLUSH)
    return first + block * (decoded // MiB - 1)  # unterminated: the cap comes first


@cache
def br_bomb(decoded: int) -> bytes:
    """Brotli zeros (~10,000:1)."""
    compressor = brotli.Compressor(quality=1, lgwin=24)
    zeros = bytes(MiB)
    parts = [compressor.process(zeros) for _ in range(decoded // MiB)]
    return b"".join(parts) + bytes(compressor.finish())


@cache
def zstd_bomb(decoded: int, window_log: int = 17) -> bytes:
    """A hand-made zstd frame of RLE blocks (4 bytes → 128 KiB each).

    ``window_log`` is declared in the frame header; 31 declares 2 GiB.
    """
    header = struct.pack("<I", 0xFD2FB528) + bytes([0x00, (window_log - 10) << 3])
    rle_block = ((128 * 1024) << 3 | 1 << 1).to_bytes(3, "little") + b"\0"
    return header + rle_block * (decoded // (128 * 1024))


# -- names ----------------------------------------------------------------------------------


class AnyName(AbstractResolver):
    """Resolves every name ending in ``suffix`` to 127.0.0.1 (a crawl of many hosts).

    Counts lookups instead of keeping them: LIM-07 asks 100,000 of them.
    """

    def __init__(self, suffix: str = ".test") -> None:
        self.suffix = suffix
        self.lookups = 0

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.lookups += 1
        if not host.lower().rstrip(".").endswith(self.suffix):
            raise socket.gaierror(socket.EAI_NONAME, f"{host} is not a test name")
        flags = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
        return [ResolveResult(hostname=host, host=LOOPBACK, port=port,
                              family=socket.AF_INET, proto=0, flags=flags)]  # fmt: skip

    async def close(self) -> None:
        """Nothing to release."""
