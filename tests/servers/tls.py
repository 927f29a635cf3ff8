"""httpbin over TLS: a TLS terminator in front of a second waitress.

Waitress speaks no TLS, so ``httpbin_secure`` is a second waitress (with
``url_scheme="https"``, so httpbin builds https URLs) behind :class:`TLSProxy`,
which terminates TLS on the background loop and relays bytes unchanged. The
client therefore talks to a real threaded HTTP/1.1 server over real TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

import trustme

from .bgloop import BackgroundLoop
from .endpoint import LOOPBACK, Endpoint
from .tls_certs import SERVER_IDENTITIES, server_context
from .wsgi import WaitressThread, httpbin_app

_RELAY_CHUNK = 65536


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    """Copy until EOF or error, then pass the EOF on (or close where TLS can't)."""
    try:
        while data := await src.read(_RELAY_CHUNK):
            dst.write(data)
            await dst.drain()
    except OSError:
        pass  # a peer reset or a TLS error ends the relay; the client sees it too
    finally:
        if dst.can_write_eof():
            dst.write_eof()
        else:
            dst.close()


class TLSProxy:
    """Terminates TLS on 127.0.0.1 and relays each connection to a plaintext port."""

    def __init__(self, backend_port: int, ctx: ssl.SSLContext) -> None:
        self._backend_port = backend_port
        self._ctx = ctx
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        """Listen on 127.0.0.1, port 0 (call on the loop that will serve)."""
        self._server = await asyncio.start_server(
            self._handle, LOOPBACK, 0, ssl=self._ctx, ssl_shutdown_timeout=2.0
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening, drop every relayed connection and wait for the handlers."""
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            await self._relay(reader, writer)
        finally:
            self._tasks.discard(task)
            await self._finish(writer)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            b_reader, b_writer = await asyncio.open_connection(LOOPBACK, self._backend_port)
        except OSError:
            return
        self._writers.add(b_writer)
        try:
            await asyncio.gather(_pipe(reader, b_writer), _pipe(b_reader, writer))
        finally:
            await self._finish(b_writer)

    async def _finish(self, writer: asyncio.StreamWriter) -> None:
        self._writers.discard(writer)
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


class SecureHttpbin:
    """httpbin over TLS: waitress (plaintext, ``url_scheme=https``) behind a TLSProxy."""

    def __init__(self, ca: trustme.CA, bg: BackgroundLoop) -> None:
        self._bg = bg
        self._backend = WaitressThread(httpbin_app(), url_scheme="https")
        leaf = ca.issue_cert(*SERVER_IDENTITIES)
        self._proxy = TLSProxy(self._backend.port, server_context(leaf))
        self.endpoint = Endpoint(LOOPBACK, 0, "https")

    def start(self) -> Endpoint:
        """Start both halves; returns the public https endpoint."""
        self._backend.start()
        self._bg.run(self._proxy.start())
        self.endpoint = Endpoint(LOOPBACK, self._proxy.port, "https")
        return self.endpoint

    def stop(self) -> None:
        """Stop the proxy, then the backend."""
        self._bg.run(self._proxy.close())
        self._backend.stop()
