"""CONN-01..03: keep-alive races, truncated bodies, bytes beyond the message."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from servers import Close, ReadRequest, Reset, Send, Sleep, Step, http_response
from servers.faults import AwaitBytes, ExpectClose, FaultServer, SendOK, reply

from client import (
    ClientOSError,
    ClientPayloadError,
    ClientSession,
    ServerDisconnectedError,
)
from jobs import SaveMode, iter_requests, job_from_urls
from runner.fetch import FetchSettings, fetch_attempt
from runner.sinks.bodies import BodyStore

from .support import assert_pool_healthy, fetch, pool_stats

# -- CONN-01 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("close", [Close(), Reset()], ids=["fin", "rst"])
async def test_CONN_01_keepalive_closed_as_it_is_reused(
    session: ClientSession, fault_server: FaultServer, close: Close | Reset
) -> None:
    # Connection 0 answers once, then hangs up the moment the next request arrives.
    race: list[Step] = [ReadRequest(), SendOK(), AwaitBytes(), close]
    fault_server.faults(race, race)
    # GET (idempotent, nothing of the answer arrived): retried once on a new socket.
    async with session.get(fault_server.url("/1")) as resp:
        assert resp.headers["X-Conn"] == "0"
        await resp.read()
    async with session.get(fault_server.url("/2")) as resp:
        assert resp.status == 200
        assert resp.headers["X-Conn"] == "1"  # the retry's fresh connection
        await resp.read()
    assert fault_server.accepted == 2
    # POST: the request went out, so it is not replayed: a disconnected error.
    with pytest.raises((ServerDisconnectedError, ClientOSError)):
        await fetch(session, fault_server.url("/3"), "POST", data=b"payload")
    assert fault_server.accepted == 2
    assert b"POST /3 " not in b"".join(fault_server.requests)  # read 1 byte, then closed
    await assert_pool_healthy(session, fault_server, closed=())


async def test_CONN_01_post_on_a_socket_closed_before_reuse(
    session: ClientSession, fault_server: FaultServer
) -> None:
    # The close arrives while the socket is idle: zero bytes of the POST were
    # written to it, so the POST simply goes out on a new connection.
    fault_server.faults([ReadRequest(), SendOK(), Sleep(0.02), Close()])
    assert await fetch(session, fault_server.url("/1")) == b"ok"
    async with asyncio.timeout(2):
        while pool_stats(session)["idle"]:
            await asyncio.sleep(0.005)
    async with session.post(fault_server.url("/2"), data=b"payload") as resp:
        assert resp.headers["X-Conn"] == "1"
    assert fault_server.requests[-1].endswith(b"\r\n\r\npayload")


# -- CONN-02 ---------------------------------------------------------------------------------

TRUNCATED: dict[str, list[Step]] = {
    "content-length-then-fin": [
        ReadRequest(), Send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 500),
        Close(),
    ],
    "chunked-without-last-chunk": [
        ReadRequest(), Send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"),
        Close(),
    ],
    "rst-mid-body": [
        ReadRequest(), Send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 500),
        Sleep(0.02), Reset(),
    ],
}  # fmt: skip


@pytest.mark.parametrize("case", TRUNCATED)
async def test_CONN_02_truncated_bodies(
    session: ClientSession, fault_server: FaultServer, tmp_path: Path, case: str
) -> None:
    fault_server.faults(TRUNCATED[case], TRUNCATED[case])
    with pytest.raises(ClientPayloadError):
        await fetch(session, fault_server.url())
    # The runner: not ok, and only its own temporary file is removed.
    root = tmp_path / "bodies"
    store = BodyStore(root)
    (root / "keep.txt").write_text("someone else's")
    spec = next(iter_requests(job_from_urls([fault_server.url("/saved")])))
    attempt = await fetch_attempt(session, spec, FetchSettings(store, SaveMode.ALWAYS, None))
    await store.close()
    assert attempt.error is not None
    assert attempt.error.kind == "payload"
    assert attempt.body_path is None
    files = sorted(str(Path(d, f).relative_to(root)) for d, _, fs in os.walk(root) for f in fs)
    assert files == ["keep.txt"]
    await assert_pool_healthy(session, fault_server, closed=())


# -- CONN-03 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("keep_alive", [True, False], ids=["keep-alive", "connection-close"])
async def test_CONN_03_bytes_beyond_the_message(
    session: ClientSession, fault_server: FaultServer, keep_alive: bool
) -> None:
    headers = [] if keep_alive else [("Connection", "close")]
    extra = b"EXTRA" + http_response(200, b"evil")  # more than Content-Length promised
    fault_server.faults(reply(http_response(200, b"hello", headers=headers) + extra))
    assert await fetch(session, fault_server.url()) == b"hello"  # the extra bytes ignored
    await assert_pool_healthy(session, fault_server)  # closed, never pooled


@pytest.mark.parametrize("split", [0.0, 0.02], ids=["same-segment", "later-segment"])
async def test_CONN_03_extra_bytes_in_a_later_segment(
    session: ClientSession, fault_server: FaultServer, split: float
) -> None:
    fault_server.faults(
        [ReadRequest(), Send(http_response(200, b"hello")), Sleep(split), Send(b"junk"),
         ExpectClose()]
    )  # fmt: skip
    assert await fetch(session, fault_server.url()) == b"hello"
    await assert_pool_healthy(session, fault_server)
