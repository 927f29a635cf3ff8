"""The codec driven through ResponseProtocol over real sockets, and flow control.

Framing edge cases (HEAD, 1xx, 204/304, read-to-close, chunked, truncation,
stray bytes, CL+TE) and whether the connection is reused afterwards, which is
what the server-side connection count tells.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Callable
from typing import Any

import pytest
from servers import (
    Close,
    CountingServer,
    ReadRequest,
    ScriptedConnection,
    ScriptedServer,
    Send,
    Sleep,
    Step,
    http_response,
)

from client import (
    ClientPayloadError,
    ClientResponseError,
    ClientSession,
    ClientTimeout,
    TCPConnector,
)

FRESH = http_response(200, b"fresh")
SERVE_FRESH: list[Step] = [ReadRequest(), Send(FRESH)]
STALE = http_response(200, b"stale")  # what a wrongly reused connection would answer
# asyncio's selector transports read at most this much per data_received.
MAX_NETWORK_READ = 256 * 1024


async def fetch(session: ClientSession, url: str, **kwargs: Any) -> bytes:
    async with session.get(url, **kwargs) as resp:
        assert resp.status == 200
        return await resp.read()


async def wait_until(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.002)


def chunked(*pieces: bytes) -> bytes:
    """A chunked body: one chunk per piece, then the last chunk."""
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"


# -- framing ---------------------------------------------------------------------------------


async def test_head_with_content_length_returns_at_once(counting_server: CountingServer) -> None:
    async with ClientSession() as session:
        async with asyncio.timeout(1), session.head(counting_server.url()) as resp:
            assert resp.headers["Content-Length"] == "2"
            assert await resp.read() == b""
            assert resp.content.at_eof()
        assert await fetch(session, counting_server.url()) == b"ok"
    assert counting_server.stats.connections == 1  # and the connection was reused


async def test_informational_responses_before_the_final_one(
    scripted_server: ScriptedServer,
) -> None:
    scripted_server.script(
        [
            ReadRequest(),
            Send(b"HTTP/1.1 100 Continue\r\n\r\n"),
            Send(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"),
            Send(http_response(200, b"final", headers=[("X-Final", "1")])),
            ReadRequest(),
            Send(http_response(200, b"again")),
        ]
    )
    async with ClientSession() as session:
        async with session.get(scripted_server.url()) as resp:
            assert resp.status == 200
            assert resp.headers["X-Final"] == "1"
            assert "Link" not in resp.headers
            assert await resp.read() == b"final"
        assert await fetch(session, scripted_server.url()) == b"again"
    assert scripted_server.accepted == 1


@pytest.mark.parametrize("status", [204, 304])
async def test_bodyless_status_with_stray_bytes_is_not_reused(
    scripted_server: ScriptedServer, status: int
) -> None:
    head = http_response(status, content_length=False)
    scripted_server.script(
        [ReadRequest(), Send(head + b"STRAY BYTES"), ReadRequest(), Send(STALE)], SERVE_FRESH
    )
    connector = TCPConnector()
    async with ClientSession(connector=connector) as session:
        async with session.get(scripted_server.url()) as resp:
            assert resp.status == status
            assert await resp.read() == b""
        assert await fetch(session, scripted_server.url()) == b"fresh"
        assert connector.stats()["in_use"] == 0
    assert scripted_server.accepted == 2


@pytest.mark.parametrize("status", [204, 304])
async def test_bodyless_status_keeps_a_clean_connection(
    counting_server: CountingServer, status: int
) -> None:
    async with ClientSession() as session:
        async with session.get(counting_server.url(f"/?status={status}")) as resp:
            assert resp.status == status
            assert await resp.read() == b""
        assert await fetch(session, counting_server.url()) == b"ok"
    assert counting_server.stats.connections == 1


async def test_close_delimited_body_is_read_to_eof(scripted_server: ScriptedServer) -> None:
    scripted_server.script(
        [
            ReadRequest(),
            Send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart one, "),
            Sleep(0.01),
            Send(b"part two"),
            Close(),
        ],
        SERVE_FRESH,
    )
    async with ClientSession() as session:
        assert await fetch(session, scripted_server.url()) == b"part one, part two"
        assert await fetch(session, scripted_server.url()) == b"fresh"
    assert scripted_server.accepted == 2


async def test_chunked_body_and_reuse(scripted_server: ScriptedServer) -> None:
    body = chunked(b"hello", b" ", b"world")
    scripted_server.script(
        [
            ReadRequest(),
            Send(CHUNKED_HEAD + b"\r\n" + body[:9]),
            Sleep(0.01),
            Send(body[9:]),
            ReadRequest(),
            Send(http_response(200, b"again")),
        ]
    )
    async with ClientSession() as session:
        assert await fetch(session, scripted_server.url()) == b"hello world"
        assert await fetch(session, scripted_server.url()) == b"again"
    assert scripted_server.accepted == 1


async def test_iter_chunks_reports_http_chunk_ends(scripted_server: ScriptedServer) -> None:
    scripted_server.script(
        [
            ReadRequest(),
            Send(CHUNKED_HEAD + b"\r\n" + b"3\r\nabc\r\n"),
            Sleep(0.02),
            Send(b"2\r\nde\r\n0\r\n\r\n"),
        ]
    )
    async with ClientSession() as session, session.get(scripted_server.url()) as resp:
        chunks = [c async for c in resp.content.iter_chunks()]
    assert chunks == [(b"abc", True), (b"de", True)]  # aiohttp's answer


async def test_gzip_inside_chunked(scripted_server: ScriptedServer) -> None:
    original = b"".join(b"record %d\n" % i for i in range(5000))
    compressed = gzip.compress(original)
    third = len(compressed) // 3
    pieces = compressed[:third], compressed[third : 2 * third], compressed[2 * third :]
    head = CHUNKED_HEAD + b"Content-Encoding: gzip\r\n\r\n"
    scripted_server.script([ReadRequest(), Send(head + chunked(*pieces))])
    async with ClientSession() as session, session.get(scripted_server.url()) as resp:
        assert await resp.read() == original
        assert resp.content.total_raw_bytes == len(compressed)


@pytest.mark.parametrize(
    "truncated",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10,
        CHUNKED_HEAD + b"\r\n" + b"a\r\n0123456789\r\n5\r\nab",
    ],
    ids=["content-length", "chunked"],
)
async def test_body_cut_short_by_fin_is_a_payload_error(
    scripted_server: ScriptedServer, truncated: bytes
) -> None:
    scripted_server.script([ReadRequest(), Send(truncated), Close()], SERVE_FRESH)
    connector = TCPConnector()
    async with ClientSession(connector=connector) as session:
        async with session.get(scripted_server.url()) as resp:
            with pytest.raises(ClientPayloadError):
                await resp.read()
        assert connector.stats() == {"in_use": 0, "idle": 0, "waiting": 0}
        assert await fetch(session, scripted_server.url()) == b"fresh"


@pytest.mark.parametrize("same_segment", [True, False], ids=["with-response", "while-idle"])
async def test_unsolicited_bytes_never_answer_the_next_request(
    scripted_server: ScriptedServer, same_segment: bool
) -> None:
    first = http_response(200, b"first")
    evil = http_response(200, b"EVIL!")
    sends = [Send(first + evil)] if same_segment else [Send(first), Sleep(0.02), Send(evil)]
    scripted_server.script([ReadRequest(), *sends, ReadRequest(), Send(STALE)], SERVE_FRESH)
    connector = TCPConnector()
    async with ClientSession(connector=connector) as session:
        assert await fetch(session, scripted_server.url()) == b"first"
        await wait_until(lambda: connector.stats()["idle"] == 0)  # poisoned and dropped
        assert await fetch(session, scripted_server.url()) == b"fresh"
    assert scripted_server.accepted == 2


async def test_ambiguous_framing_fails_and_closes_the_connection(
    scripted_server: ScriptedServer,
) -> None:
    peer_gone = asyncio.Event()

    async def handler(conn: ScriptedConnection) -> None:
        if conn.index > 0:
            await conn.read_request()
            await conn.send(FRESH)
            return
        await conn.read_request()
        await conn.send(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
            + chunked(b"hello")
        )
        try:
            await conn.read_until_eof()
        finally:
            peer_gone.set()

    scripted_server.serve(handler)
    connector = TCPConnector()
    async with ClientSession(connector=connector) as session:
        with pytest.raises(ClientResponseError) as info:
            await session.get(scripted_server.url())
        assert info.value.status == 400
        await asyncio.wait_for(peer_gone.wait(), 1)  # the client closed the socket
        assert connector.stats() == {"in_use": 0, "idle": 0, "waiting": 0}
        assert await fetch(session, scripted_server.url()) == b"fresh"
    assert scripted_server.accepted == 2


# -- flow control -----------------------------------------------------------------------------


async def test_large_body_read_slowly_is_bounded_and_intact(
    counting_server: CountingServer,
) -> None:
    size = 20 * 1024 * 1024
    bufsize = 64 * 1024
    bound = 2 * bufsize + MAX_NETWORK_READ
    async with (
        ClientSession(read_bufsize=bufsize) as session,
        session.get(counting_server.url(f"/?size={size}")) as resp,
    ):
        assert resp.connection is not None
        transport = resp.connection.transport
        assert transport is not None
        stream = resp.content
        received = peak = reads = 0
        saw_pause = False
        while True:
            # Buffered bytes peak right before a read: they only grow in between.
            peak = max(peak, stream.total_raw_bytes - received)
            saw_pause = saw_pause or not transport.is_reading()
            chunk = await stream.read(16 * 1024)
            if not chunk:
                break
            assert chunk.count(b"x") == len(chunk)
            received += len(chunk)
            reads += 1
            if reads % 64 == 0:
                await asyncio.sleep(0.001)  # a slow consumer
    assert received == size
    assert saw_pause
    assert peak <= bound


async def test_sock_read_does_not_fire_while_we_pause_reading(
    counting_server: CountingServer,
) -> None:
    size = 2 * 1024 * 1024
    timeout = ClientTimeout(sock_read=0.05)
    async with (
        ClientSession(read_bufsize=16 * 1024, timeout=timeout) as session,
        session.get(counting_server.url(f"/?size={size}")) as resp,
    ):
        received = len(await resp.content.read(1024))
        for _ in range(3):
            await asyncio.sleep(0.12)  # the consumer is slow, not the server
            received += len(await resp.content.read(1024))
        received += len(await resp.read())
    assert received == size
