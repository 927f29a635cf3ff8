"""Websocket values with aiohttp's names: message types, messages, close codes, timeouts."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

__all__ = (
    "DEFAULT_WS_CLIENT_TIMEOUT",
    "ClientWSTimeout",
    "WSCloseCode",
    "WSMessage",
    "WSMsgType",
    "WebSocketError",
    "check_close",
)


class WSCloseCode(enum.IntEnum):
    """Close status codes (RFC 6455 §7.4.1, plus the IANA registry's 1012-1014)."""

    OK = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    ABNORMAL_CLOSURE = 1006
    INVALID_TEXT = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014


class WSMsgType(enum.IntEnum):
    """What a :class:`WSMessage` carries: frame opcodes, then three local states."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    PING = 0x9
    PONG = 0xA
    CLOSE = 0x8
    CLOSING = 0x100
    CLOSED = 0x101
    ERROR = 0x102

    # aiohttp's lower-case aliases
    text = TEXT
    binary = BINARY
    ping = PING
    pong = PONG
    close = CLOSE
    closing = CLOSING
    closed = CLOSED
    error = ERROR


class WSMessage(NamedTuple):
    """One received message.

    ``data`` is ``str`` (TEXT, or ``bytes`` with ``decode_text=False``),
    ``bytes`` (BINARY, PING, PONG), the close code (CLOSE, with the reason in
    ``extra``) or the exception (ERROR).
    """

    type: WSMsgType
    data: Any
    extra: str | None

    def json(self, *, loads: Callable[[Any], Any] = json.loads) -> Any:
        """``data`` parsed as JSON."""
        return loads(self.data)


WS_CLOSED_MESSAGE: Final = WSMessage(WSMsgType.CLOSED, None, None)
WS_CLOSING_MESSAGE: Final = WSMessage(WSMsgType.CLOSING, None, None)


class WebSocketError(Exception):
    """The server broke the websocket protocol; ``code`` is what we closed with."""

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        super().__init__(code, message)

    def __str__(self) -> str:
        return str(self.args[1])


@dataclass(frozen=True, slots=True)
class ClientWSTimeout:
    """``ws_receive``: limit per ``receive()``; ``ws_close``: wait for the server's CLOSE.

    ``None`` disables a limit (aiohttp's field defaults; the connection default
    is :data:`DEFAULT_WS_CLIENT_TIMEOUT`).
    """

    ws_receive: float | None = None
    ws_close: float | None = None

    def __post_init__(self) -> None:
        for name in ("ws_receive", "ws_close"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int | float) or value < 0):
                raise ValueError(f"ClientWSTimeout.{name} must be None or a number >= 0")


DEFAULT_WS_CLIENT_TIMEOUT: Final = ClientWSTimeout(ws_receive=None, ws_close=10.0)

# RFC 6455 §7.4: codes an endpoint never sends (1004 reserved; 1005, 1006, 1015 local).
_UNSENDABLE_CODES = frozenset((1004, 1005, 1006, 1015))


def check_close(code: int, reason: str) -> None:
    """Refuse a close code or reason a client may not send (RFC 6455 §5.5, §7.4)."""
    if not 1000 <= code <= 4999 or code in _UNSENDABLE_CODES:
        raise ValueError(f"invalid websocket close code {code}")
    if len(reason.encode("utf-8")) > 123:
        raise ValueError("close message longer than 123 bytes")
