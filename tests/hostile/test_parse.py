"""PARSE-01..12: response framing and parsing, end to end through a session.

Each case: the request fails with a protocol error, the client closes that
connection (the server sees its FIN), nothing is pooled, and the next request
on the same session gets its own answer on a fresh connection.
"""

from __future__ import annotations

import asyncio

import pytest
from servers import ReadRequest, ScriptedConnection, Send, Sleep, http_response
from servers.faults import ExpectClose, FaultServer, StreamForever, chunked, reply

from client import ClientSession

from .support import assert_pool_healthy, assert_protocol_error, fetch, pool_stats

OK = b"HTTP/1.1 200 OK\r\n"
CHUNKED = OK + b"Transfer-Encoding: chunked\r\n\r\n"


def head(*fields: bytes) -> bytes:
    return OK + b"".join(f + b"\r\n" for f in fields) + b"\r\n"


async def check(session: ClientSession, server: FaultServer, wire: bytes, *, split: int = 0) -> str:
    """Serve ``wire`` (in two writes if ``split``); the request must fail cleanly."""
    if split:
        server.faults(
            [ReadRequest(), Send(wire[:split]), Sleep(0.02), Send(wire[split:]), ExpectClose()]
        )
    else:
        server.faults(reply(wire))
    message = await assert_protocol_error(session, server.url())
    await assert_pool_healthy(session, server)
    return message


# -- PARSE-01 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "wire",
    [
        head(b"Content-Length: 4", b"Transfer-Encoding: chunked") + b"4\r\nabcd\r\n0\r\n\r\n",
        head(b"Transfer-Encoding: chunked", b"Content-Length: 4") + b"4\r\nabcd\r\n0\r\n\r\n",
    ],
    ids=["cl-te", "te-cl"],
)
async def test_PARSE_01_cl_plus_te(
    session: ClientSession, fault_server: FaultServer, wire: bytes
) -> None:
    await check(session, fault_server, wire)


# -- PARSE-02 ---------------------------------------------------------------------------------

BAD_CL = {
    "list": [b"Content-Length: 5, 6"],
    "two-different": [b"Content-Length: 5", b"Content-Length: 6"],
    "plus": [b"Content-Length: +5"],
    "minus": [b"Content-Length: -1"],
    "hex": [b"Content-Length: 0x5"],
    "underscore": [b"Content-Length: 1_0"],
    "arabic-indic": ["Content-Length: \u0665".encode()],
    "30-digits": [b"Content-Length: " + b"1" * 30],
    # "may be accepted" per security.md; llhttp refuses any duplicate: stricter, kept.
    "two-identical": [b"Content-Length: 5", b"Content-Length: 5"],
}


@pytest.mark.parametrize("fields", BAD_CL.values(), ids=BAD_CL.keys())
async def test_PARSE_02_malformed_content_length(
    session: ClientSession, fault_server: FaultServer, fields: list[bytes]
) -> None:
    await check(session, fault_server, head(*fields) + b"hello")


# -- PARSE-03 ---------------------------------------------------------------------------------

BAD_TE = {
    "chunked-identity": [b"Transfer-Encoding: chunked, identity"],
    "xchunked": [b"Transfer-Encoding: xchunked"],
    "chunked-twice": [b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"],
    "obs-fold": [b"Transfer-Encoding:", b" chunked"],
    "gzip-chunked": [b"Transfer-Encoding: gzip, chunked"],
}


@pytest.mark.parametrize("fields", BAD_TE.values(), ids=BAD_TE.keys())
async def test_PARSE_03_obfuscated_transfer_encoding(
    session: ClientSession, fault_server: FaultServer, fields: list[bytes]
) -> None:
    await check(session, fault_server, head(*fields) + chunked(b"hello"))


# -- PARSE-04 ---------------------------------------------------------------------------------

BAD_CHUNKS = {
    "bare-lf": b"5\nhello\r\n0\r\n\r\n",
    "space-after-size": b"5 \r\nhello\r\n0\r\n\r\n",
    "0x-prefix": b"0x5\r\nhello\r\n0\r\n\r\n",
    "negative": b"-1\r\nhello\r\n0\r\n\r\n",
    "17-hex-digits": b"10000000000000005\r\nhello\r\n0\r\n\r\n",
    "data-then-XX": b"5\r\nhelloXX0\r\n\r\n",
    "ext-bare-cr": b"5;a=b\rc\r\nhello\r\n0\r\n\r\n",
    "ext-bare-lf": b"5;a\n=b\r\nhello\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("split", [False, True], ids=["one-write", "head-then-body"])
@pytest.mark.parametrize("body", BAD_CHUNKS.values(), ids=BAD_CHUNKS.keys())
async def test_PARSE_04_bad_chunk_framing(
    session: ClientSession, fault_server: FaultServer, body: bytes, split: bool
) -> None:
    await check(session, fault_server, CHUNKED + body, split=len(CHUNKED) if split else 0)


# -- PARSE-05 ---------------------------------------------------------------------------------


async def test_PARSE_05_chunk_extension_flood(
    session: ClientSession, fault_server: FaultServer
) -> None:
    # 1-byte chunks, each with a 16 KiB extension, streamed until the client leaves.
    chunk = b"1;" + b"e" * 16384 + b"\r\nx\r\n"
    fault_server.faults([ReadRequest(), Send(CHUNKED), StreamForever(chunk)])
    message = await assert_protocol_error(session, fault_server.url())
    assert "chunk-size line longer than 8190" in message
    async with asyncio.timeout(3):  # the streaming server notices the client left
        while fault_server.connections[0].error is None:
            await asyncio.sleep(0.005)
    await assert_pool_healthy(session, fault_server, closed=())


# -- PARSE-06 ---------------------------------------------------------------------------------

BAD_TRAILERS = {
    "1000-fields": b"T: 1\r\n" * 1000,
    "1MiB": b"T: " + b"v" * (1 << 20) + b"\r\n",
    "over-64KiB-in-fields": (b"T: " + b"v" * 8000 + b"\r\n") * 9,
    "nul": b"T: a\x00b\r\n",
}


@pytest.mark.parametrize("trailers", BAD_TRAILERS.values(), ids=BAD_TRAILERS.keys())
async def test_PARSE_06_hostile_trailers(
    session: ClientSession, fault_server: FaultServer, trailers: bytes
) -> None:
    wire = CHUNKED + b"5\r\nhello\r\n0\r\n" + trailers + b"\r\n"
    await check(session, fault_server, wire, split=len(CHUNKED))


async def test_PARSE_06_trailers_never_reach_headers(
    session: ClientSession, fault_server: FaultServer
) -> None:
    trailers = b"X-Trailer: t\r\nSet-Cookie: t=1\r\n"
    fault_server.faults(
        [ReadRequest(), Send(CHUNKED + b"5\r\nhello\r\n0\r\n" + trailers + b"\r\n")]
    )
    async with session.get(fault_server.url()) as resp:
        assert await resp.read() == b"hello"
        assert "X-Trailer" not in resp.headers
        assert "Content-Length" not in resp.headers
    assert len(session.cookie_jar) == 0


# -- PARSE-07 ---------------------------------------------------------------------------------

CTL_FIELDS = {
    "nul": head(b"X: a\x00b", b"Content-Length: 0"),
    "bare-cr": head(b"X: a\rTransfer-Encoding: chunked", b"Content-Length: 0"),
    "ctl-01": head(b"X: a\x01b", b"Content-Length: 0"),
    "del": head(b"X: a\x7fb", b"Content-Length: 0"),
    "cr-x-ends-block": OK + b"Content-Length: 0\r\n\rX\r\n\r\n",
}


@pytest.mark.parametrize("wire", CTL_FIELDS.values(), ids=CTL_FIELDS.keys())
async def test_PARSE_07_control_bytes_in_fields(
    session: ClientSession, fault_server: FaultServer, wire: bytes
) -> None:
    await check(session, fault_server, wire)


# -- PARSE-08 ---------------------------------------------------------------------------------

LENIENT = {
    "bare-lf-head": b"HTTP/1.1 200 OK\nContent-Length: 5\n\nhello",
    "bare-lf-after-field": OK + b"Content-Length: 5\n\r\nhello",
    "space-before-colon": head(b"Content-Length : 5") + b"hello",
    "leading-space-first-field": OK + b" Content-Length: 5\r\n\r\nhello",
}


@pytest.mark.parametrize("wire", LENIENT.values(), ids=LENIENT.keys())
async def test_PARSE_08_lenient_line_endings(
    session: ClientSession, fault_server: FaultServer, wire: bytes
) -> None:
    await check(session, fault_server, wire)


# -- PARSE-09 ---------------------------------------------------------------------------------

OBS_FOLD = {
    "plain-field": head(b"X-A: 1", b" 2", b"Content-Length: 0"),
    "tab": head(b"X-A: 1", b"\t2", b"Content-Length: 0"),
    "content-length": head(b"Content-Length:", b" 5") + b"hello",
    "transfer-encoding": head(b"Transfer-Encoding:", b" chunked") + chunked(b"hello"),
}


@pytest.mark.parametrize("wire", OBS_FOLD.values(), ids=OBS_FOLD.keys())
async def test_PARSE_09_obs_fold(
    session: ClientSession, fault_server: FaultServer, wire: bytes
) -> None:
    # Strict policy chosen: obs-fold is an error everywhere (never unfolded).
    await check(session, fault_server, wire)


# -- PARSE-10 ---------------------------------------------------------------------------------

BAD_STATUS = {
    "2-digit-status": b"HTTP/1.1 99 X\r\nContent-Length: 0\r\n\r\n",
    "4-digit-status": b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
    "negative-status": b"HTTP/1.1 -1 X\r\nContent-Length: 0\r\n\r\n",
    "version-1.10": b"HTTP/1.10 200 OK\r\nContent-Length: 0\r\n\r\n",
    "version-2.0": b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
    "http-0.9-body": b"<html><body>no status line</body></html>",
    "cr-in-reason": b"HTTP/1.1 200 O\rK\r\nContent-Length: 0\r\n\r\n",
}


@pytest.mark.parametrize("wire", BAD_STATUS.values(), ids=BAD_STATUS.keys())
async def test_PARSE_10_malformed_status_line(
    session: ClientSession, fault_server: FaultServer, wire: bytes
) -> None:
    await check(session, fault_server, wire)


# -- PARSE-11 ---------------------------------------------------------------------------------


async def test_PARSE_11_informational_flood(
    session: ClientSession, fault_server: FaultServer
) -> None:
    cont = b"HTTP/1.1 100 Continue\r\n\r\n"
    message = await check(session, fault_server, cont * 1000 + http_response(200, b"late"))
    assert "more than 10 informational" in message


async def test_PARSE_11_ten_informational_are_fine(
    session: ClientSession, fault_server: FaultServer
) -> None:
    cont = b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"
    fault_server.faults([ReadRequest(), Send(cont * 10 + http_response(200, b"final"))])
    assert await fetch(session, fault_server.url()) == b"final"


async def test_PARSE_11_unrequested_101(session: ClientSession, fault_server: FaultServer) -> None:
    wire = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
    message = await check(session, fault_server, wire + b"\x81\x02hi")
    assert "101" in message


async def test_PARSE_11_expect_continue_answered_417(
    session: ClientSession, fault_server: FaultServer
) -> None:
    # The server reads only the head, refuses at once, and keeps listening.
    fault_server.faults([_ReadHead(), Send(http_response(417, b"no")), ExpectClose()])
    body = b"B" * 100_000
    async with session.post(fault_server.url(), data=body, expect100=True) as resp:
        assert resp.status == 417
        assert await resp.read() == b"no"
    # The body was never sent, and the connection (which may still expect it) was closed.
    await fault_server.wait_closed_by_client(0)
    assert b"B" not in fault_server.after_fault.get(0, b"")
    await assert_pool_healthy(session, fault_server)


class _ReadHead:
    """Read a request head only (up to CRLF CRLF), leaving any body unread."""

    async def run(self, conn: ScriptedConnection) -> None:
        conn.requests.append(await conn.reader.readuntil(b"\r\n\r\n"))


# -- PARSE-12 ---------------------------------------------------------------------------------

STRAY = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"


@pytest.mark.parametrize(
    ("method", "status"),
    [("HEAD", 200), ("GET", 204), ("GET", 304)],
    ids=["head", "204", "304"],
)
async def test_PARSE_12_stray_bytes_after_bodiless_response(
    session: ClientSession, fault_server: FaultServer, method: str, status: int
) -> None:
    # Content-Length: 10 plus 10 stray bytes that look like a response of their own.
    first = http_response(status, headers=[("Content-Length", "10")], content_length=False)
    fault_server.faults(reply(first + STRAY[:10]), reply(first + STRAY))
    for _ in range(2):
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with session.request(method, fault_server.url()) as resp:
            assert resp.status == status
            assert await resp.read() == b""
        assert loop.time() - started < 1  # completed without waiting for a body
    await assert_pool_healthy(session, fault_server, closed=(0, 1))


async def test_PARSE_12_unsolicited_bytes_on_an_idle_connection(
    session: ClientSession, fault_server: FaultServer
) -> None:
    fault_server.faults(
        [ReadRequest(), Send(http_response(200, b"one")), Sleep(0.05), Send(STRAY), ExpectClose()]
    )
    assert await fetch(session, fault_server.url()) == b"one"
    assert pool_stats(session)["idle"] == 1
    await assert_pool_healthy(session, fault_server)  # the poisoned idle socket was dropped
