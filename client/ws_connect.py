"""``ClientSession.ws_connect``: the handshake through the session, then the switch.

The upgrade request is an ordinary session request (``_request(...,
upgrade=True)``): the same pool, dialing, TLS, proxy, cookies, auth,
redirects, timeouts and tracing as any GET. Its 101 leaves the connection
checked out; the socket's transport is then handed to a
``WebSocketProtocol``, fed first with whatever bytes followed the 101.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from multidict import CIMultiDict

from . import ws_handshake
from .awaitables import AwaitableContext
from .exceptions import WSServerHandshakeError
from .websocket import ClientWebSocketResponse
from .ws_extensions import FrameGuard
from .ws_models import DEFAULT_WS_CLIENT_TIMEOUT, ClientWSTimeout
from .ws_protocol import WebSocketProtocol

if TYPE_CHECKING:
    from .helpers import BasicAuth
    from .response import ClientResponse
    from .session import ClientSession
    from .urls import Params, StrOrURL

__all__ = ("WSRequestContextManager", "connect")


async def connect(
    session: ClientSession,
    url: StrOrURL,
    *,
    method: str = "GET",
    protocols: Iterable[str] = (),
    timeout: ClientWSTimeout | float | object = ...,
    receive_timeout: float | None = None,
    autoclose: bool = True,
    autoping: bool = True,
    heartbeat: float | None = None,
    auth: BasicAuth | None = None,
    origin: str | None = None,
    params: Params = None,
    headers: Any = None,
    proxy: StrOrURL | None = None,
    proxy_auth: BasicAuth | None = None,
    ssl: Any = True,
    verify_ssl: bool | None = None,
    fingerprint: bytes | None = None,
    ssl_context: Any = None,
    server_hostname: str | None = None,
    proxy_headers: Any = None,
    compress: int = 0,
    max_msg_size: int = 4 * 1024 * 1024,
    decode_text: bool = True,
) -> ClientWebSocketResponse:
    """Open a websocket to ``url`` (ws://, wss://, http:// or https://); see aiohttp's docs."""
    ws_timeout = _ws_timeout(timeout, receive_timeout)
    protocols = tuple(protocols)
    real_headers: CIMultiDict[str] = CIMultiDict(headers or ())
    nonce = ws_handshake.offer(real_headers, protocols, origin, compress)
    resp = await session._request(
        method,
        url,
        params=params,
        headers=real_headers,
        read_until_eof=False,
        auth=auth,
        proxy=proxy,
        proxy_auth=proxy_auth,
        ssl=ssl,
        verify_ssl=verify_ssl,
        fingerprint=fingerprint,
        ssl_context=ssl_context,
        server_hostname=server_hostname,
        proxy_headers=proxy_headers,
        upgrade=True,
    )
    try:
        agreement = ws_handshake.accept(resp, nonce, protocols, compress)
        guard = FrameGuard(max_msg_size, agreement.deflate)
        proto = _switch(resp, guard, autoping, autoclose, decode_text)
    except BaseException:
        resp.close()
        raise
    return ClientWebSocketResponse(
        resp, proto, agreement, guard, ws_timeout, autoclose=autoclose, heartbeat=heartbeat
    )


def _switch(
    resp: ClientResponse, guard: FrameGuard, autoping: bool, autoclose: bool, decode_text: bool
) -> WebSocketProtocol:
    """Hand the upgraded socket to a new ``WebSocketProtocol``."""
    conn = resp.connection
    transport = conn.transport if conn is not None else None
    if conn is None or transport is None:
        raise WSServerHandshakeError(
            resp.request_info, resp.history, message="Connection lost", status=resp.status
        )
    http = conn.protocol
    proto = WebSocketProtocol(
        asyncio.get_running_loop(),
        http,
        guard,
        autoping=autoping,
        autoclose=autoclose,
        decode_text=decode_text,
    )
    proto.attach(transport, http.take_trailing())
    return proto


def _ws_timeout(timeout: object, receive_timeout: float | None) -> ClientWSTimeout:
    """aiohttp's rules: a float ``timeout`` or ``receive_timeout`` still works, with a warning."""
    if timeout is ...:
        ws_timeout = DEFAULT_WS_CLIENT_TIMEOUT
    elif isinstance(timeout, ClientWSTimeout):
        ws_timeout = timeout
    elif timeout is None or (isinstance(timeout, int | float) and not isinstance(timeout, bool)):
        warnings.warn(
            "parameter 'timeout' of type 'float' is deprecated, please use "
            "'timeout=ClientWSTimeout(ws_close=...)'",
            DeprecationWarning,
            stacklevel=3,
        )
        ws_timeout = ClientWSTimeout(ws_close=None if timeout is None else float(timeout))
    else:
        raise TypeError(f"timeout must be a ClientWSTimeout, not {type(timeout)!r}")
    if receive_timeout is not None:
        warnings.warn(
            "float parameter 'receive_timeout' is deprecated, please use parameter "
            "'timeout=ClientWSTimeout(ws_receive=...)'",
            DeprecationWarning,
            stacklevel=3,
        )
        ws_timeout = ClientWSTimeout(receive_timeout, ws_timeout.ws_close)
    return ws_timeout


class WSRequestContextManager(AwaitableContext[ClientWebSocketResponse]):
    """What ``ws_connect`` returns: awaitable, and an ``async with`` that closes the websocket."""

    __slots__ = ()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._result is not None
        await self._result.close()
