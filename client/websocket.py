"""Websocket client: ``ClientSession.ws_connect`` and ``ClientWebSocketResponse``.

The handshake is an ordinary GET through the session (pool, proxy, TLS,
cookies, auth, redirects, tracing) that asks to upgrade; the accepted 101
leaves its connection checked out of the pool for good, and the socket is
handed to a :class:`~client.ws_protocol.WebSocketProtocol` (frames by
wsproto). Closing the websocket closes that connection.

Semantics follow aiohttp's ``client_ws.py`` (``receive`` and ``close`` step for
step), with these differences, each closer to RFC 6455: pings are answered as
they arrive, not when the application reads (the latest ping of each read,
§5.5.3); with ``autoclose`` a server's CLOSE is answered as it arrives; a
connection lost without a CLOSE reports 1006 (§7.1.5), not 1000; a protocol
violation also sets ``exception()``; a selected subprotocol or extension that
was not offered fails the handshake.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from wsproto.events import BytesMessage, Ping, Pong, TextMessage

from . import ws_handshake
from .exceptions import ServerTimeoutError, WSMessageTypeError
from .ws_extensions import FrameGuard
from .ws_models import (
    WS_CLOSED_MESSAGE,
    WS_CLOSING_MESSAGE,
    ClientWSTimeout,
    WebSocketError,
    WSCloseCode,
    WSMessage,
    WSMsgType,
    check_close,
)
from .ws_protocol import WebSocketProtocol

if TYPE_CHECKING:
    from .response import ClientResponse

__all__ = (
    "ClientWSTimeout",
    "ClientWebSocketResponse",
    "WSCloseCode",
    "WSMessage",
    "WSMsgType",
    "WebSocketError",
)

_DATA_TYPES = frozenset((WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.PING, WSMsgType.PONG))
_STOP_TYPES = frozenset((WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED))


class ClientWebSocketResponse:
    """An open websocket: send with ``send_*``, read with ``receive*`` or ``async for``.

    One task reads; any number of tasks may send.
    """

    def __init__(
        self,
        response: ClientResponse,
        proto: WebSocketProtocol,
        agreement: ws_handshake.Agreement,
        guard: FrameGuard,
        timeout: ClientWSTimeout,
        *,
        autoclose: bool,
        heartbeat: float | None,
    ) -> None:
        self._response = response
        self._proto = proto
        self._agreement = agreement
        self._guard = guard
        self._timeout = timeout
        self._autoclose = autoclose
        self._loop = asyncio.get_running_loop()
        self._closed = False
        self._closing = False
        self._close_code: int | None = None
        self._exception: BaseException | None = None
        self._waiting = False
        self._close_wait: asyncio.Future[None] | None = None
        self._heartbeat = heartbeat
        self._heartbeat_handle: asyncio.TimerHandle | None = None
        self._ping_sent = 0.0
        if heartbeat:
            self._heartbeat_handle = self._loop.call_at(
                proto.last_read + heartbeat, self._on_heartbeat
            )

    def __repr__(self) -> str:
        return f"<ClientWebSocketResponse {self._response.url} {self._proto!r}>"

    # -- properties (aiohttp names) ------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def close_code(self) -> int | None:
        return self._close_code

    @property
    def protocol(self) -> str | None:
        """The subprotocol the server selected, if any."""
        return self._agreement.protocol

    @property
    def compress(self) -> int:
        """Window bits of our permessage-deflate compressor; 0 when not negotiated."""
        return self._agreement.compress

    @property
    def client_notakeover(self) -> bool:
        return self._agreement.notakeover

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """Transport information (``"peername"``, ``"sslcontext"``...)."""
        transport = self._proto.transport
        if transport is None:
            return default
        return transport.get_extra_info(name, default)

    def exception(self) -> BaseException | None:
        return self._exception

    # -- sending -------------------------------------------------------------------

    async def ping(self, message: bytes | str = b"") -> None:
        self._proto.send(Ping(payload=_as_bytes(message)))
        await self._proto.drain()

    async def pong(self, message: bytes | str = b"") -> None:
        self._proto.send(Pong(payload=_as_bytes(message)))
        await self._proto.drain()

    async def send_str(self, data: str, compress: int | None = None) -> None:
        if not isinstance(data, str):
            raise TypeError(f"data argument must be str ({type(data)!r})")
        await self._send(TextMessage(data=data), compress)

    async def send_bytes(
        self, data: bytes | bytearray | memoryview, compress: int | None = None
    ) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"data argument must be byte-ish ({type(data)!r})")
        await self._send(BytesMessage(data=bytes(data)), compress)

    async def send_json(
        self,
        data: Any,
        compress: int | None = None,
        *,
        dumps: Callable[[Any], str] = json.dumps,
    ) -> None:
        await self.send_str(dumps(data), compress=compress)

    async def send_json_bytes(
        self, data: Any, compress: int | None = None, *, dumps: Callable[[Any], bytes]
    ) -> None:
        """JSON from a bytes-returning encoder (orjson), sent as a BINARY message."""
        await self.send_bytes(dumps(data), compress=compress)

    async def send_frame(
        self, message: bytes, opcode: WSMsgType, compress: int | None = None
    ) -> None:
        """Send one whole TEXT, BINARY, PING or PONG frame."""
        if opcode is WSMsgType.TEXT:
            await self._send(TextMessage(data=bytes(message).decode("utf-8")), compress)
        elif opcode is WSMsgType.BINARY:
            await self._send(BytesMessage(data=bytes(message)), compress)
        elif opcode is WSMsgType.PING:
            await self.ping(message)
        elif opcode is WSMsgType.PONG:
            await self.pong(message)
        else:
            raise ValueError(f"send_frame cannot send {opcode!r}; use close() for CLOSE")

    async def _send(self, event: TextMessage | BytesMessage, compress: int | None) -> None:
        guard = self._guard
        if compress == 0 and guard.compress_outbound:
            guard.compress_outbound = False  # this message only; the context is kept
            try:
                self._proto.send(event)
            finally:
                guard.compress_outbound = True
        else:
            self._proto.send(event)
        await self._proto.drain()

    # -- closing ---------------------------------------------------------------------

    async def close(self, *, code: int = WSCloseCode.OK, message: bytes | str = b"") -> bool:
        """Close (RFC 6455 §7): send CLOSE, wait up to ``ws_close`` for the server's.

        Returns False if the websocket was already closed.
        """
        reason = message.decode("utf-8") if isinstance(message, bytes) else message
        check_close(code, reason)
        if self._waiting and not self._closing:
            # Another task is in receive(): end it first (it returns CLOSING).
            self._close_wait = self._loop.create_future()
            self._set_closing()
            self._proto.feed(WS_CLOSING_MESSAGE)
            await self._close_wait
        if self._closed:
            return False
        self._set_closed()
        proto = self._proto
        proto.send_close(code, reason)
        proto.discard()
        if not proto.finished:
            try:
                async with asyncio.timeout(self._timeout.ws_close):
                    await proto.wait_finished()
            except asyncio.CancelledError:
                self._close_code = WSCloseCode.ABNORMAL_CLOSURE
                self._drop()
                raise
            except TimeoutError:
                self._exception = ServerTimeoutError(
                    f"No CLOSE from the server within {self._timeout.ws_close} s"
                )
        self._settle_close_code()
        self._drop()
        return True

    def _settle_close_code(self) -> None:
        proto = self._proto
        if proto.close_received is not None:
            self._close_code = proto.close_received[0]
        elif proto.failure is not None:
            self._close_code = proto.failure.code
            self._exception = self._exception or proto.failure
        else:
            self._close_code = WSCloseCode.ABNORMAL_CLOSURE  # lost, or no answer in time

    def _drop(self) -> None:
        """Close the socket (aborting it if stuck) and give the connection back."""
        self._proto.shutdown()
        self._response.close()

    def _set_closing(self) -> None:
        self._closing = True
        self._cancel_heartbeat()

    def _set_closed(self) -> None:
        self._closed = True
        self._cancel_heartbeat()

    # -- receiving -------------------------------------------------------------------

    async def receive(self, timeout: float | None = None) -> WSMessage:
        """The next message; CLOSE, CLOSING, CLOSED or ERROR once the websocket ends."""
        receive_timeout = timeout or self._timeout.ws_receive
        if self._waiting:
            raise RuntimeError("Concurrent call to receive() is not allowed")
        if self._closed:
            return WS_CLOSED_MESSAGE
        if self._closing:
            await self.close()
            return WS_CLOSED_MESSAGE
        self._waiting = True
        try:
            if receive_timeout:
                async with asyncio.timeout(receive_timeout):
                    msg = await self._proto.read()
            else:
                msg = await self._proto.read()
        except (asyncio.CancelledError, TimeoutError):
            self._close_code = WSCloseCode.ABNORMAL_CLOSURE  # as aiohttp; still open
            raise
        finally:
            self._waiting = False
            close_wait = self._close_wait
            if close_wait is not None and not close_wait.done():
                close_wait.set_result(None)
        if msg.type in _DATA_TYPES:
            return msg
        return await self._on_final(msg)

    async def _on_final(self, msg: WSMessage) -> WSMessage:
        """A message that ends the websocket: CLOSE, CLOSING, ERROR or end of stream."""
        kind = msg.type
        if kind is WSMsgType.CLOSE:
            self._set_closing()
            self._close_code = msg.data
            if not self._closed and self._autoclose:
                await self.close()
            return msg
        if kind is WSMsgType.CLOSING:
            self._set_closing()
            return msg
        if kind is WSMsgType.ERROR:
            error = msg.data
            self._exception = self._exception or error
            if isinstance(error, WebSocketError):
                self._close_code = error.code
            self._set_closed()
            self._drop()
            return msg
        self._set_closed()  # the stream ended without a CLOSE
        self._close_code = WSCloseCode.ABNORMAL_CLOSURE
        self._drop()
        return WS_CLOSED_MESSAGE

    async def receive_str(self, *, timeout: float | None = None) -> str:
        """The next message, which must be TEXT (bytes with ``decode_text=False``)."""
        msg = await self.receive(timeout)
        if msg.type is not WSMsgType.TEXT:
            raise WSMessageTypeError(
                f"Received message {msg.type}:{msg.data!r} is not WSMsgType.TEXT"
            )
        data: str = msg.data
        return data

    async def receive_bytes(self, *, timeout: float | None = None) -> bytes:
        msg = await self.receive(timeout)
        if msg.type is not WSMsgType.BINARY:
            raise WSMessageTypeError(
                f"Received message {msg.type}:{msg.data!r} is not WSMsgType.BINARY"
            )
        data: bytes = msg.data
        return data

    async def receive_json(
        self, *, loads: Callable[[Any], Any] = json.loads, timeout: float | None = None
    ) -> Any:
        return loads(await self.receive_str(timeout=timeout))

    def __aiter__(self) -> ClientWebSocketResponse:
        return self

    async def __anext__(self) -> WSMessage:
        msg = await self.receive()
        if msg.type in _STOP_TYPES:
            raise StopAsyncIteration
        return msg

    async def __aenter__(self) -> ClientWebSocketResponse:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- heartbeat (one timer, re-armed lazily from the last read) -------------------

    def _on_heartbeat(self) -> None:
        self._heartbeat_handle = None
        heartbeat = self._heartbeat
        assert heartbeat is not None
        now = self._loop.time()
        due = self._proto.last_read + heartbeat
        if now < due:  # data arrived meanwhile
            self._heartbeat_handle = self._loop.call_at(due, self._on_heartbeat)
            return
        try:
            self._proto.send(Ping(payload=b""))
        except ConnectionError as exc:
            self._heartbeat_failed(exc)
            return
        self._ping_sent = now
        self._heartbeat_handle = self._loop.call_at(now + heartbeat / 2, self._on_pong_due)

    def _on_pong_due(self) -> None:
        self._heartbeat_handle = None
        heartbeat = self._heartbeat
        assert heartbeat is not None
        if self._proto.last_read > self._ping_sent:  # any data proves the server alive
            last = self._proto.last_read
            self._heartbeat_handle = self._loop.call_at(last + heartbeat, self._on_heartbeat)
            return
        self._heartbeat_failed(
            ServerTimeoutError(f"No PONG received after {heartbeat / 2} seconds")
        )

    def _heartbeat_failed(self, exc: BaseException) -> None:
        if self._closed:
            return
        self._set_closed()
        self._close_code = WSCloseCode.ABNORMAL_CLOSURE
        self._exception = exc
        self._drop()
        if self._waiting and not self._closing:
            self._proto.feed(WSMessage(WSMsgType.ERROR, exc, None))

    def _cancel_heartbeat(self) -> None:
        if self._heartbeat_handle is not None:
            self._heartbeat_handle.cancel()
            self._heartbeat_handle = None


def _as_bytes(message: bytes | bytearray | memoryview | str) -> bytes:
    return message.encode("utf-8") if isinstance(message, str) else bytes(message)
