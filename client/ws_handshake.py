"""The websocket opening handshake (RFC 6455 §4.1, RFC 7692 §7) over our HTTP/1.1 exchange.

:func:`offer` adds the upgrade headers to a request; :func:`accept` checks the
server's answer and says what was agreed. Anything the client did not ask
for (a subprotocol, an extension, a deflate parameter) fails the handshake
with ``WSServerHandshakeError`` (security.md WS-04).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from multidict import CIMultiDict, MultiMapping
from wsproto.extensions import PerMessageDeflate
from wsproto.utilities import generate_accept_token, generate_nonce

from .exceptions import WSServerHandshakeError

if TYPE_CHECKING:
    from .response import ClientResponse

__all__ = ("Agreement", "accept", "offer")

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 §5.6.2
_DEFLATE = "permessage-deflate"
_FLAGS = frozenset(("server_no_context_takeover", "client_no_context_takeover"))
_BITS = frozenset(("server_max_window_bits", "client_max_window_bits"))


@dataclass(frozen=True, slots=True)
class Agreement:
    """What the server accepted."""

    protocol: str | None
    compress: int  # our compressor's window bits; 0 without permessage-deflate
    notakeover: bool  # client_no_context_takeover: our compressor resets per message
    deflate: PerMessageDeflate | None


def offer(
    headers: CIMultiDict[str], protocols: Sequence[str], origin: str | None, compress: int
) -> bytes:
    """Add the handshake headers to ``headers``; return the ``Sec-WebSocket-Key`` nonce.

    ``compress`` is 0 (no compression) or the server window bits to ask for,
    9-15 (15 asks for the default); as aiohttp, the offer lets the server
    choose our window too.
    """
    if compress and not 9 <= compress <= 15:
        raise ValueError("compress must be 0 or window bits between 9 and 15")
    for protocol in protocols:
        if not isinstance(protocol, str) or not _TOKEN.fullmatch(protocol):
            raise ValueError(f"websocket subprotocols must be tokens, not {protocol!r}")
    headers.setdefault("Upgrade", "websocket")
    headers.setdefault("Connection", "Upgrade")
    headers.setdefault("Sec-WebSocket-Version", "13")
    nonce = generate_nonce()  # 16 bytes from os.urandom, base64
    headers["Sec-WebSocket-Key"] = nonce.decode("ascii")
    if protocols:
        headers["Sec-WebSocket-Protocol"] = ",".join(protocols)
    if origin is not None:
        headers["Origin"] = origin
    if compress:
        params = [_DEFLATE, "client_max_window_bits"]
        if compress < 15:
            params.append(f"server_max_window_bits={compress}")
        headers["Sec-WebSocket-Extensions"] = "; ".join(params)
    return nonce


def accept(
    resp: ClientResponse, nonce: bytes, protocols: Sequence[str], compress: int
) -> Agreement:
    """Check the answer to :func:`offer`; raise ``WSServerHandshakeError`` if it is wrong."""
    headers = resp.headers

    def fail(message: str) -> WSServerHandshakeError:
        return WSServerHandshakeError(
            resp.request_info, resp.history, message=message, status=resp.status, headers=headers
        )

    if resp.status != 101:
        raise fail("Invalid response status")
    if ",".join(headers.getall("Upgrade", ())).strip().lower() != "websocket":
        raise fail("Invalid upgrade header")
    # RFC 6455 §4.1: Connection must *contain* the token "upgrade" (aiohttp wants
    # the whole value to be "upgrade"; a server sending "Upgrade, keep-alive" is valid).
    tokens = {t.strip().lower() for v in headers.getall("Connection", ()) for t in v.split(",")}
    if "upgrade" not in tokens:
        raise fail("Invalid connection header")
    if headers.getall("Sec-WebSocket-Accept", ()) != [generate_accept_token(nonce).decode()]:
        raise fail("Invalid challenge response")
    try:
        protocol = _subprotocol(headers, protocols)
        deflate = _deflate(headers, compress)
    except ValueError as exc:
        raise fail(str(exc)) from None
    if deflate is None:
        return Agreement(protocol, 0, False, None)
    return Agreement(
        protocol, deflate.client_max_window_bits, deflate.client_no_context_takeover, deflate
    )


def _subprotocol(headers: MultiMapping[str], protocols: Sequence[str]) -> str | None:
    values = headers.getall("Sec-WebSocket-Protocol", ())
    if not values:
        return None
    if len(values) > 1 or "," in values[0]:
        raise ValueError("Server selected more than one subprotocol")
    selected = values[0].strip()
    if selected not in protocols:
        raise ValueError(f"Server selected an unrequested subprotocol: {selected[:64]!r}")
    return selected


def _deflate(headers: MultiMapping[str], compress: int) -> PerMessageDeflate | None:
    """The agreed permessage-deflate, per RFC 7692 §7.1, or None."""
    values = headers.getall("Sec-WebSocket-Extensions", ())
    offers = [e.strip() for v in values for e in v.split(",") if e.strip()]
    if not offers:
        return None
    if not compress:
        raise ValueError(f"Server selected an unrequested extension: {offers[0][:64]!r}")
    if len(offers) > 1:
        raise ValueError("Server selected more than one extension")
    name, *raw = (p.strip() for p in offers[0].split(";"))
    if name.lower() != _DEFLATE:
        raise ValueError(f"Server selected an unrequested extension: {name[:64]!r}")
    params: dict[str, str | None] = {}
    for item in raw:
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if key in params or key not in _FLAGS | _BITS or (key in _FLAGS) == bool(eq):
            raise ValueError(f"Invalid permessage-deflate parameter: {item[:64]!r}")
        params[key] = value.strip().strip('"') if eq else None
    client_bits = _bits(params.get("client_max_window_bits"), 9)
    _bits(params.get("server_max_window_bits"), 8)  # validated; see below
    # Inflating with the largest window reads a stream made with any smaller one
    # (and zlib refuses 8), so the server's window never needs honouring here.
    return PerMessageDeflate(
        client_no_context_takeover="client_no_context_takeover" in params,
        client_max_window_bits=client_bits,
        server_no_context_takeover="server_no_context_takeover" in params,
        server_max_window_bits=15,
    )


def _bits(value: str | None, low: int) -> int | None:
    if value is None:
        return None
    if not (value.isascii() and value.isdigit() and low <= int(value) <= 15):
        raise ValueError(f"Invalid window size: {value[:16]!r}")
    return int(value)
