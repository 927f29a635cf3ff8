"""ScriptedServer: a raw-socket asyncio server for misbehaving peers.

It runs in the test's own event loop. Each accepted connection runs either a
handler ``async def handler(conn: ScriptedConnection) -> None`` or a *script*, a
sequence of steps::

    server.script(
        [ReadRequest(), Send(http_response(200, b"hi")), Reset()],   # connection 1
        [ReadRequest(), SendSlowly(b"HTTP/1.1 200 OK\\r\\n", 1, 0.01), Hang()],  # 2, 3...
    )

Connection *i* runs script *i*; connections past the last script run the last.
With neither a handler nor a script, each connection reads one request and
answers ``200 ok``. When a handler or script returns without closing, the
connection is closed gracefully (FIN).

A peer that goes away (reset, EOF mid-request) ends that connection's handler
quietly; the error is kept in ``ScriptedConnection.error``. Any other exception in
a handler is re-raised by :meth:`ScriptedServer.close`, failing the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Protocol

from multidict import CIMultiDict

from .endpoint import LOOPBACK, make_url

# Request heads up to 1 MiB: hostile-input tests send big heads on purpose.
_READ_LIMIT = 1 << 20
# What a vanished peer looks like while reading or writing.
_PEER_GONE = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError)


def http_response(
    status: int = 200,
    body: bytes = b"",
    *,
    headers: Iterable[tuple[str, str]] = (),
    reason: str | None = None,
    content_length: bool = True,
) -> bytes:
    """Raw HTTP/1.1 response bytes; adds ``Content-Length`` unless told not to."""
    if reason is None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    if content_length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _body_framing(head: bytes) -> tuple[bool, int]:
    """(chunked, content_length) from a request head; trivial on purpose."""
    chunked, length = False, 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"transfer-encoding":
            chunked = value.strip().lower().endswith(b"chunked")
        elif name == b"content-length":
            length = int(value.strip())
    return chunked, length


class ScriptedConnection:
    """One accepted connection and the verbs scripts are made of."""

    def __init__(
        self,
        index: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        server: ScriptedServer,
    ) -> None:
        self.index = index
        self.reader = reader
        self.writer = writer
        self.requests: list[bytes] = []  # raw request bytes (head + body as on the wire)
        self.error: BaseException | None = None  # how the peer went away, if it did
        self.closed = False
        self._server = server

    async def read_request(self) -> bytes:
        """Read one request: head up to CRLFCRLF plus a Content-Length/chunked body."""
        head = await self.reader.readuntil(b"\r\n\r\n")
        parts = [head]
        chunked, length = _body_framing(head)
        if chunked:
            await self._read_chunked(parts)
        elif length:
            parts.append(await self.reader.readexactly(length))
        raw = b"".join(parts)
        self.requests.append(raw)
        self._server.requests.append(raw)
        return raw

    async def _read_chunked(self, parts: list[bytes]) -> None:
        while True:
            line = await self.reader.readuntil(b"\r\n")
            parts.append(line)
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                break
            parts.append(await self.reader.readexactly(size + 2))
        while True:  # trailer fields, then the empty line
            line = await self.reader.readuntil(b"\r\n")
            parts.append(line)
            if line == b"\r\n":
                return

    async def read_until_eof(self) -> bytes:
        """Everything the peer sends until it closes its side."""
        return await self.reader.read()

    async def send(self, data: bytes) -> None:
        """Write *data* and wait until it is handed to the kernel."""
        self.writer.write(data)
        await self.writer.drain()

    async def send_slowly(self, data: bytes, chunk: int = 1, interval: float = 0.01) -> None:
        """Write *data* *chunk* bytes at a time, sleeping *interval* s between writes."""
        for start in range(0, len(data), chunk):
            if start:
                await asyncio.sleep(interval)
            await self.send(data[start : start + chunk])

    async def sleep(self, seconds: float) -> None:
        """Do nothing for *seconds*."""
        await asyncio.sleep(seconds)

    async def half_close(self) -> None:
        """Send FIN but keep reading (``shutdown(SHUT_WR)``)."""
        await self.writer.drain()
        self.writer.write_eof()

    async def close(self) -> None:
        """Flush, then close gracefully (FIN)."""
        if self.closed:
            return
        self.closed = True
        self.writer.close()
        with contextlib.suppress(*_PEER_GONE):
            await self.writer.wait_closed()

    def reset(self) -> None:
        """Close with RST: SO_LINGER 0 and drop anything unsent."""
        if self.closed:
            return
        self.closed = True
        sock = self.writer.get_extra_info("socket")
        # The peer may have closed it already (fd -1): then there is nothing to reset.
        if sock is not None and sock.fileno() != -1:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    async def hang(self) -> None:
        """Keep the connection open, silent, until the server is closed."""
        await self._server._closing.wait()


class Step(Protocol):
    """One step of a script."""

    async def run(self, conn: ScriptedConnection) -> None: ...


Script = Sequence[Step]
Handler = Callable[[ScriptedConnection], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """Read (and record) one request."""

    async def run(self, conn: ScriptedConnection) -> None:
        await conn.read_request()


@dataclass(frozen=True, slots=True)
class Send:
    """Send bytes."""

    data: bytes

    async def run(self, conn: ScriptedConnection) -> None:
        await conn.send(self.data)


@dataclass(frozen=True, slots=True)
class SendSlowly:
    """Send *chunk* bytes every *interval* seconds."""

    data: bytes
    chunk: int = 1
    interval: float = 0.01

    async def run(self, conn: ScriptedConnection) -> None:
        await conn.send_slowly(self.data, self.chunk, self.interval)


@dataclass(frozen=True, slots=True)
class Sleep:
    """Pause."""

    seconds: float

    async def run(self, conn: ScriptedConnection) -> None:
        await conn.sleep(self.seconds)


@dataclass(frozen=True, slots=True)
class HalfClose:
    """Send FIN, keep the read side open."""

    async def run(self, conn: ScriptedConnection) -> None:
        await conn.half_close()


@dataclass(frozen=True, slots=True)
class Close:
    """Close gracefully (FIN)."""

    async def run(self, conn: ScriptedConnection) -> None:
        await conn.close()


@dataclass(frozen=True, slots=True)
class Reset:
    """Close abortively (RST)."""

    async def run(self, conn: ScriptedConnection) -> None:
        conn.reset()


@dataclass(frozen=True, slots=True)
class Hang:
    """Stay open and silent until the test ends."""

    async def run(self, conn: ScriptedConnection) -> None:
        await conn.hang()


DEFAULT_SCRIPT: Script = (ReadRequest(), Send(http_response(200, b"ok")))


class ScriptedServer:
    """Raw TCP server on 127.0.0.1 in the current loop; see the module docstring."""

    def __init__(self, *, ssl: ssl.SSLContext | None = None) -> None:
        self.host = LOOPBACK
        self.port = 0
        self.accepted = 0  # connections accepted so far
        self.open_connections = 0
        self.max_concurrent = 0
        self.requests: list[bytes] = []  # every complete raw request, in arrival order
        self.connections: list[ScriptedConnection] = []
        self._ssl = ssl
        self._handler: Handler | None = None
        self._scripts: list[Script] = [DEFAULT_SCRIPT]
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._bugs: list[BaseException] = []
        self._closing = asyncio.Event()

    @property
    def scheme(self) -> str:
        return "https" if self._ssl is not None else "http"

    @property
    def base(self) -> str:
        """``scheme://127.0.0.1:port``."""
        return f"{self.scheme}://{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        """The absolute URL of *path* on this server."""
        return make_url(self.scheme, self.host, self.port, path)

    def serve(self, handler: Handler) -> None:
        """Run *handler* for every new connection."""
        self._handler = handler

    def script(self, *scripts: Script) -> None:
        """Connection *i* runs ``scripts[i]`` (the last one repeats)."""
        if not scripts:
            raise ValueError("script() needs at least one script")
        self._handler = None
        self._scripts = list(scripts)

    async def start(self) -> None:
        """Listen on 127.0.0.1, port 0."""
        self._server = await asyncio.start_server(
            self._on_connect, LOOPBACK, 0, ssl=self._ssl, limit=_READ_LIMIT
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening, end every connection, re-raise a handler's bug if any."""
        if self._server is None:
            return
        self._closing.set()  # Hang() returns
        self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None
        if self._bugs:
            raise self._bugs[0]

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = ScriptedConnection(self.accepted, reader, writer, self)
        self.connections.append(conn)
        self.accepted += 1
        self.open_connections += 1
        self.max_concurrent = max(self.max_concurrent, self.open_connections)
        try:
            await self._run(conn)
        finally:
            self.open_connections -= 1
            self._tasks.discard(task)
            if self._closing.is_set():
                conn.reset()  # teardown: don't wait on a peer
            await conn.close()

    async def _run(self, conn: ScriptedConnection) -> None:
        try:
            if self._handler is not None:
                await self._handler(conn)
            else:
                for step in self._scripts[min(conn.index, len(self._scripts) - 1)]:
                    await step.run(conn)
        except _PEER_GONE as exc:
            conn.error = exc
        except Exception as exc:  # a bug in the test's handler: surface it at close()
            conn.error = exc
            self._bugs.append(exc)


def parse_wire(raw: bytes) -> tuple[str, CIMultiDict[str], bytes]:
    """(request line, headers, body) of one raw request as the server saw it."""
    head, _, body = raw.partition(b"\r\n\r\n")
    line, *fields = head.decode("latin-1").split("\r\n")
    headers: CIMultiDict[str] = CIMultiDict()
    for field in fields:
        name, _, value = field.partition(":")
        headers.add(name, value.strip())
    return line, headers, body
