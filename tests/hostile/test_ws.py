"""WS-01..04: a hostile websocket server - framing, UTF-8 and close codes, sizes and
floods, masks and handshakes.

The server is scripted: a 101 for the client's key, then hand-made frames
(``servers.ws.frame``), then it records every frame the client sends back and
whether the client dropped the TCP connection.
"""

from __future__ import annotations

import asyncio
import os
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field

import pytest
from servers import ScriptedConnection
from servers.faults import FaultServer
from servers.ws import ClientFrame, close_payload, frame, read_frame, switching_protocols

from client import (
    ClientSession,
    ClientWSTimeout,
    ServerTimeoutError,
    WebSocketError,
    WSMsgType,
    WSServerHandshakeError,
)

from .conftest import QUICK
from .support import watch_loop

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA
MiB = 1 << 20
DEFLATE = (("Sec-WebSocket-Extensions", "permessage-deflate"),)


@dataclass
class Peer:
    """What the scripted server saw of the client."""

    frames: list[ClientFrame] = field(default_factory=list)
    dropped: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def close_code(self) -> int | None:
        closes = [f for f in self.frames if f.opcode == CLOSE]
        return closes[-1].close_code if closes else None

    async def wait(self) -> Peer:
        await asyncio.wait_for(self.done.wait(), 3)
        return self


def serve(
    server: FaultServer,
    *sends: bytes,
    headers: Iterable[tuple[str, str]] = (),
    handshake: Callable[[bytes], bytes] | None = None,
) -> Peer:
    peer = Peer()

    async def handler(conn: ScriptedConnection) -> None:
        request = await conn.read_request()
        head = handshake(request) if handshake else switching_protocols(request, headers=headers)
        await conn.send(head + b"".join(sends))
        try:
            while True:
                got = await read_frame(conn.reader)
                peer.frames.append(got)
                if got.opcode == CLOSE:
                    break
            peer.dropped = await conn.reader.read() == b""
        except (asyncio.IncompleteReadError, ConnectionError):
            peer.dropped = True
        finally:
            peer.done.set()

    server.serve(handler)
    return peer


def ws_url(server: FaultServer) -> str:
    return server.url("/ws").replace("http://", "ws://")


@pytest.fixture
async def ws_session() -> AsyncIterator[ClientSession]:
    async with ClientSession(timeout=QUICK) as session:
        yield session


async def assert_fails(
    session: ClientSession, server: FaultServer, peer: Peer, code: int, **kwargs: object
) -> list[object]:
    """The client reports ``code``, sends CLOSE ``code`` and drops the socket at once.

    Returns the data of the messages delivered before the violation.
    """
    started = time.monotonic()
    ws = await session.ws_connect(ws_url(server), **kwargs)
    before: list[object] = []
    msg = await ws.receive(timeout=5)
    while msg.type is not WSMsgType.ERROR:  # messages before the violation come first
        assert msg.type in (WSMsgType.TEXT, WSMsgType.BINARY), msg
        before.append(msg.data)
        msg = await ws.receive(timeout=5)
    assert isinstance(msg.data, WebSocketError)
    assert msg.data.code == code
    assert ws.close_code == code
    assert ws.closed
    assert await ws.receive() == (WSMsgType.CLOSED, None, None)
    await peer.wait()
    assert peer.close_code == code
    assert peer.dropped  # without waiting for the close handshake (ws_close is 10 s)
    assert time.monotonic() - started < 3
    assert not await ws.close()
    connector = session.connector
    assert connector is not None
    assert connector.stats()["in_use"] == 0
    return before


# -- WS-01 ----------------------------------------------------------------------------------

VIOLATIONS = {
    "masked": frame(TEXT, b"hi", mask=b"abcd"),
    "rsv1-without-deflate": frame(TEXT, b"hi", rsv=4),
    "rsv2": frame(TEXT, b"hi", rsv=2),
    "opcode-0x3": frame(0x3, b"x"),
    "opcode-0xB": frame(0xB, b"x"),
    "ping-126-bytes": frame(PING, b"p" * 126),
    "fragmented-ping": frame(PING, b"p", fin=False),
    "continuation-without-start": frame(0x0, b"x"),
    "text-inside-fragmented-text": frame(TEXT, b"a", fin=False) + frame(TEXT, b"b"),
    "64-bit-length-top-bit": frame(BINARY, length=1 << 63),
}


@pytest.mark.parametrize("bad", VIOLATIONS.values(), ids=VIOLATIONS.keys())
async def test_WS_01_framing_violations(
    ws_session: ClientSession, fault_server: FaultServer, bad: bytes
) -> None:
    peer = serve(fault_server, frame(TEXT, b"before"), bad, frame(TEXT, b"never parsed"))
    await assert_fails(ws_session, fault_server, peer, 1002)


# -- WS-02 ----------------------------------------------------------------------------------

BAD_TEXT_AND_CLOSE = {
    "invalid-utf8": (frame(TEXT, b"ok \xff"), 1007),
    "invalid-utf8-split": (frame(TEXT, b"\xe2\x82", fin=False) + frame(0x0, b"\x28"), 1007),
    "truncated-utf8": (frame(TEXT, b"\xe2\x82"), 1007),
    "invalid-utf8-close-reason": (frame(CLOSE, close_payload(1000, b"\xc3\x28")), 1007),
    "close-1005": (frame(CLOSE, close_payload(1005)), 1002),
    "close-1006": (frame(CLOSE, close_payload(1006)), 1002),
    "close-1015": (frame(CLOSE, close_payload(1015)), 1002),
    "close-999": (frame(CLOSE, close_payload(999)), 1002),
    "close-5000": (frame(CLOSE, close_payload(5000)), 1002),
    "close-one-byte": (frame(CLOSE, b"\x03"), 1002),
}


@pytest.mark.parametrize(("bad", "code"), BAD_TEXT_AND_CLOSE.values(), ids=BAD_TEXT_AND_CLOSE)
async def test_WS_02_utf8_and_close_codes(
    ws_session: ClientSession, fault_server: FaultServer, bad: bytes, code: int
) -> None:
    peer = serve(fault_server, frame(TEXT, b"first"), bad)
    assert await assert_fails(ws_session, fault_server, peer, code) == ["first"]


# -- WS-03 ----------------------------------------------------------------------------------


def deflate_bomb() -> bytes:
    """About 1 MiB of permessage-deflate data inflating to 1 GiB of zeros."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(MiB)
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_SYNC_FLUSH)
    steady = compressor.compress(zeros) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return (first + steady * 1023)[:-4]  # RFC 7692 §7.2.1: without the 00 00 ff ff tail


@pytest.mark.parametrize("case", ["5MiB-message", "5MiB-in-fragments", "1e6-empty-fragments",
                                  "deflate-bomb"])  # fmt: skip
async def test_WS_03_oversized_messages(
    ws_session: ClientSession, fault_server: FaultServer, case: str
) -> None:
    chunk = b"\x01" * (64 * 1024)
    sends = {
        "5MiB-message": [frame(BINARY, length=5 * MiB) + b"\0" * 1000],  # the header suffices
        "5MiB-in-fragments": [frame(BINARY, chunk, fin=False),
                              *[frame(0x0, chunk, fin=False)] * 79, frame(0x0, chunk)],
        "1e6-empty-fragments": [frame(TEXT, b"", fin=False) + frame(0x0, b"", fin=False) * 10**6],
        "deflate-bomb": [frame(BINARY, deflate_bomb(), rsv=4)],
    }[case]  # fmt: skip
    headers = DEFLATE if case == "deflate-bomb" else ()
    peer = serve(fault_server, *sends, headers=headers)
    async with watch_loop() as seen:
        await assert_fails(ws_session, fault_server, peer, 1009, compress=15)
    assert seen["rss_growth"] < 64 * MiB


async def test_WS_03_ping_flood_while_not_reading(
    ws_session: ClientSession, fault_server: FaultServer
) -> None:
    got = bytearray()

    async def handler(conn: ScriptedConnection) -> None:
        request = await conn.read_request()
        await conn.send(switching_protocols(request) + frame(PING, b"") * 100_000)
        await conn.send(frame(TEXT, b"after the flood"))
        got.extend(await conn.read_until_eof())

    fault_server.serve(handler)
    async with watch_loop() as seen:
        ws = await ws_session.ws_connect(
            ws_url(fault_server), timeout=ClientWSTimeout(ws_close=0.2)
        )
        await asyncio.sleep(0.5)  # the application reads nothing meanwhile
        cpu = time.process_time()
        await asyncio.sleep(0.3)  # the flood is parsed and answered by now
        busy = time.process_time() - cpu
    assert seen["rss_growth"] < 64 * MiB
    assert busy < 0.1  # no busy loop while the application does not read
    assert await ws.receive_str(timeout=5) == "after the flood"
    await ws.close(code=4000)
    await asyncio.sleep(0.05)
    pongs = got[:-8]  # then our CLOSE
    assert len(pongs) % 6 == 0
    assert 0 < len(pongs) // 6 <= 100_000  # coalesced: at most one PONG per ping


# -- WS-04 ----------------------------------------------------------------------------------


async def test_WS_04_masks_are_fresh_and_random(
    ws_session: ClientSession, fault_server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = 10_000
    seen: list[ClientFrame] = []

    async def handler(conn: ScriptedConnection) -> None:
        request = await conn.read_request()
        await conn.send(switching_protocols(request))
        seen.extend([await read_frame(conn.reader) for _ in range(count)])
        await conn.send(frame(CLOSE, close_payload(1000)))
        await conn.read_until_eof()

    fault_server.serve(handler)
    drawn: list[bytes] = []
    real = os.urandom

    def recording(n: int) -> bytes:
        data = real(n)
        drawn.append(data)
        return data

    ws = await ws_session.ws_connect(ws_url(fault_server))
    monkeypatch.setattr(os, "urandom", recording)
    for i in range(count):
        await ws.send_bytes(i.to_bytes(2, "big"))
    monkeypatch.undo()
    assert (await ws.receive(timeout=5)).type is WSMsgType.CLOSE
    masks = [f.mask for f in seen]
    assert masks == drawn[:count]  # one CSPRNG draw per frame
    assert len(set(masks)) > count - 10  # non-constant
    assert [int.from_bytes(f.payload, "big") for f in seen] == list(range(count))


def broken(**kwargs: object) -> Callable[[bytes], bytes]:
    return lambda request: switching_protocols(request, **kwargs)  # type: ignore[arg-type]


HANDSHAKES: dict[str, tuple[Callable[[bytes], bytes], dict[str, object]]] = {
    "wrong-accept": (broken(accept="dGhlIHNhbXBsZSBub25jZQ=="), {}),
    "status-200": (broken(status="200 OK"), {}),
    "unrequested-extension": (broken(headers=DEFLATE), {}),
    "unrequested-subprotocol": (broken(headers=[("Sec-WebSocket-Protocol", "evil")]),
                                {"protocols": ("chat",)}),
}  # fmt: skip


@pytest.mark.parametrize("case", HANDSHAKES)
async def test_WS_04_bad_handshakes(
    ws_session: ClientSession, fault_server: FaultServer, case: str
) -> None:
    handshake, kwargs = HANDSHAKES[case]
    peer = serve(fault_server, handshake=handshake)
    with pytest.raises(WSServerHandshakeError):
        await ws_session.ws_connect(ws_url(fault_server), **kwargs)
    connector = ws_session.connector
    assert connector is not None
    assert connector.stats()["in_use"] == 0
    await ws_session.close()
    await peer.wait()
    assert peer.frames == []  # not one frame went to a server that failed the handshake


async def test_WS_04_unanswered_close_times_out(
    ws_session: ClientSession, fault_server: FaultServer
) -> None:
    peer = serve(fault_server)  # reads our CLOSE, never answers it
    ws = await ws_session.ws_connect(ws_url(fault_server), timeout=ClientWSTimeout(ws_close=0.3))
    started = time.monotonic()
    assert await ws.close()
    assert 0.25 < time.monotonic() - started < 1.5
    assert ws.close_code == 1006
    assert isinstance(ws.exception(), ServerTimeoutError)
    await peer.wait()
    assert peer.close_code == 1000
    assert peer.dropped
