"""``WebSocketProtocol``: the asyncio protocol of a socket after ``101 Switching Protocols``.

wsproto owns the frame rules (RFC 6455 §5): masking (with ``os.urandom``
masks), opcodes, control-frame limits, fragmentation, UTF-8, close codes.
This module moves bytes between wsproto and the transport and decides what
happens next:

* messages are assembled and queued for ``receive()``; the queue is bounded
  (:data:`HIGH_WATER` bytes, each message charged at least
  :data:`MESSAGE_COST`): above it, reading pauses and the rest of the
  received bytes wait inside wsproto, unparsed, until the application reads;
* with ``autoping``, pings are answered as they arrive, one PONG for the
  latest ping of each batch of received bytes (RFC 6455 §5.5.3 allows it);
  while the transport's write buffer is full the answer waits, so a ping
  flood costs neither memory nor a frame per ping;
* a server's protocol violation fails the connection (§7.1.7): a CLOSE with
  wsproto's code (1002, 1007, or 1009 from the frame guard), then the
  socket is dropped; nothing the server sends afterwards is parsed;
* with ``autoclose``, a server's CLOSE is answered at once and the socket
  closed; messages queued before it stay readable.

``connection_lost`` goes on to the original HTTP protocol: it still keeps
the pool's books (the connection's slot, its ``closed`` future).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Event, Ping, Pong, TextMessage
from wsproto.utilities import LocalProtocolError

from .exceptions import ClientConnectionResetError
from .ws_models import WS_CLOSED_MESSAGE, WebSocketError, WSMessage, WSMsgType

if TYPE_CHECKING:
    from .protocol import ResponseProtocol
    from .ws_extensions import FrameGuard

__all__ = ("HIGH_WATER", "MESSAGE_COST", "WebSocketProtocol")

#: Queued message bytes above which reading pauses (aiohttp's reader limit).
HIGH_WATER = 2**16
#: What each queued message costs at least, so empty messages are bounded too.
MESSAGE_COST = 64
_LOW_WATER = HIGH_WATER // 4
_OPEN = ConnectionState.OPEN
_SENDABLE = (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING)


class WebSocketProtocol(asyncio.Protocol):
    """Reads frames into a bounded message queue; writes what the client sends."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        http: ResponseProtocol,
        guard: FrameGuard,
        *,
        autoping: bool,
        autoclose: bool,
        decode_text: bool,
    ) -> None:
        self._loop = loop
        self._http = http
        self._guard = guard
        self._ws = Connection(ConnectionType.CLIENT, extensions=[guard])
        self._autoping = autoping
        self._autoclose = autoclose
        self._decode_text = decode_text
        self.transport: asyncio.Transport | None = None
        self.last_read = loop.time()  # for the heartbeat
        self._queue: deque[WSMessage] = deque()
        self._queued = 0
        self._waiter: asyncio.Future[None] | None = None
        self._parts: list[bytes | bytearray] = []  # a fragmented message so far
        self._text_parts: list[str] = []
        self._backlog = False  # wsproto holds bytes we stopped parsing (queue full)
        self._read_paused = False
        self._write_paused = False
        self._drain: asyncio.Future[None] | None = None
        self._pending_pong: bytes | None = None
        #: The server's CLOSE (code, reason), once received.
        self.close_received: tuple[int, str] | None = None
        #: The server's protocol violation, once detected.
        self.failure: WebSocketError | None = None
        self.lost = False
        self._finished: asyncio.Future[None] = loop.create_future()

    def __repr__(self) -> str:
        return (
            f"<WebSocketProtocol {self._ws.state.name} queued={len(self._queue)} "
            f"paused={self._read_paused}>"
        )

    def attach(self, transport: asyncio.Transport, trailing: bytes) -> None:
        """Take ``transport`` over from the HTTP protocol; ``trailing`` came with the 101."""
        self.transport = transport
        transport.set_protocol(self)
        if trailing:
            self.data_received(trailing)
        if self._http.closed.done():  # lost before we took over
            self._on_lost(None)

    # -- state -------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """No CLOSE can come any more: received, failed or lost."""
        return self._finished.done()

    async def wait_finished(self) -> None:
        await asyncio.shield(self._finished)

    def _finish(self) -> None:
        if not self._finished.done():
            self._finished.set_result(None)
        self._parts = []
        self._text_parts = []

    # -- asyncio.Protocol ----------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.last_read = self._loop.time()
        if self.finished:
            return  # nothing after a CLOSE or a violation is parsed (RFC 6455 §5.5.1)
        self._ws.receive_data(data)
        self._process()

    def eof_received(self) -> bool:
        return False  # the transport closes; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_lost(exc)
        if not self._http.closed.done():
            self._http.connection_lost(exc)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._flush_pong()
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    def _on_lost(self, exc: Exception | None) -> None:
        if self.lost:
            return
        self.lost = True
        if not self.finished:
            self._enqueue(WS_CLOSED_MESSAGE)  # ends receive(): closed without a CLOSE
        self._finish()
        self._wake()
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_exception(ClientConnectionResetError("Connection lost"))
            drain.exception()  # retrieved: a writer may not be waiting

    # -- reading -------------------------------------------------------------------

    def _process(self) -> None:
        """Turn buffered bytes into events until done, or until the queue is full."""
        try:
            for event in self._ws.events():
                self._handle(event)
                if self.finished:
                    return
                if self._queued > HIGH_WATER:
                    self._backlog = True
                    self._set_reading(False)
                    return
            self._backlog = False
        finally:
            self._flush_pong()

    def _handle(self, event: Event) -> None:
        if isinstance(event, CloseConnection):
            self._on_close(event)
        elif self._ws.state is not _OPEN:
            return  # we sent CLOSE: whatever crosses it is dropped
        elif isinstance(event, TextMessage):
            self._on_text(event)
        elif isinstance(event, BytesMessage):
            self._on_bytes(event)
        elif isinstance(event, Ping):
            self._on_ping(event.payload)
        elif isinstance(event, Pong) and not self._autoping:
            self._enqueue(WSMessage(WSMsgType.PONG, bytes(event.payload), None))

    def _on_text(self, event: TextMessage) -> None:
        data = event.data
        if not event.message_finished or self._text_parts:
            self._text_parts.append(data)
            if not event.message_finished:
                return
            data = "".join(self._text_parts)
            self._text_parts = []
        payload: str | bytes = data if self._decode_text else data.encode()
        self._enqueue(WSMessage(WSMsgType.TEXT, payload, None))

    def _on_bytes(self, event: BytesMessage) -> None:
        data = event.data
        if not event.message_finished or self._parts:
            self._parts.append(data)
            if not event.message_finished:
                return
            data = b"".join(self._parts)
            self._parts = []
        self._enqueue(WSMessage(WSMsgType.BINARY, bytes(data), None))

    def _on_ping(self, payload: bytes) -> None:
        if self._autoping:
            # Answered once this batch of bytes is parsed: only the latest ping is
            # owed a PONG (RFC 6455 §5.5.3), so a flood costs one frame per read.
            self._pending_pong = bytes(payload)
        else:
            self._enqueue(WSMessage(WSMsgType.PING, bytes(payload), None))

    def _flush_pong(self) -> None:
        pong = self._pending_pong
        if pong is None or self._write_paused:
            return  # while the server does not read, the answer waits (resume_writing)
        self._pending_pong = None
        if self._ws.state is _OPEN and self.writable:
            self._write(self._ws.send(Pong(payload=pong)))

    def _on_close(self, event: CloseConnection) -> None:
        state = self._ws.state
        if state is ConnectionState.REMOTE_CLOSING or state is ConnectionState.CLOSED:
            self.close_received = (int(event.code), event.reason or "")
            if state is ConnectionState.REMOTE_CLOSING:
                # The server closes first: CLOSE is queued; with autoclose, answered now.
                self._enqueue(WSMessage(WSMsgType.CLOSE, int(event.code), event.reason))
                if self._autoclose:
                    self.send_close(int(event.code), "")
            else:
                self.shutdown()  # the answer to our CLOSE: the handshake is complete
            self._finish()
            return
        # wsproto refused the bytes (its state did not move): fail the connection.
        self._fail(WebSocketError(int(event.code), event.reason or "protocol error"))

    def _fail(self, error: WebSocketError) -> None:
        self.failure = error
        self._flush_pong()  # owed for pings before the violation
        if self._ws.state is _OPEN and self.writable:
            self._write(self._ws.send(CloseConnection(code=error.code)))
        self.shutdown()
        self._enqueue(WSMessage(WSMsgType.ERROR, error, None))
        self._finish()

    # -- the queue -------------------------------------------------------------------

    def _enqueue(self, msg: WSMessage) -> None:
        self._queue.append(msg)
        self._queued += _cost(msg)
        self._wake()

    def feed(self, msg: WSMessage) -> None:
        """Queue a local message (CLOSING, ERROR) for a waiting ``receive()``."""
        self._enqueue(msg)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def read(self) -> WSMessage:
        """The next message; ``WS_CLOSED_MESSAGE`` once nothing more can come."""
        while not self._queue:
            if self.finished:
                return WS_CLOSED_MESSAGE
            waiter = self._waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        msg = self._queue.popleft()
        self._queued -= _cost(msg)
        if self._queued <= _LOW_WATER and (self._backlog or self._read_paused):
            self._catch_up()
        return msg

    def _catch_up(self) -> None:
        if self._backlog and not self.finished:
            self._process()
        if not self._backlog:
            self._set_reading(True)

    def _set_reading(self, on: bool) -> None:
        transport = self.transport
        if transport is None or self.lost or self._read_paused != on:
            return
        self._read_paused = not on
        if on:
            transport.resume_reading()
        else:
            transport.pause_reading()

    # -- writing -------------------------------------------------------------------

    @property
    def writable(self) -> bool:
        transport = self.transport
        return transport is not None and not self.lost and not transport.is_closing()

    def _write(self, data: bytes | bytearray) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def send(self, event: Event) -> None:
        """Frame and write ``event`` (a message, ping or pong)."""
        if not self.writable:
            raise ClientConnectionResetError("Cannot write to closing transport")
        try:
            data = self._ws.send(event)
        except LocalProtocolError as exc:
            raise ClientConnectionResetError("Cannot send: the websocket is closing") from exc
        self._write(data)

    async def drain(self) -> None:
        """Wait while the transport's write buffer is over its high-water mark."""
        if self.lost:
            raise ClientConnectionResetError("Connection lost")
        if not self._write_paused:
            return
        if self._drain is None:
            self._drain = self._loop.create_future()
        await asyncio.shield(self._drain)

    def discard(self) -> None:
        """Drop what is queued (after ``close()`` nothing more is read) and read on."""
        self._queue.clear()
        self._queued = 0
        self._parts = []
        self._text_parts = []
        if self._backlog or self._read_paused:
            self._catch_up()

    def send_close(self, code: int, reason: str) -> None:
        """Start the closing handshake, or answer the server's; a no-op past that."""
        if self._ws.state not in _SENDABLE or not self.writable:
            return
        self._flush_pong()  # nothing may follow our CLOSE
        self._write(self._ws.send(CloseConnection(code=code, reason=reason)))
        if self._ws.state is ConnectionState.CLOSED:
            self.shutdown()  # we answered: both CLOSEs are out

    def shutdown(self) -> None:
        """Close the socket; abort it if the server is not even reading what we sent."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if transport.get_write_buffer_size():
            transport.abort()
        else:
            transport.close()


def _cost(msg: WSMessage) -> int:
    """What a queued message counts against :data:`HIGH_WATER`."""
    data = msg.data
    return MESSAGE_COST + (len(data) if type(data) is bytes or type(data) is str else 0)
