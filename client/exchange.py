"""One hop: check a connection out, write the request, read the response head.

Cancellation invariant: whatever interrupts the exchange (timeout, cancel,
error) closes the connection before the exception propagates; a connection
whose exchange did not finish cleanly never returns to the pool.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .connector import BaseConnector
from .exceptions import (
    ClientConnectionError,
    ClientConnectionResetError,
    ClientOSError,
    ClientResponseError,
    HttpProcessingError,
    ServerDisconnectedError,
)
from .http1_events import _Record
from .request import ClientRequest
from .response import ClientResponse

if TYPE_CHECKING:
    from collections.abc import Callable

    from .connection import Connection
    from .http1_events import ResponseHead
    from .protocol import HeadResult
    from .streams import StreamReader
    from .timeouts import ClientTimeout

# RFC 9110 §9.2.2 idempotent methods: safe to send again after a stale socket.
IDEMPOTENT_METHODS = frozenset(("GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"))
_STALE_ERRORS = (ServerDisconnectedError, ClientOSError, ClientConnectionResetError)


class ReadSettings(_Record):
    """How to read a response: buffer size, decompression, parser limits."""

    _fields = ("read_bufsize", "auto_decompress", "limits", "upgrade")
    __slots__ = ("auto_decompress", "limits", "read_bufsize", "upgrade")

    def __init__(
        self,
        read_bufsize: int,
        auto_decompress: bool,
        limits: tuple[int, int, int],
        upgrade: bool = False,  # the request asks to switch protocols (ws_connect)
    ) -> None:
        self.read_bufsize = read_bufsize
        self.auto_decompress = auto_decompress
        self.limits = limits
        self.upgrade = upgrade

    def override(
        self,
        read_bufsize: int | None,
        auto_decompress: bool | None,
        max_line_size: int | None,
        max_field_size: int | None,
        max_headers: int | None,
    ) -> ReadSettings:
        """A request's overrides over these (the session's); no copy when there are none."""
        if (
            read_bufsize is None
            and auto_decompress is None
            and not (max_line_size or max_field_size or max_headers)
        ):
            return self
        return ReadSettings(
            self.read_bufsize if read_bufsize is None else read_bufsize,
            self.auto_decompress if auto_decompress is None else auto_decompress,
            (
                max_line_size or self.limits[0],
                max_field_size or self.limits[1],
                max_headers or self.limits[2],
            ),
        )


async def send(
    connector: BaseConnector,
    req: ClientRequest,
    timeout: ClientTimeout,
    settings: ReadSettings,
    deadline: float | None,
    make_response: Callable[[ClientRequest], ClientResponse],
) -> ClientResponse:
    """Send ``req`` and return its response (head read, body pending).

    A pooled keep-alive connection that turns out to be closed before any
    response byte arrives is retried once on another connection, for
    idempotent methods with a replayable body (aiohttp >= 3.10 does the same).
    """
    retried = False
    # An untraced request on the stock checkout may take a pooled socket without a coroutine.
    direct = not req.traces and type(connector).connect is BaseConnector.connect
    while True:
        key = req.connection_key()
        conn = connector.take_pooled(key) if direct else None
        if conn is None:
            conn = await connector.connect(key, timeout, req.traces)
        # The exchange itself is inline (not a second coroutine per request).
        try:
            protocol = conn.protocol
            head_future = protocol.start_exchange(
                req.method,
                read_bufsize=settings.read_bufsize,
                auto_decompress=settings.auto_decompress,
                limits=settings.limits,
                expect_continue=req.expect100,
                expect_upgrade=settings.upgrade,
            )
            try:
                if req.body is None and not req.traces and type(req) is ClientRequest:
                    # No body, no callbacks: nothing to await (_write's steps, inline).
                    absolute = req.proxy is not None and not req.tunneled
                    try:
                        protocol.write(req.encode_head(absolute_form=absolute))
                    except (ClientConnectionError, OSError):
                        if not _answered(conn, head_future):
                            raise
                else:
                    await _write(req, conn, head_future)
                protocol.start_read_timeout(timeout.sock_read)
                head, stream = await head_future
            except HttpProcessingError as exc:
                conn.close()
                raise ClientResponseError(
                    req.request_info, (), status=exc.code, message=exc.message or str(exc)
                ) from exc
            except BaseException:
                conn.close()
                _settle(head_future)
                raise
            return _respond(conn, req, head, stream, settings, deadline, make_response)
        except _STALE_ERRORS:
            if retried or not _may_retry(conn, req):
                raise
            retried = True


def _may_retry(conn: Connection, req: ClientRequest) -> bool:
    if not conn.reused or conn.protocol.started or req.method not in IDEMPOTENT_METHODS:
        return False
    return req.body is None or req.body.reusable


def _settle(head_future: asyncio.Future[HeadResult]) -> None:
    """The exchange failed: the head future must not be left pending or unretrieved."""
    if head_future.done() and not head_future.cancelled():
        head_future.exception()  # retrieved: we are raising something else
    else:
        head_future.cancel()


def _respond(
    conn: Connection,
    req: ClientRequest,
    head: ResponseHead,
    stream: StreamReader,
    settings: ReadSettings,
    deadline: float | None,
    make_response: Callable[[ClientRequest], ClientResponse],
) -> ClientResponse:
    response = make_response(req)
    response._start(head, stream, conn)
    if head.upgrade and settings.upgrade:
        response._connection = conn  # a 101: the caller takes this socket over
    elif response.connection is not None:
        conn.protocol.set_deadline(deadline)
    return response


async def _write(
    req: ClientRequest, conn: Connection, head_future: asyncio.Future[HeadResult]
) -> None:
    """Write the request; an early final answer (then a reset) still counts."""
    try:
        await req.write(conn.protocol, absolute_form=req.proxy is not None and not req.tunneled)
    except (ClientConnectionError, OSError):
        if not _answered(conn, head_future):
            raise


def _answered(conn: Connection, head_future: asyncio.Future[HeadResult]) -> bool:
    if head_future.done() and not head_future.cancelled() and not head_future.exception():
        # e.g. 413 and close while we were still uploading: that answer is the result.
        conn.protocol.mark_unreusable()
        return True
    return False
