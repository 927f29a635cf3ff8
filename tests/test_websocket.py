"""Websockets (issue #3): ``ClientSession.ws_connect`` and ``ClientWebSocketResponse``.

Two kinds of peers: a real ``websockets`` server (tests/servers/ws.py
:class:`WSServer`) for the API against a correct implementation, and the
raw :class:`ScriptedServer` playing a hostile one with hand-made frames and
handshakes for security.md WS-01..WS-04.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import pytest
from servers import ScriptedConnection, ScriptedServer, TLSCertificates, client_context
from servers.ws import (
    ClientFrame,
    WSServer,
    close_payload,
    frame,
    read_frame,
    read_until_close,
    switching_protocols,
)

import client
from client import (
    ClientConnectionResetError,
    ClientSession,
    ClientTimeout,
    ClientWSTimeout,
    PoolTimeoutError,
    ServerTimeoutError,
    TCPConnector,
    WebSocketError,
    WSMessageTypeError,
    WSMsgType,
    WSServerHandshakeError,
)
from client.protocol import ResponseProtocol

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA
MiB = 1 << 20


@pytest.fixture
async def session() -> AsyncIterator[ClientSession]:
    async with ClientSession() as s:
        yield s


@pytest.fixture
async def ws_server() -> AsyncIterator[WSServer]:
    """A plain ``websockets`` server: no compression, no subprotocols, no pings."""
    server = await WSServer().start()
    yield server
    await server.close()


@pytest.fixture
async def make_ws_server() -> AsyncIterator[Callable[..., Awaitable[WSServer]]]:
    """``await make_ws_server(compression="deflate", ...)``: a server with ``serve()`` options."""
    servers: list[WSServer] = []

    async def make(**options: object) -> WSServer:
        server = await WSServer(dict(options)).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.close()


def in_use(session: ClientSession) -> int:
    connector = session.connector
    assert isinstance(connector, TCPConnector)
    return connector.stats()["in_use"]


# -- messages with a real server ----------------------------------------------------------


async def test_text_binary_and_json_round_trip(session: ClientSession, ws_server: WSServer) -> None:
    async with session.ws_connect(ws_server.url()) as ws:
        await ws.send_str("héllo")
        msg = await ws.receive()
        assert msg == (WSMsgType.TEXT, "héllo", None)
        await ws.send_bytes(b"\x00\xff")
        assert await ws.receive_bytes() == b"\x00\xff"
        await ws.send_json({"a": [1, 2]})
        assert await ws.receive_json() == {"a": [1, 2]}
        await ws.send_json({"b": 1})
        assert (await ws.receive()).json() == {"b": 1}
        await ws.send_bytes(bytearray(b"big" * 100_000))
        assert await ws.receive_bytes() == b"big" * 100_000
        assert ws.protocol is None
        assert ws.compress == 0
        assert ws.get_extra_info("peername")[1] == ws_server.port
    assert ws.closed
    assert ws.close_code == 1000
    assert in_use(session) == 0
    await asyncio.sleep(0.05)
    assert ws_server.closes == [(1000, "")]


async def test_async_for_stops_at_the_servers_close(
    session: ClientSession, ws_server: WSServer
) -> None:
    ws = await session.ws_connect(ws_server.url("/send-then-close"))
    received = [msg.data async for msg in ws]
    assert received == ["one", "two", "three"]
    assert ws.closed
    assert ws.close_code == 4001
    assert await ws.receive() == (WSMsgType.CLOSED, None, None)
    assert not await ws.close()  # already closed


async def test_server_close_code_and_reason(session: ClientSession, ws_server: WSServer) -> None:
    async with session.ws_connect(ws_server.url("/close?code=4002&reason=done")) as ws:
        msg = await ws.receive()
        assert msg.type is WSMsgType.CLOSE
        assert msg.data == 4002
        assert msg.extra == "done"
        assert ws.closed  # autoclose answered it
        assert ws.close_code == 4002


async def test_autoclose_off_leaves_the_answer_to_close(
    session: ClientSession, ws_server: WSServer
) -> None:
    ws = await session.ws_connect(ws_server.url("/close?code=4003"), autoclose=False)
    msg = await ws.receive()
    assert (msg.type, msg.data) == (WSMsgType.CLOSE, 4003)
    assert not ws.closed
    assert await ws.close()
    assert ws.close_code == 4003
    await asyncio.sleep(0.05)
    assert ws_server.closes == [(1000, "")]  # our answer: close()'s default code


async def test_client_close_code_and_message_reach_the_server(
    session: ClientSession, ws_server: WSServer
) -> None:
    ws = await session.ws_connect(ws_server.url())
    assert await ws.close(code=4000, message=b"see you")
    assert ws.close_code == 4000  # the server echoes ours
    await asyncio.sleep(0.05)
    assert ws_server.closes == [(4000, "see you")]
    with pytest.raises(ClientConnectionResetError):
        await ws.send_str("late")


@pytest.mark.parametrize("code", [999, 1005, 1006, 1015, 5000])
async def test_close_refuses_codes_a_client_may_not_send(
    session: ClientSession, ws_server: WSServer, code: int
) -> None:
    async with session.ws_connect(ws_server.url()) as ws:
        with pytest.raises(ValueError, match="close code"):
            await ws.close(code=code)
        assert not ws.closed


async def test_decode_text_false_gives_bytes(session: ClientSession, ws_server: WSServer) -> None:
    async with session.ws_connect(ws_server.url(), decode_text=False) as ws:
        await ws.send_str("ünï")
        data: object = await ws.receive_str()
        assert data == "ünï".encode()


async def test_receive_str_on_binary_raises_wsmessagetypeerror(
    session: ClientSession, ws_server: WSServer
) -> None:
    async with session.ws_connect(ws_server.url()) as ws:
        await ws.send_bytes(b"raw")
        with pytest.raises(WSMessageTypeError, match=r"is not WSMsgType\.TEXT"):
            await ws.receive_str()
        await ws.send_str("txt")
        with pytest.raises(WSMessageTypeError):
            await ws.receive_bytes()


async def test_wsmsgtype_values_match_aiohttp() -> None:
    assert [int(t) for t in WSMsgType] == [0, 1, 2, 9, 10, 8, 0x100, 0x101, 0x102]
    assert WSMsgType["text"] is WSMsgType.TEXT  # aiohttp's lower-case aliases
    assert int(client.WSCloseCode.MESSAGE_TOO_BIG) == 1009
    assert client.WSMessage(WSMsgType.TEXT, "[1]", None).json() == [1]


# -- handshake options with a real server --------------------------------------------------


async def test_handshake_headers_and_request_options(
    session: ClientSession, ws_server: WSServer
) -> None:
    session.cookie_jar.update_cookies({"sid": "abc"})
    url = ws_server.url("/headers", scheme="http")  # http:// works as in aiohttp
    async with session.ws_connect(
        url,
        params={"q": "1"},
        headers={"X-Extra": "yes"},
        origin="http://origin.test",
        auth=client.BasicAuth("user", "pw"),
    ) as ws:
        seen = await ws.receive_json()
    assert seen["path"] == "/headers?q=1"
    assert seen["Upgrade"] == "websocket"
    assert seen["Connection"] == "Upgrade"
    assert seen["Sec-WebSocket-Version"] == "13"
    assert len(base64.b64decode(seen["Sec-WebSocket-Key"])) == 16
    assert seen["Origin"] == "http://origin.test"
    assert seen["X-Extra"] == "yes"
    assert seen["Authorization"] == client.BasicAuth("user", "pw").encode()
    assert seen["Cookie"] == "sid=abc"
    assert "Sec-WebSocket-Extensions" not in seen
    assert "Sec-WebSocket-Protocol" not in seen


async def test_subprotocol_selected_by_the_server(
    session: ClientSession, make_ws_server: Callable[..., Awaitable[WSServer]]
) -> None:
    server = await make_ws_server(subprotocols=["chat.v2", "chat.v1"])
    async with session.ws_connect(server.url("/subprotocol"), protocols=("chat.v1",)) as ws:
        assert ws.protocol == "chat.v1"
        assert await ws.receive_str() == "chat.v1"
    with pytest.raises(WSServerHandshakeError) as info:
        await session.ws_connect(server.url(), protocols=("other",))
    assert info.value.status == 400
    assert in_use(session) == 0


async def test_compress_negotiates_permessage_deflate(
    session: ClientSession, make_ws_server: Callable[..., Awaitable[WSServer]]
) -> None:
    server = await make_ws_server(compression="deflate")
    async with session.ws_connect(server.url("/headers"), compress=15) as ws:
        seen = await ws.receive_json()
        assert seen["Sec-WebSocket-Extensions"] == "permessage-deflate; client_max_window_bits"
        assert 9 <= ws.compress <= 15
        text = "compressible " * 10_000
        await ws.send_str(text)
        assert await ws.receive_str() == text
        await ws.send_bytes(b"\x00" * 300_000, compress=0)  # this one uncompressed
        assert await ws.receive_bytes() == b"\x00" * 300_000
        await ws.send_str(text)  # the compression context survived
        assert await ws.receive_str() == text
    async with session.ws_connect(server.url("/headers"), compress=10) as ws:
        seen = await ws.receive_json()
        assert "server_max_window_bits=10" in seen["Sec-WebSocket-Extensions"]


async def test_compress_without_server_support_is_off(
    session: ClientSession, ws_server: WSServer
) -> None:
    async with session.ws_connect(ws_server.url(), compress=15) as ws:
        assert ws.compress == 0
        await ws.send_str("plain")
        assert await ws.receive_str() == "plain"


@pytest.mark.parametrize("compress", [1, 8, 16])
async def test_compress_window_bits_are_checked(
    session: ClientSession, ws_server: WSServer, compress: int
) -> None:
    with pytest.raises(ValueError, match="compress"):
        await session.ws_connect(ws_server.url(), compress=compress)


async def test_refused_handshake_is_wsserverhandshakeerror(
    session: ClientSession, ws_server: WSServer
) -> None:
    with pytest.raises(WSServerHandshakeError) as info:
        await session.ws_connect(ws_server.url("/missing"))
    assert info.value.status == 404
    assert info.value.message == "Invalid response status"
    assert in_use(session) == 0


async def test_wss_over_tls(session: ClientSession, tls_certificates: TLSCertificates) -> None:
    server = await WSServer(ssl_context=tls_certificates.server_context("valid")).start()
    try:
        ctx = client_context(tls_certificates.ca)
        async with session.ws_connect(server.url(), ssl=ctx, compress=15) as ws:
            await ws.send_str("secure")
            assert await ws.receive_str() == "secure"
            assert ws.get_extra_info("sslcontext") is ctx
        assert ws.close_code == 1000
    finally:
        await server.close()


# -- ping, pong, heartbeat, timeouts -------------------------------------------------------


async def test_autoping_answers_the_servers_ping(
    session: ClientSession, ws_server: WSServer
) -> None:
    async with session.ws_connect(ws_server.url("/ping")) as ws:
        assert await ws.receive_str(timeout=5) == "pong received"


async def test_autoping_off_shows_pings_and_pongs(
    session: ClientSession, ws_server: WSServer
) -> None:
    async with session.ws_connect(ws_server.url("/ping"), autoping=False) as ws:
        msg = await ws.receive()
        assert (msg.type, msg.data) == (WSMsgType.PING, b"srv")
        await ws.pong(msg.data)
        assert await ws.receive_str() == "pong received"
        await ws.ping(b"cli")
        assert await ws.receive() == (WSMsgType.PONG, b"cli", None)


async def test_ping_pong_frames_are_swallowed_with_autoping(
    session: ClientSession, ws_server: WSServer
) -> None:
    async with session.ws_connect(ws_server.url()) as ws:
        await ws.ping("text is utf-8 encoded")
        await ws.send_str("after")
        assert await ws.receive_str() == "after"  # the PONG never showed up


async def test_receive_timeout_raises_and_keeps_the_socket(
    session: ClientSession, ws_server: WSServer
) -> None:
    async with session.ws_connect(ws_server.url(), timeout=ClientWSTimeout(ws_receive=0.05)) as ws:
        with pytest.raises(asyncio.TimeoutError):
            await ws.receive()
        assert ws.close_code == 1006  # as aiohttp reports it
        assert not ws.closed
        with pytest.raises(TimeoutError):
            await ws.receive(timeout=0.02)
        await ws.send_str("still here")
        assert await ws.receive_str() == "still here"


async def test_deprecated_float_timeouts_still_work(
    session: ClientSession, ws_server: WSServer
) -> None:
    with pytest.warns(DeprecationWarning, match="receive_timeout"):
        ws = await session.ws_connect(ws_server.url(), receive_timeout=0.05)
    with pytest.raises(asyncio.TimeoutError):
        await ws.receive()
    await ws.close()
    with pytest.warns(DeprecationWarning, match="ClientWSTimeout"):
        ws = await session.ws_connect(ws_server.url(), timeout=3.0)
    await ws.close()
    with pytest.warns(DeprecationWarning, match="ClientWSTimeout"):
        ws = await session.ws_connect(ws_server.url(), timeout=None)  # no close limit
    await ws.close()
    with pytest.raises(TypeError, match="ClientWSTimeout"):
        await session.ws_connect(ws_server.url(), timeout="10")


async def test_concurrent_receive_is_a_runtime_error(
    session: ClientSession, ws_server: WSServer
) -> None:
    async with session.ws_connect(ws_server.url()) as ws:
        reader = asyncio.create_task(ws.receive())
        await asyncio.sleep(0.01)
        with pytest.raises(RuntimeError, match="Concurrent call to receive"):
            await ws.receive()
        await ws.send_str("x")
        assert (await reader).data == "x"


async def test_close_from_another_task_ends_a_pending_receive(
    session: ClientSession, ws_server: WSServer
) -> None:
    ws = await session.ws_connect(ws_server.url())
    reader = asyncio.create_task(ws.receive())
    await asyncio.sleep(0.01)
    assert await ws.close()
    assert (await reader).type is WSMsgType.CLOSING
    assert ws.closed
    assert ws.close_code == 1000


# -- the connection and the pool -------------------------------------------------------------


async def test_a_websocket_holds_its_pool_slot_until_closed(ws_server: WSServer) -> None:
    connector = TCPConnector(limit=1)
    async with ClientSession(connector=connector, timeout=ClientTimeout(pool=0.1)) as session:
        ws = await session.ws_connect(ws_server.url())
        assert connector.stats()["in_use"] == 1
        with pytest.raises(PoolTimeoutError):
            await session.ws_connect(ws_server.url())
        await ws.close()
        assert connector.stats() == {"in_use": 0, "idle": 0, "waiting": 0}
        async with session.ws_connect(ws_server.url()) as again:  # the slot is free again
            await again.send_str("ok")
            assert await again.receive_str() == "ok"


async def test_closing_the_session_ends_an_open_websocket(ws_server: WSServer) -> None:
    session = ClientSession()
    ws = await session.ws_connect(ws_server.url())
    await session.close()
    msg = await ws.receive()
    assert msg.type is WSMsgType.CLOSED
    assert ws.closed
    assert ws.close_code == 1006


async def test_force_close_connector_still_upgrades(ws_server: WSServer) -> None:
    async with (
        ClientSession(connector=TCPConnector(force_close=True)) as session,
        session.ws_connect(ws_server.url()) as ws,
    ):
        await ws.send_str("upgraded")
        assert await ws.receive_str() == "upgraded"


async def test_max_msg_size_with_a_real_server(session: ClientSession, ws_server: WSServer) -> None:
    async with session.ws_connect(ws_server.url(f"/big?n={4 * MiB}")) as ws:
        assert len(await ws.receive_bytes()) == 4 * MiB  # exactly the limit is fine
    ws = await session.ws_connect(ws_server.url(f"/big?n={4 * MiB + 1}"))
    msg = await ws.receive()
    assert msg.type is WSMsgType.ERROR
    assert isinstance(msg.data, WebSocketError)
    assert msg.data.code == 1009
    assert ws.close_code == 1009
    assert ws.closed
    assert ws.exception() is msg.data
    assert await ws.receive() == (WSMsgType.CLOSED, None, None)
    await asyncio.sleep(0.05)
    assert ws_server.closes[-1][0] == 1009
    async with session.ws_connect(ws_server.url(f"/big?n={5 * MiB}"), max_msg_size=0) as ws:
        assert len(await ws.receive_bytes()) == 5 * MiB  # 0 lifts the limit


# -- a scripted (hostile) server ---------------------------------------------------------------
# Framing violations, bad UTF-8 and close codes, oversized messages and the deflate bomb
# (security.md WS-01..03) are tested once, in tests/hostile/test_ws.py.


@dataclass
class Peer:
    """What a scripted websocket server saw of the client."""

    frames: list[ClientFrame] = field(default_factory=list)
    dropped: bool = False  # the client closed the TCP connection after its CLOSE
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def close_code(self) -> int | None:
        closes = [f for f in self.frames if f.opcode == CLOSE]
        return closes[-1].close_code if closes else None

    async def wait(self, timeout: float = 3) -> Peer:
        await asyncio.wait_for(self.done.wait(), timeout)
        return self


def ws_url(server: ScriptedServer, path: str = "/ws") -> str:
    return server.url(path).replace("http://", "ws://")


def script(
    server: ScriptedServer,
    *sends: bytes,
    headers: Iterable[tuple[str, str]] = (),
    answer_pings: bool = False,
    answer_close: bool = False,
    handshake: Callable[[bytes], bytes] | None = None,
) -> Peer:
    """Serve a 101 (or ``handshake(request)``) followed by ``sends``, then listen."""
    peer = Peer()

    async def handler(conn: ScriptedConnection) -> None:
        request = await conn.read_request()
        head = handshake(request) if handshake else switching_protocols(request, headers=headers)
        await conn.send(head + b"".join(sends))
        try:
            await _listen(conn, peer, answer_pings, answer_close)
        finally:
            peer.done.set()

    server.serve(handler)
    return peer


async def _listen(conn: ScriptedConnection, peer: Peer, pings: bool, close: bool) -> None:
    try:
        while True:
            got = await read_frame(conn.reader)
            peer.frames.append(got)
            if got.opcode == PING and pings:
                await conn.send(frame(PONG, got.payload))
            elif got.opcode == CLOSE:
                if close:
                    await conn.send(frame(CLOSE, got.payload[:2]))
                break
        peer.dropped = await conn.reader.read() == b""
    except (asyncio.IncompleteReadError, ConnectionError):
        peer.dropped = True


async def test_ws02_utf8_split_across_fragments_is_fine(
    session: ClientSession, scripted_server: ScriptedServer
) -> None:
    euro = "€".encode()
    script(
        scripted_server,
        frame(TEXT, b"a" + euro[:1], fin=False),
        frame(PING, b"between"),  # a control frame may come between fragments
        frame(0x0, euro[1:2], fin=False),
        frame(0x0, euro[2:] + b"z"),
        frame(CLOSE, close_payload(4000, "fin ✓".encode())),
    )
    async with session.ws_connect(ws_url(scripted_server)) as ws:
        assert await ws.receive_str() == "a€z"
        msg = await ws.receive()
        assert (msg.type, msg.data, msg.extra) == (WSMsgType.CLOSE, 4000, "fin ✓")


DEFLATE = (("Sec-WebSocket-Extensions", "permessage-deflate"),)


def compressed(text: str) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return (compressor.compress(text.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


async def test_compressed_fragments_with_a_ping_between(
    session: ClientSession, scripted_server: ScriptedServer
) -> None:
    text = "squeeze me " * 500
    data = compressed(text)
    peer = script(
        scripted_server,
        frame(TEXT, data[:40], fin=False, rsv=4),
        frame(PING, b"mid"),  # wsproto alone would forget the message was compressed
        frame(0x0, data[40:]),
        frame(TEXT, compressed("again"), rsv=4),
        frame(PING, b"rsv1 on a control frame", rsv=4),
        headers=DEFLATE,
    )
    ws = await session.ws_connect(ws_url(scripted_server), compress=15)
    assert await ws.receive_str() == text
    assert await ws.receive_str() == "again"
    assert (await ws.receive()).type is WSMsgType.ERROR
    assert ws.close_code == 1002
    await peer.wait()
    assert [f.payload for f in peer.frames if f.opcode == PONG] == [b"mid"]


async def test_ws03_ping_flood_while_the_app_does_not_read(
    session: ClientSession, scripted_server: ScriptedServer
) -> None:
    received = bytearray()

    async def handler(conn: ScriptedConnection) -> None:
        request = await conn.read_request()
        await conn.send(switching_protocols(request) + frame(PING, b"") * 100_000)
        await conn.send(frame(TEXT, b"after the flood"))
        received.extend(await conn.read_until_eof())  # pongs, then our CLOSE

    scripted_server.serve(handler)
    tracemalloc.start()
    try:
        ws = await session.ws_connect(ws_url(scripted_server), timeout=ClientWSTimeout(0, 0.2))
        await asyncio.sleep(0.3)  # the application is busy elsewhere
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * MiB
    assert await ws.receive_str(timeout=5) == "after the flood"
    await ws.close(code=4000)
    await asyncio.sleep(0.05)
    # Each answer is an empty masked PONG (6 bytes); our CLOSE (8 bytes) ends the stream.
    pongs, close = received[:-8], received[-8:]
    assert close[0] == 0x88
    assert len(pongs) % 6 == 0
    assert 0 < len(pongs) // 6 <= 100_000
    assert all(pongs[i] == 0x8A for i in range(0, len(pongs), 6))


async def test_ws03_queue_is_bounded_and_reading_pauses(
    session: ClientSession, scripted_server: ScriptedServer
) -> None:
    peer = script(scripted_server, frame(PING, b"") * 100_000, answer_close=True)
    ws = await session.ws_connect(ws_url(scripted_server), autoping=False)
    await asyncio.sleep(0.2)
    state = repr(ws)
    assert "paused=True" in state
    queued = int(state.split("queued=")[1].split()[0])
    assert 0 < queued <= 2 * 1024  # HIGH_WATER / MESSAGE_COST, plus one read's worth
    cpu = time.process_time()
    await asyncio.sleep(0.3)
    assert time.process_time() - cpu < 0.15  # paused, not spinning
    for _ in range(queued + 10):  # reading resumes as the queue drains
        assert (await ws.receive(timeout=2)).type is WSMsgType.PING
    await ws.close()
    await peer.wait()


async def test_ws04_masks_are_fresh_from_os_urandom(
    session: ClientSession, scripted_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = 10_000
    seen: list[ClientFrame] = []

    async def handler(conn: ScriptedConnection) -> None:
        request = await conn.read_request()
        await conn.send(switching_protocols(request))
        seen.extend([await read_frame(conn.reader) for _ in range(count)])
        await conn.send(frame(TEXT, b"done"))
        await read_until_close(conn.reader)

    scripted_server.serve(handler)
    drawn: list[bytes] = []
    real_urandom = os.urandom

    def recording_urandom(n: int) -> bytes:
        data = real_urandom(n)
        if n == 4:
            drawn.append(data)
        return data

    ws = await session.ws_connect(ws_url(scripted_server))
    monkeypatch.setattr(os, "urandom", recording_urandom)
    for i in range(count):
        await ws.send_bytes(i.to_bytes(2, "big"))
    monkeypatch.undo()
    assert await ws.receive_str(timeout=5) == "done"
    await ws.close()
    masks = [f.mask for f in seen]
    assert masks == drawn  # every mask is a fresh CSPRNG draw
    assert len(set(masks)) > count - 10
    assert [int.from_bytes(f.payload, "big") for f in seen] == list(range(count))


def _broken(**kwargs: object) -> Callable[[bytes], bytes]:
    return lambda request: switching_protocols(request, **kwargs)  # type: ignore[arg-type]


HANDSHAKES = {
    "wrong-accept": (_broken(accept="dGhlIHNhbXBsZSBub25jZQ=="), {}, "Invalid challenge"),
    "status-200": (_broken(status="200 OK"), {}, "Invalid response status"),
    "no-upgrade-token": (_broken(connection="keep-alive"), {}, "Invalid connection"),
    "unrequested-extension": (
        _broken(headers=DEFLATE),
        {},
        "unrequested extension",
    ),
    "unrequested-subprotocol": (
        _broken(headers=[("Sec-WebSocket-Protocol", "evil")]),
        {"protocols": ("chat",)},
        "unrequested subprotocol",
    ),
    "subprotocol-without-offer": (
        _broken(headers=[("Sec-WebSocket-Protocol", "chat")]),
        {},
        "unrequested subprotocol",
    ),
    "two-subprotocols": (
        _broken(headers=[("Sec-WebSocket-Protocol", "a, b")]),
        {"protocols": ("a", "b")},
        "more than one",
    ),
    "other-extension": (
        _broken(headers=[("Sec-WebSocket-Extensions", "x-webkit-deflate-frame")]),
        {"compress": 15},
        "unrequested extension",
    ),
    "window-bits-8": (
        _broken(
            headers=[("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits=8")]
        ),
        {"compress": 15},
        "Invalid window size",
    ),
    "unknown-deflate-param": (
        _broken(headers=[("Sec-WebSocket-Extensions", "permessage-deflate; x=1")]),
        {"compress": 15},
        "Invalid permessage-deflate parameter",
    ),
}


@pytest.mark.parametrize(
    ("handshake", "kwargs", "message"), HANDSHAKES.values(), ids=HANDSHAKES.keys()
)
async def test_ws04_bad_handshakes(
    session: ClientSession,
    scripted_server: ScriptedServer,
    handshake: Callable[[bytes], bytes],
    kwargs: dict[str, object],
    message: str,
) -> None:
    peer = script(scripted_server, handshake=handshake)
    with pytest.raises(WSServerHandshakeError, match=message) as info:
        await session.ws_connect(ws_url(scripted_server), **kwargs)
    assert info.value.status in (101, 200)
    assert in_use(session) == 0
    if info.value.status == 101:
        await peer.wait()
        assert peer.dropped  # a socket that switched protocols is never pooled
    await session.close()  # a 200 with its body read may rest in the pool
    await peer.wait()
    assert peer.frames == []


async def test_connection_header_may_be_a_token_list(
    session: ClientSession, scripted_server: ScriptedServer
) -> None:
    script(scripted_server, handshake=_broken(connection="keep-alive, Upgrade"), answer_close=True)
    async with session.ws_connect(ws_url(scripted_server)) as ws:
        assert not ws.closed


async def test_ws04_unanswered_close_times_out_and_drops(
    session: ClientSession, scripted_server: ScriptedServer
) -> None:
    peer = script(scripted_server)  # reads our CLOSE, never answers
    ws = await session.ws_connect(ws_url(scripted_server), timeout=ClientWSTimeout(ws_close=0.2))
    start = time.monotonic()
    assert await ws.close()
    assert 0.15 < time.monotonic() - start < 2
    assert ws.close_code == 1006
    assert isinstance(ws.exception(), ServerTimeoutError)
    await peer.wait()
    assert peer.close_code == 1000
    assert peer.dropped


async def test_answered_close_completes_the_handshake(
    session: ClientSession, scripted_server: ScriptedServer
) -> None:
    peer = script(scripted_server, answer_close=True)
    ws = await session.ws_connect(ws_url(scripted_server))
    assert await ws.close(code=4005)
    assert ws.close_code == 4005  # the server echoed it
    assert ws.exception() is None
    await peer.wait()
    assert peer.dropped


async def test_bytes_right_after_the_101_are_not_lost(
    session: ClientSession, scripted_server: ScriptedServer
) -> None:
    sends = (frame(TEXT, b"in the same packet"), frame(BINARY, b"\x01"))
    script(scripted_server, *sends, answer_close=True)
    async with session.ws_connect(ws_url(scripted_server)) as ws:
        assert await ws.receive_str() == "in the same packet"
        assert await ws.receive_bytes() == b"\x01"


async def test_server_vanishing_without_close_is_1006(
    session: ClientSession, scripted_server: ScriptedServer
) -> None:
    async def handler(conn: ScriptedConnection) -> None:
        request = await conn.read_request()
        await conn.send(switching_protocols(request) + frame(TEXT, b"bye"))
        conn.reset()

    scripted_server.serve(handler)
    ws = await session.ws_connect(ws_url(scripted_server))
    assert await ws.receive_str() == "bye"
    assert (await ws.receive()).type is WSMsgType.CLOSED
    assert ws.close_code == 1006
    assert in_use(session) == 0


async def test_heartbeat_pings_and_stays_open_while_answered(
    session: ClientSession, scripted_server: ScriptedServer
) -> None:
    peer = script(scripted_server, answer_pings=True, answer_close=True)
    async with session.ws_connect(ws_url(scripted_server), heartbeat=0.1) as ws:
        with pytest.raises(asyncio.TimeoutError):
            await ws.receive(timeout=0.5)
        assert not ws.closed
    await peer.wait()
    assert sum(f.opcode == PING for f in peer.frames) >= 3


async def test_heartbeat_without_pong_closes_1006(
    session: ClientSession, scripted_server: ScriptedServer
) -> None:
    peer = script(scripted_server)  # silent: never answers pings
    ws = await session.ws_connect(ws_url(scripted_server), heartbeat=0.1)
    start = time.monotonic()
    msg = await ws.receive(timeout=3)
    assert msg.type is WSMsgType.ERROR
    assert isinstance(msg.data, ServerTimeoutError)
    assert 0.1 < time.monotonic() - start < 1
    assert ws.closed
    assert ws.close_code == 1006
    assert ws.exception() is msg.data
    await peer.wait()
    assert peer.frames[0].opcode == PING
    assert peer.dropped
    assert in_use(session) == 0


def test_public_websocket_names_are_exported() -> None:
    for name in (
        "ClientWSTimeout",
        "ClientWebSocketResponse",
        "WSCloseCode",
        "WSMessage",
        "WSMsgType",
        "WebSocketError",
    ):
        assert name in client.__all__
    assert ClientWSTimeout() == ClientWSTimeout(ws_receive=None, ws_close=None)
    assert json.loads(client.WSMessage(WSMsgType.TEXT, '{"a": 1}', None).data) == {"a": 1}


async def test_the_http_protocol_keeps_bytes_that_race_the_handover() -> None:
    """Between the 101 and ``set_protocol`` the HTTP protocol keeps, not poisons, new bytes."""
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    transport, http = await loop.create_connection(lambda: ResponseProtocol(loop), sock=ours)
    completed: list[bool] = []
    http.on_complete = completed.append
    try:
        head = http.start_exchange(
            "GET",
            read_bufsize=2**16,
            auto_decompress=True,
            limits=(8190, 8190, 128),
            expect_upgrade=True,
        )
        theirs.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nearly")
        response_head, _ = await head
        assert response_head.upgrade
        theirs.sendall(b" late")  # a separate read, before anyone takes the socket over
        await asyncio.sleep(0.05)
        assert http.take_trailing() == b"early late"
        assert completed == []  # neither pooled nor closed: the requester owns it now
        assert not transport.is_closing()
    finally:
        transport.close()
        theirs.close()
        await http.closed
