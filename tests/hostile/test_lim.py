"""LIM-01..07: resource limits - heads, bodies, bombs, codings and crawler-scale state.

The runner's body cap (``max_body``, default 64 MiB of *decoded* bytes) is the
cap for bodies and bombs; the client itself streams and never preallocates.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import time
import tracemalloc
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from servers import ReadRequest, ScriptedConnection, Send, http_response
from servers.faults import (
    AnyName,
    ExpectClose,
    FaultServer,
    MiB,
    StreamForever,
    br_bomb,
    reply,
    zlib_bomb,
    zstd_bomb,
)

import client.decoders
import client.ws_connect
from client import ClientSession, TCPConnector, TooManyRedirects
from client.connection import ConnectionKey
from client.decoders import MAX_CODINGS
from client.exceptions import LineTooLong
from client.http1 import ResponseCodec
from jobs import Output, RequestSpec, SaveMode, iter_requests, job_from_urls
from runner.fetch import Attempt, FetchSettings, fetch_attempt
from runner.sinks.bodies import BodyStore

from .conftest import QUICK
from .support import assert_pool_healthy, assert_protocol_error, fetch, watch_loop

BLOCK = 65536  # the header-block limit (status line, fields, trailers)
MAX_BODY = Output().max_body or 0  # the runner's default cap: 64 MiB of decoded bytes


def head(*fields: bytes, status: bytes = b"200 OK") -> bytes:
    return b"HTTP/1.1 " + status + b"\r\n" + b"".join(f + b"\r\n" for f in fields) + b"\r\n"


@dataclass(frozen=True, slots=True)
class Trickle:
    """Send ``data`` one byte per write, yielding between writes (one byte per read)."""

    data: bytes

    async def run(self, conn: ScriptedConnection) -> None:
        for i in range(len(self.data)):
            conn.writer.write(self.data[i : i + 1])
            await asyncio.sleep(0)
            if conn.writer.transport.is_closing():
                return


# -- LIM-01 ----------------------------------------------------------------------------------

BIG = b"a" * MiB
HUGE_HEADS = {
    "1MiB-reason": (head(status=b"200 " + BIG), "status line longer than 8190"),
    "1MiB-value": (head(b"X-Big: " + BIG), "header field longer than 8190"),
    "200KiB-headers": (
        head(*[b"X-%d: %s" % (i, b"v" * 2000) for i in range(100)]),
        "response head longer than 65536",
    ),
}


@pytest.mark.parametrize("delivery", ["one-segment", "byte-per-segment"])
@pytest.mark.parametrize("case", HUGE_HEADS)
async def test_LIM_01_oversized_heads(
    session: ClientSession, fault_server: FaultServer, case: str, delivery: str
) -> None:
    wire, expected = HUGE_HEADS[case]
    if delivery == "one-segment":
        fault_server.faults(reply(wire))
    else:
        fault_server.faults([ReadRequest(), Trickle(wire), ExpectClose()])
    message = await assert_protocol_error(session, fault_server.url())
    assert expected in message
    await assert_pool_healthy(session, fault_server)
    # Peak memory of the parse: under twice the head-block limit, in both deliveries.
    codec = ResponseCodec()
    codec.start("GET")
    step = len(wire) if delivery == "one-segment" else 1
    tracemalloc.start()
    try:
        with pytest.raises(LineTooLong, match="longer than"):
            feed_in_steps(codec, wire, step)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * BLOCK


def feed_in_steps(codec: ResponseCodec, wire: bytes, step: int) -> None:
    for start in range(0, len(wire), step):
        codec.feed(wire[start : start + step])


@pytest.mark.parametrize("what", ["max_line_size", "max_field_size"])
async def test_LIM_01_limits_are_exact_and_configurable(
    session: ClientSession, fault_server: FaultServer, what: str
) -> None:
    def wire(size: int) -> bytes:
        if what == "max_line_size":  # "HTTP/1.1 200 " is 13 bytes
            return head(b"Content-Length: 0", status=b"200 " + b"r" * (size - 13))
        return head(b"X: " + b"v" * (size - 3), b"Content-Length: 0")

    fault_server.faults([ReadRequest(), Send(wire(1000))], reply(wire(1001)))
    limit: dict[str, Any] = {what: 1000}
    assert await fetch(session, fault_server.url(), **limit) == b""
    message = await assert_protocol_error(session, fault_server.url(), **limit)
    assert "longer than 1000" in message
    await assert_pool_healthy(session, fault_server, closed=(1,), fresh=False)


# -- LIM-02 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [[b"X: 1"] * 10_000, [b"Set-Cookie: a=;"] * 5_000],
    ids=["10000-headers", "5000-set-cookie"],
)
async def test_LIM_02_too_many_headers(
    session: ClientSession, fault_server: FaultServer, fields: list[bytes]
) -> None:
    fault_server.faults(reply(head(*fields, b"Content-Length: 0")))
    message = await assert_protocol_error(session, fault_server.url())
    assert "more than 128 header fields" in message
    assert len(session.cookie_jar) == 0
    await assert_pool_healthy(session, fault_server)


async def test_LIM_02_redirect_chain_with_big_heads(
    session: ClientSession, fault_server: FaultServer
) -> None:
    # 50 hops, each with ~60 KiB of headers (just under the 64 KiB block limit).
    pad = [(f"X-Pad-{i}", "p" * 6000) for i in range(10)]

    def hop(raw: bytes) -> bytes:
        n = int(raw.split(b" ", 2)[1].rsplit(b"/", 1)[1])
        location = f"/r/{n + 1}" if n < 50 else "/next"
        return http_response(302, headers=[("Location", location), *pad])

    fault_server.routes({f"/r/{n}": hop for n in range(51)})
    with pytest.raises(TooManyRedirects) as info:
        await fetch(session, fault_server.url("/r/0"))
    history = info.value.history
    assert len(history) == 11  # stopped after max_redirects (10)
    retained = sum(len(n) + len(v) for resp in history for n, v in resp.raw_headers)
    assert 10 * 60_000 < retained <= 11 * BLOCK
    assert len(fault_server.requests) == 11


# -- LIM-03 ----------------------------------------------------------------------------------


def spec_for(url: str) -> RequestSpec:
    return next(iter_requests(job_from_urls([url])))


async def run_attempt(
    session: ClientSession, url: str, store: BodyStore | None, cap: int
) -> Attempt:
    settings = FetchSettings(store, SaveMode.ALWAYS if store else SaveMode.NEVER, max_body=cap)
    return await asyncio.wait_for(fetch_attempt(session, spec_for(url), settings), 20)


def files_under(root: Path) -> list[Path]:
    return [Path(d) / f for d, _, names in os.walk(root) for f in names]


ENDLESS = {
    "content-length-1e15": (head(b"Content-Length: 1000000000000000"), b"x" * 65536),
    "chunked": (head(b"Transfer-Encoding: chunked"), b"10000\r\n" + b"x" * 65536 + b"\r\n"),
    "until-close": (head(b"Connection: close"), b"x" * 65536),
}


@pytest.mark.parametrize("case", ENDLESS)
async def test_LIM_03_endless_bodies(
    session: ClientSession, fault_server: FaultServer, tmp_path: Path, case: str
) -> None:
    first, piece = ENDLESS[case]
    fault_server.faults([ReadRequest(), Send(first), StreamForever(piece)])
    store = BodyStore(tmp_path / "bodies")
    result = await run_attempt(session, fault_server.url(), store, cap=1 * MiB)
    assert result.error is not None
    assert result.error.kind == "too_large"
    assert result.body_path is None
    await store.close()
    assert files_under(tmp_path / "bodies") == []  # no partial file published or left
    await assert_pool_healthy(session, fault_server)


async def test_LIM_03_huge_content_length_is_not_preallocated(
    session: ClientSession, fault_server: FaultServer
) -> None:
    first, piece = ENDLESS["content-length-1e15"]
    fault_server.faults([ReadRequest(), Send(first), StreamForever(piece)])
    tracemalloc.start()
    try:
        async with session.get(fault_server.url()) as resp:
            assert resp.content_length == 10**15
            got = 0
            async for chunk in resp.content.iter_chunked(65536):
                got += len(chunk)
                if got >= 4 * MiB:
                    break
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * MiB  # streamed in bounded pieces; nothing sized from the header
    await assert_pool_healthy(session, fault_server)


# -- LIM-04 ----------------------------------------------------------------------------------


BOMBS: dict[str, tuple[str, Callable[[], bytes]]] = {
    "gzip-10MB": ("gzip", lambda: zlib_bomb(31, 10 * 1024 * MiB)),
    "deflate-zlib": ("deflate", lambda: zlib_bomb(15, 1024 * MiB)),
    "deflate-raw": ("deflate", lambda: zlib_bomb(-15, 1024 * MiB)),
    "br": ("br", lambda: br_bomb(1024 * MiB)),
    "zstd": ("zstd", lambda: zstd_bomb(1024 * MiB)),
}


@pytest.mark.parametrize("case", BOMBS)
async def test_LIM_04_decompression_bombs(
    session: ClientSession, fault_server: FaultServer, case: str
) -> None:
    coding, build = BOMBS[case]
    bomb = build()
    wire = head(b"Content-Encoding: " + coding.encode(), b"Content-Length: %d" % len(bomb))
    fault_server.routes({"/": lambda _: wire + bomb})
    async with watch_loop() as seen:
        result = await run_attempt(session, fault_server.url(), None, cap=MAX_BODY)
    assert result.error is not None
    assert result.error.kind == "too_large"
    assert seen["rss_growth"] < MAX_BODY + 32 * MiB
    assert seen["stall"] < 0.1, f"event loop stalled {seen['stall']:.3f} s"
    # Small bombs arrive whole (the socket is then reusable), big ones are cut off.
    await assert_pool_healthy(session, fault_server, closed=(), fresh=False)


@pytest.mark.parametrize(
    ("coding", "body", "expected"),
    [
        ("gzip", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\x03\x00" + bytes(8), "members"),
        ("zstd", zstd_bomb(MiB, window_log=31), "zstd"),
    ],
    ids=["gzip-100k-members", "zstd-2GiB-window"],
)
async def test_LIM_04_member_and_window_caps(
    session: ClientSession, fault_server: FaultServer, coding: str, body: bytes, expected: str
) -> None:
    if coding == "gzip":
        body *= 100_000  # 100k empty members, 2 MB
    wire = head(b"Content-Encoding: " + coding.encode(), b"Content-Length: %d" % len(body))
    fault_server.routes({"/": lambda _: wire + body})
    started = time.perf_counter()
    message = await assert_protocol_error(session, fault_server.url())
    assert expected in message
    assert time.perf_counter() - started < 2
    # The framing was intact: only the content coding failed, so the socket may be reused.
    await assert_pool_healthy(session, fault_server, closed=(), fresh=False)


# -- LIM-05 ----------------------------------------------------------------------------------


def gzip(data: bytes) -> bytes:
    obj = zlib.compressobj(6, zlib.DEFLATED, 31)
    return obj.compress(data) + obj.flush()


@pytest.fixture
def stages(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every decoder stage the client builds, by coding."""
    built: list[str] = []
    real = client.decoders._new_stage

    def counting(coding: str, *args: Any) -> client.decoders.ContentDecoder:
        built.append(coding)
        return real(coding, *args)

    monkeypatch.setattr(client.decoders, "_new_stage", counting)
    return built


@pytest.mark.parametrize("spread", [False, True], ids=["one-header", "six-headers"])
async def test_LIM_05_too_many_codings(
    session: ClientSession, fault_server: FaultServer, stages: list[str], spread: bool
) -> None:
    def stacked(count: int, fields: list[bytes]) -> bytes:
        body = b"hello"
        for _ in range(count):
            body = gzip(body)
        return head(*fields, b"Content-Length: %d" % len(body)) + body

    one = b"Content-Encoding: " + b", ".join([b"gzip"] * 6)
    six = stacked(6, [b"Content-Encoding: gzip"] * 6 if spread else [one])
    five = stacked(5, [b"Content-Encoding: gzip, gzip, gzip, gzip, gzip"])
    fault_server.routes({"/six": lambda _: six, "/five": lambda _: five})
    message = await assert_protocol_error(session, fault_server.url("/six"))
    assert f"more than {MAX_CODINGS} content codings" in message
    assert stages == []  # refused before a single decoder was built
    assert await fetch(session, fault_server.url("/five")) == b"hello"  # five are fine
    assert stages == ["gzip"] * 5
    # The framing was intact: only the content coding failed, so the socket may be reused.
    await assert_pool_healthy(session, fault_server, closed=(), fresh=False)


# -- LIM-06 ----------------------------------------------------------------------------------


async def test_LIM_06_bomb_in_a_redirect_body(
    session: ClientSession, fault_server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps: list[int] = []
    real_step = client.decoders._ZlibDecoder._step

    def counting(self: Any, obj: Any, chunk: Any) -> bytes:
        steps.append(1)
        out: bytes = real_step(self, obj, chunk)
        return out

    monkeypatch.setattr(client.decoders._ZlibDecoder, "_step", counting)
    bomb = zlib_bomb(31, 1024 * MiB)  # ~1 MB on the wire, 1 GiB decoded
    redirect = head(b"Location: /next", b"Content-Encoding: gzip",
                    b"Content-Length: %d" % len(bomb), status=b"302 Found")  # fmt: skip
    fault_server.faults([ReadRequest(), Send(redirect + bomb), ExpectClose()])
    async with watch_loop() as seen:
        async with session.get(fault_server.url(), timeout=QUICK) as resp:
            assert resp.status == 200
            assert await resp.read() == b"ok"
            assert [r.status for r in resp.history] == [302]
    assert steps == []  # the redirect's body was never decoded
    assert seen["rss_growth"] < 32 * MiB
    await fault_server.wait_closed_by_client(0)  # ...nor drained: its connection was closed


# -- LIM-07 ----------------------------------------------------------------------------------


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_LIM_07_crawl_state_stays_capped(fault_server: FaultServer) -> None:
    names = AnyName(".test")
    connector = TCPConnector(resolver=names, limit=50)
    cache = connector._dns_cache
    # 100,000 distinct host names through the connector's resolver path: the DNS
    # cache stays at its LRU cap (1000) and nothing is left in flight.
    for i in range(100_000):
        key = ConnectionKey(f"h{i}.test", 80, False, True, None, None, None)
        [addr] = await connector._resolve(key, None)
        assert addr["host"] == "127.0.0.1"
        if i % 10_000 == 0:
            assert len(cache) <= 1000
    assert len(cache) == 1000
    assert names.lookups == 100_000
    assert cache._inflight == {}
    # A real crawl of 1,500 distinct hosts, 50 at a time: idle sockets stay
    # under the pool limit, so open sockets and file descriptors stay under twice it.
    base_fds = open_fds()
    peak = {"open": 0, "idle": 0, "fds": 0}
    async with ClientSession(connector=connector, timeout=QUICK) as session:

        async def crawl(worker: int) -> None:
            for i in range(worker, 1500, 50):
                async with session.get(f"http://c{i}.test:{fault_server.port}/") as resp:
                    assert await resp.read() == b"ok"
                stats = connector.stats()
                peak["open"] = max(peak["open"], stats["in_use"] + stats["idle"])
                peak["idle"] = max(peak["idle"], stats["idle"])
                peak["fds"] = max(peak["fds"], open_fds() - base_fds)

        await asyncio.gather(*(crawl(w) for w in range(50)))
        assert fault_server.accepted == 1500
        assert peak["open"] <= 2 * 50
        assert peak["idle"] <= 50
        # Each socket is two fds here (client and server end), plus slack for closing ones.
        assert peak["fds"] <= 2 * (2 * 50) + 20
        assert len(cache) <= 1000


# -- the defaults security.md proposes --------------------------------------------------------


def test_LIM_defaults_match_security_md() -> None:
    session = inspect.signature(ClientSession.__init__).parameters
    assert session["max_line_size"].default == 8190  # status line: 8 KiB
    assert session["max_field_size"].default == 8190  # one field line: 8 KiB
    assert session["max_headers"].default == 128
    codec = inspect.signature(ResponseCodec.__init__).parameters
    assert codec["max_header_block"].default == BLOCK  # 64 KiB, trailers too
    assert codec["max_informational"].default == 10
    assert inspect.signature(ClientSession._request).parameters["max_redirects"].default == 10
    assert MAX_CODINGS == 5
    assert client.decoders.DECODE_STEP == 256 * 1024
    ws = inspect.signature(client.ws_connect.connect).parameters
    assert ws["max_msg_size"].default == 4 * MiB
    assert 64 * MiB == MAX_BODY  # the runner's body cap, in decoded bytes


async def test_LIM_04_read_nowait_on_a_bomb_is_bounded(
    session: ClientSession, fault_server: FaultServer
) -> None:
    bomb = zlib_bomb(31, 1024 * MiB)
    wire = head(b"Content-Encoding: gzip", b"Content-Length: %d" % len(bomb))
    fault_server.routes({"/": lambda _: wire + bomb})
    async with session.get(fault_server.url()) as resp:
        await asyncio.sleep(0.05)  # compressed bytes are buffered by now
        got = resp.content.read_nowait()
        # "What is buffered": about twice the read buffer, never the whole bomb.
        assert 0 < len(got) <= 2 * 2**18 + client.decoders.DECODE_STEP
