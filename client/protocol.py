"""``ResponseProtocol``: one socket's asyncio protocol.

``data_received`` feeds the HTTP/1.1 codec and routes its events: the head
resolves the exchange's future, body bytes go to the response's
``StreamReader``, the end of the message hands the connection back through
``on_complete``. It knows nothing of pools, redirects or sessions.

Timers are lazy: ``sock_read`` keeps one timer per exchange and only notes
the time of each read (no cancel/re-arm per chunk); when the timer fires it
re-arms itself if data arrived meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from .decoders import make_decoder
from .exceptions import (
    ClientConnectionError,
    ClientConnectionResetError,
    ClientOSError,
    ClientPayloadError,
    ContentEncodingError,
    HttpProcessingError,
    ServerDisconnectedError,
    SocketTimeoutError,
    TotalTimeoutError,
)
from .http1 import CHUNK_END, END, InformationalHead, ResponseCodec, ResponseHead
from .streams import EMPTY_PAYLOAD, StreamReader

HeadResult = tuple[ResponseHead, StreamReader]

_NO_BODY_STATUS = frozenset((204, 304))


class ResponseProtocol(asyncio.Protocol):
    """Drives one HTTP/1.1 connection: writes go out, events come in."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        # The event loop this connection's transport belongs to (a plain attribute:
        # the pool reads it once per checkout and once per release).
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[None] = loop.create_future()
        self._codec: ResponseCodec | None = None
        self._limits: tuple[int, int, int] | None = None
        self._head_waiter: asyncio.Future[HeadResult] | None = None
        self._continue_waiter: asyncio.Future[None] | None = None
        self._stream: StreamReader | None = None
        self._in_exchange = False
        self._read_paused = False
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._lost = False
        self._exc: BaseException | None = None
        self._method = "GET"
        self._read_bufsize = 2**16
        self._auto_decompress = True
        # sock_read: last read time, the limit, and the one armed timer.
        self._last_read = 0.0
        self._sock_read: float | None = None
        self._read_timer: asyncio.TimerHandle | None = None
        self._deadline_timer: asyncio.TimerHandle | None = None
        self.on_complete: Callable[[bool], None] | None = None
        self.on_lost: Callable[[], None] | None = None
        self.upgraded = False
        self._expect_upgrade = False
        self._got_final = False
        self._unreusable = False

    def __repr__(self) -> str:
        state = "closed" if self._lost else ("busy" if self._in_exchange else "idle")
        return f"<ResponseProtocol {state} paused={self._read_paused}>"

    # -- asyncio.Protocol ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # No isinstance check: uvloop's transports do not subclass asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter = self._drain_waiter
        if waiter is not None:
            self._drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def data_received(self, data: bytes) -> None:
        codec = self._codec
        if not self._in_exchange or codec is None:
            if self.upgraded and self._expect_upgrade and codec is not None:
                codec.feed(data)  # the new protocol's bytes: kept for take_trailing()
                return
            # Bytes on an idle connection: never parsed as the next response
            # (security.md PARSE-12); the connection is poisoned.
            self._poison()
            return
        if self._sock_read:  # only the sock_read timer reads it: no clock call otherwise
            self._last_read = self._loop.time()
        try:
            events = codec.feed(data)
        except HttpProcessingError as exc:
            self._fail(exc)
            return
        for event in events:
            kind = type(event)
            if kind is bytes:
                stream = self._stream
                if stream is not None:
                    stream.feed_data(event)  # type: ignore[arg-type]
            elif event is END:
                self._finish()
            elif kind is ResponseHead:
                self._on_head(event)  # type: ignore[arg-type]
            elif event is CHUNK_END:
                if self._stream is not None:
                    self._stream.end_http_chunk_receiving()
            elif kind is InformationalHead:
                self._on_informational(event)  # type: ignore[arg-type]

    def eof_received(self) -> bool:
        return False  # let the transport close; connection_lost does the rest

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._cancel_timers()
        if self._in_exchange:
            self._on_peer_closed(exc)
        waiter = self._drain_waiter
        if waiter is not None:
            self._drain_waiter = None
            if not waiter.done():
                waiter.set_exception(_connection_error(exc))
        if not self.closed.done():
            self.closed.set_result(None)
        on_lost = self.on_lost
        if on_lost is not None:
            on_lost()

    # -- exchange lifecycle ----------------------------------------------------

    @property
    def is_connected(self) -> bool:
        transport = self.transport
        return not self._lost and transport is not None and not transport.is_closing()

    @property
    def reusable(self) -> bool:
        codec = self._codec
        transport = self.transport
        return (
            not self._lost  # self.is_connected, inline: once per checkout
            and transport is not None
            and not transport.is_closing()
            and not self._in_exchange
            and self._exc is None
            and not self._unreusable
            and (codec is None or codec.reusable)
        )

    def start_exchange(
        self,
        method: str,
        *,
        read_bufsize: int,
        auto_decompress: bool,
        limits: tuple[int, int, int],
        expect_continue: bool = False,
        expect_upgrade: bool = False,
    ) -> asyncio.Future[HeadResult]:
        """Arm the codec for a response to ``method``; the future yields (head, body)."""
        if self._in_exchange:
            raise RuntimeError("connection is already busy with a request")
        if self._lost:
            raise ServerDisconnectedError()
        if self._codec is None or self._limits != limits:
            self._codec = ResponseCodec(
                max_line_size=limits[0], max_field_size=limits[1], max_headers=limits[2]
            )
            self._limits = limits
        self._codec.start(method, expect_upgrade=expect_upgrade)
        self._expect_upgrade = expect_upgrade
        self._method = method
        self._read_bufsize = read_bufsize
        self._auto_decompress = auto_decompress
        self._in_exchange = True
        self._got_final = False
        self._stream = None
        self._head_waiter = waiter = self._loop.create_future()
        self._continue_waiter = self._loop.create_future() if expect_continue else None
        return waiter

    @property
    def started(self) -> bool:
        """Any byte of the current response has arrived."""
        codec = self._codec
        return codec is not None and codec.started

    @property
    def started_final(self) -> bool:
        """The final (non-1xx) response head has arrived."""
        return self._got_final

    def mark_unreusable(self) -> None:
        """Close after this exchange (e.g. a request body was left unsent)."""
        self._unreusable = True
        if not self._in_exchange:
            # The response already ended and the socket went back to the pool idle;
            # the peer may still expect the unsent body: close it now (PARSE-11).
            self.close()

    def continue_waiter(self) -> asyncio.Future[None] | None:
        return self._continue_waiter

    def start_read_timeout(self, sock_read: float | None) -> None:
        """Begin enforcing ``sock_read`` (called once the request is sent)."""
        self._sock_read = sock_read
        if sock_read and self._in_exchange and self._read_timer is None:
            self._last_read = now = self._loop.time()
            self._read_timer = self._loop.call_at(now + sock_read, self._on_read_timer)

    def set_deadline(self, when: float | None) -> None:
        """Fail the exchange with ``TotalTimeoutError`` at loop time ``when``."""
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
        if when is not None and self._in_exchange:
            self._deadline_timer = self._loop.call_at(when, self._on_deadline)

    def abandon(self) -> None:
        """The caller gave up on the exchange (cancelled, body not wanted): close."""
        if self._in_exchange:
            self._exc = self._exc or ServerDisconnectedError("request abandoned")
            stream = self._stream
            if stream is not None and stream is not EMPTY_PAYLOAD and not stream.is_eof():
                # A reader still waiting (or reading later) must not hang on a
                # closed socket: aiohttp raises the same error here.
                stream.set_exception(ClientConnectionError("Connection closed"))
        self._in_exchange = False
        self._detach_stream()
        self._cancel_timers()
        self.close()

    def close(self) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.close()

    def abort(self) -> None:
        transport = self.transport
        if transport is not None:
            transport.abort()

    def take_trailing(self) -> bytes:
        codec = self._codec
        return codec.take_trailing() if codec is not None else b""

    # -- writing ---------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._lost or self.transport is None:
            raise _connection_error(None)
        self.transport.write(data)

    async def drain(self) -> None:
        if self._lost:
            raise _connection_error(None)
        if not self._write_paused:
            return
        waiter = self._drain_waiter = self._loop.create_future()
        await waiter

    # -- event handlers ----------------------------------------------------------

    def _on_head(self, head: ResponseHead) -> None:
        stream: StreamReader
        if self._method == "HEAD" or head.status in _NO_BODY_STATUS or head.upgrade:
            stream = EMPTY_PAYLOAD
        else:
            decoder = None
            error: ContentEncodingError | None = None
            if self._auto_decompress:
                encodings = head.headers.getall("Content-Encoding", ())
                if encodings:
                    try:
                        decoder = make_decoder(", ".join(encodings))
                    except ContentEncodingError as exc:
                        error = exc
            stream = StreamReader(
                limit=self._read_bufsize,
                loop=self._loop,
                decoder=decoder,
                on_pause=self._pause_reading,
                on_resume=self._resume_reading,
            )
            if error is not None:
                payload_error = ClientPayloadError(f"Can not decode content-encoding: {error}")
                payload_error.__cause__ = error
                stream.set_exception(payload_error)
        self._stream = stream
        self._got_final = True
        if head.upgrade:
            self.upgraded = True
        waiter = self._head_waiter
        self._head_waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result((head, stream))
        cont = self._continue_waiter
        if cont is not None and not cont.done():
            cont.set_result(None)  # a final answer: the body writer checks which one

    def _on_informational(self, head: InformationalHead) -> None:
        cont = self._continue_waiter
        if head.status == 100 and cont is not None and not cont.done():
            cont.set_result(None)

    def _finish(self) -> None:
        stream = self._stream
        self._in_exchange = False
        if self._read_timer is not None or self._deadline_timer is not None:
            self._cancel_timers()
        if stream is not None or self._read_paused:
            self._detach_stream()
        if stream is not None:
            stream.feed_eof()
        upgraded = self.upgraded
        if upgraded and self._expect_upgrade:
            # The requester takes the socket over (ws_connect: transport.set_protocol);
            # the connection stays checked out until that new owner closes it.
            return
        # self.reusable (with the exchange just ended), inline: once per response.
        transport = self.transport
        codec = self._codec
        reusable = (
            not upgraded
            and not self._lost
            and transport is not None
            and not transport.is_closing()
            and self._exc is None
            and not self._unreusable
            and (codec is None or codec.reusable)
        )
        on_complete = self.on_complete
        if on_complete is not None:
            on_complete(reusable)

    def _detach_stream(self) -> None:
        """Cut the finished body's flow-control hooks off this transport."""
        stream = self._stream
        self._stream = None
        if stream is not None and stream is not EMPTY_PAYLOAD:
            stream._on_pause = None
            stream._on_resume = None
        if self._read_paused:
            self._resume_reading()

    def _fail(self, exc: BaseException) -> None:
        """A protocol error or timeout: fail what waits, close, never reuse."""
        self._exc = exc
        waiter = self._head_waiter
        self._head_waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        stream = self._stream
        if stream is not None and stream is not EMPTY_PAYLOAD:
            stream.set_exception(_payload_error(exc))
        cont = self._continue_waiter
        if cont is not None and not cont.done():
            cont.set_exception(exc)
            cont.exception()  # retrieved: the writer may already be past waiting
        in_exchange, self._in_exchange = self._in_exchange, False
        self._detach_stream()
        self._cancel_timers()
        self.abort()
        if in_exchange and self.on_complete is not None:
            self.on_complete(False)

    def _on_peer_closed(self, exc: Exception | None) -> None:
        codec = self._codec
        assert codec is not None
        try:
            events = codec.feed_eof()
        except HttpProcessingError as error:
            self._fail(error)
            return
        if END in events:
            for event in events:
                if type(event) is bytes and self._stream is not None:
                    self._stream.feed_data(event)
            self._finish()
            return
        if self._head_waiter is not None:
            disconnected = ServerDisconnectedError()
            if exc is not None:
                disconnected.__cause__ = exc
            self._fail(disconnected)
        else:
            self._fail(
                ClientPayloadError(
                    "Response payload is not completed: connection closed"
                    + (f" ({exc!r})" if exc else "")
                )
            )

    def _poison(self) -> None:
        self._exc = self._exc or ServerDisconnectedError("unsolicited bytes on an idle connection")
        self.abort()

    # -- flow control and timers -------------------------------------------------

    def _pause_reading(self) -> None:
        if not self._read_paused and self.transport is not None and not self._lost:
            self._read_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._read_paused and self.transport is not None and not self._lost:
            self._read_paused = False
            self._last_read = self._loop.time()
            self.transport.resume_reading()

    def _on_read_timer(self) -> None:
        self._read_timer = None
        limit = self._sock_read
        if not self._in_exchange or not limit:
            return
        now = self._loop.time()
        due = self._last_read + limit
        if self._read_paused or now < due:
            # Reading is paused by us (not the peer's fault) or data came meanwhile.
            self._read_timer = self._loop.call_at(max(due, now + limit * 0.1), self._on_read_timer)
            return
        self._fail(SocketTimeoutError("Timeout on reading data from socket"))

    def _on_deadline(self) -> None:
        self._deadline_timer = None
        if self._in_exchange:
            self._fail(TotalTimeoutError("Total timeout reached while reading the response"))

    def _cancel_timers(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None


def _connection_error(exc: BaseException | None) -> Exception:
    if isinstance(exc, ConnectionResetError):
        return ClientConnectionResetError(*exc.args)
    if isinstance(exc, OSError):
        return ClientOSError(exc.errno, exc.strerror)
    return ServerDisconnectedError()


def _payload_error(exc: BaseException) -> BaseException:
    if isinstance(exc, ClientPayloadError | SocketTimeoutError | TotalTimeoutError):
        return exc
    error = ClientPayloadError(f"Response payload is not completed: {exc!r}")
    error.__cause__ = exc
    return error
