"""Tracing end to end: all 16 ``TraceConfig`` signals, at the right moments.

Against httpbin, a counting server and scripted servers. Host names resolve
through :class:`LoopbackNames` so the DNS signals fire deterministically.
Unlike aiohttp, ``on_response_chunk_received`` fires per piece read, also
when streaming through ``resp.content``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from servers import (
    CountingServer,
    Endpoint,
    Hang,
    ReadRequest,
    ScriptedConnection,
    ScriptedServer,
)
from servers.names import LoopbackNames
from yarl import URL

import client.tracing
from client import (
    ClientConnectorError,
    ClientResponseError,
    ClientSession,
    ClientTimeout,
    StreamReader,
    TCPConnector,
    TraceConfig,
)

SIGNALS = (
    "request_start",
    "request_chunk_sent",
    "response_chunk_received",
    "request_end",
    "request_exception",
    "request_redirect",
    "request_headers_sent",
    "connection_queued_start",
    "connection_queued_end",
    "connection_create_start",
    "connection_create_end",
    "connection_reuseconn",
    "dns_resolvehost_start",
    "dns_resolvehost_end",
    "dns_cache_hit",
    "dns_cache_miss",
)


@dataclass
class Event:
    name: str
    params: Any
    ctx: SimpleNamespace
    session: Any


@dataclass
class Recorder:
    """A TraceConfig listening to the given signals (default: all 16), recording events."""

    signals: tuple[str, ...] = SIGNALS
    config: TraceConfig = field(default_factory=TraceConfig)
    events: list[Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in self.signals:
            getattr(self.config, f"on_{name}").append(self._callback(name))

    def _callback(self, name: str) -> Any:
        async def record(session: Any, ctx: SimpleNamespace, params: Any) -> None:
            self.events.append(Event(name, params, ctx, session))

        return record

    def names(self, *, chunks: bool = False) -> list[str]:
        skip = () if chunks else ("response_chunk_received", "request_chunk_sent")
        return [e.name for e in self.events if e.name not in skip]

    def params(self, name: str) -> list[Any]:
        return [e.params for e in self.events if e.name == name]

    def chunks_received(self) -> list[bytes]:
        return [p.chunk for p in self.params("response_chunk_received")]

    def clear(self) -> None:
        self.events.clear()


def traced_session(recorder: Recorder, *names: str, **connector: Any) -> ClientSession:
    conn = TCPConnector(resolver=LoopbackNames(*names), **connector)
    return ClientSession(connector=conn, trace_configs=[recorder.config])


def local(endpoint: Endpoint, path: str) -> str:
    return f"http://localhost:{endpoint.port}{path}"


# -- a request's life ----------------------------------------------------------------------


async def test_first_and_second_request_signals_in_order(httpbin: Endpoint) -> None:
    rec = Recorder()
    url = local(httpbin, "/get?a=1")
    async with traced_session(rec, "localhost") as session:
        async with session.get(url, headers={"X-Mine": "1"}) as resp:
            assert rec.names() == [
                "request_start",
                "connection_create_start",
                "dns_cache_miss",
                "dns_resolvehost_start",
                "dns_resolvehost_end",
                "connection_create_end",
                "request_headers_sent",
                "request_end",
            ]
            body = await resp.read()
        start = rec.params("request_start")[0]
        assert (start.method, start.url) == ("GET", URL(url))
        assert start.headers["X-Mine"] == "1"
        sent = rec.params("request_headers_sent")[0]
        assert sent.headers["Host"] == f"localhost:{httpbin.port}"  # what went on the wire
        end = rec.params("request_end")[0]
        assert end.response is resp
        assert b"".join(rec.chunks_received()) == body
        assert {p.host for p in rec.params("dns_resolvehost_start")} == {"localhost"}
        rec.clear()
        async with session.get(url) as resp:
            await resp.read()
        assert rec.names() == [
            "request_start",
            "connection_reuseconn",
            "request_headers_sent",
            "request_end",
        ]
    assert {id(e.session) for e in rec.events} == {id(session)}


async def test_dns_cache_hit_and_no_cache(httpbin: Endpoint) -> None:
    rec = Recorder(
        ("dns_resolvehost_start", "dns_resolvehost_end", "dns_cache_hit", "dns_cache_miss")
    )
    async with traced_session(rec, "localhost", force_close=True) as session:
        for _ in range(2):
            async with session.get(local(httpbin, "/get")) as resp:
                await resp.read()
    assert rec.names() == [
        "dns_cache_miss",
        "dns_resolvehost_start",
        "dns_resolvehost_end",
        "dns_cache_hit",
    ]
    rec.clear()
    async with traced_session(rec, "localhost", force_close=True, use_dns_cache=False) as session:
        for _ in range(2):
            async with session.get(local(httpbin, "/get")) as resp:
                await resp.read()
        async with session.get(httpbin.url("/get")) as resp:  # an IP literal: no DNS at all
            await resp.read()
    assert rec.names() == ["dns_resolvehost_start", "dns_resolvehost_end"] * 2


async def test_trace_request_ctx_and_ctx_factory(httpbin: Endpoint) -> None:
    class Ctx(SimpleNamespace):
        pass

    rec = Recorder(config=TraceConfig(trace_config_ctx_factory=Ctx))
    other = Recorder()
    async with ClientSession(trace_configs=[rec.config, other.config]) as session:
        for tag in ("first", "second"):
            async with session.get(httpbin.url("/get"), trace_request_ctx={"tag": tag}) as resp:
                await resp.read()
    ctxs = {id(e.ctx): e.ctx for e in rec.events}  # one per request, shared by its signals
    assert [ctx.trace_request_ctx["tag"] for ctx in ctxs.values()] == ["first", "second"]
    assert all(isinstance(ctx, Ctx) for ctx in ctxs.values())
    assert rec.names(chunks=True) == other.names(chunks=True)  # every config hears everything
    assert {id(e.ctx) for e in other.events}.isdisjoint(ctxs)


# -- request bodies --------------------------------------------------------------------------


async def test_request_chunk_sent_per_chunk(httpbin: Endpoint) -> None:
    rec = Recorder(("request_chunk_sent",))
    pieces = [b"alpha-", b"beta-", b"gamma"]

    async def body() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    async with ClientSession(trace_configs=[rec.config]) as session:
        async with session.post(httpbin.url("/post"), data=body()) as resp:
            assert (await resp.json())["data"] == "alpha-beta-gamma"
        assert [p.chunk for p in rec.params("request_chunk_sent")] == pieces
        rec.clear()
        async with session.post(httpbin.url("/post"), data=b"x" * 1000, compress="gzip") as resp:
            assert (await resp.json())["headers"]["Content-Encoding"] == "gzip"
        # What the caller gave, before compression and framing.
        assert [p.chunk for p in rec.params("request_chunk_sent")] == [b"x" * 1000]


# -- response bodies: per chunk --------------------------------------------------------------


@pytest.fixture
async def dripping_server(scripted_server: ScriptedServer) -> ScriptedServer:
    """Answers with a chunked body sent as three separate pieces of two lines each."""

    async def handler(conn: ScriptedConnection) -> None:
        while True:
            await conn.read_request()
            await conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for piece in (b"a1\na2\n", b"b1\nb2\n", b"c1\nc2\n"):
                await conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
                await asyncio.sleep(0.03)  # separate reads (the assertions need it)
            await conn.send(b"0\r\n\r\n")

    scripted_server.serve(handler)
    return scripted_server


BODY = b"a1\na2\nb1\nb2\nc1\nc2\n"


async def test_response_chunks_fire_per_piece_when_streaming(
    dripping_server: ScriptedServer,
) -> None:
    rec = Recorder(("response_chunk_received", "request_end"))
    async with ClientSession(trace_configs=[rec.config]) as session:

        async def pieces(how: str) -> list[bytes]:
            rec.clear()
            got: list[bytes] = []
            async with session.get(dripping_server.url()) as resp:
                content = resp.content
                if how == "iter_any":
                    got = [piece async for piece in content.iter_any()]
                elif how == "iter_chunked":
                    got = [piece async for piece in content.iter_chunked(4)]
                elif how == "lines":
                    got = [line async for line in content]
                elif how == "iter_chunks":
                    got = [data async for data, _ in content.iter_chunks()]
                elif how == "read_n":
                    while piece := await content.read(5):
                        got.append(piece)
                elif how == "readexactly":
                    got = [await content.readexactly(9), await content.readexactly(9)]
                else:
                    got = [await resp.read()]
            assert b"".join(got) == BODY
            assert rec.names() == ["request_end"]
            return got

        for how in ("iter_any", "iter_chunked", "lines", "iter_chunks", "read_n", "readexactly"):
            got = await pieces(how)
            assert rec.chunks_received() == got, how  # one event per piece, the same bytes
            assert all(
                p.url == URL(dripping_server.url()) for p in rec.params("response_chunk_received")
            )
        assert await pieces("iter_any") == [b"a1\na2\n", b"b1\nb2\n", b"c1\nc2\n"]
        await pieces("read")
        assert rec.chunks_received() == [b"a1\na2\n", b"b1\nb2\n", b"c1\nc2\n"]


async def test_read_after_streaming_fires_nothing_twice(httpbin: Endpoint) -> None:
    rec = Recorder(("response_chunk_received",))
    async with ClientSession(trace_configs=[rec.config]) as session:
        async with session.get(httpbin.url("/gzip")) as resp:
            body = await resp.read()
            assert await resp.read() is body  # cached: no second round of events
        assert b"".join(rec.chunks_received()) == body  # decoded bytes, as the reader sees them
        assert body.startswith(b"{")


async def test_untraced_bodies_keep_the_plain_reader(httpbin: Endpoint) -> None:
    rec = Recorder(("request_start",))  # listening, but not to chunks
    async with ClientSession(trace_configs=[rec.config]) as session:
        async with session.get(httpbin.url("/bytes/100")) as resp:
            assert type(resp.content) is StreamReader
            assert len(await resp.read()) == 100
    async with ClientSession() as session:
        async with session.get(httpbin.url("/bytes/100")) as resp:
            assert type(resp.content) is StreamReader


# -- redirects and failures -------------------------------------------------------------------


async def test_redirect_signals(httpbin: Endpoint) -> None:
    rec = Recorder(("request_start", "request_redirect", "request_end", "request_headers_sent"))
    async with ClientSession(trace_configs=[rec.config]) as session:
        async with session.get(httpbin.url("/redirect/2")) as resp:
            assert resp.status == 200
    assert rec.names() == [
        "request_start",
        "request_headers_sent",
        "request_redirect",
        "request_headers_sent",
        "request_redirect",
        "request_headers_sent",
        "request_end",
    ]
    redirects = rec.params("request_redirect")
    assert [p.url.path for p in redirects] == ["/redirect/2", "/relative-redirect/1"]
    assert [p.response.status for p in redirects] == [302, 302]
    assert [p.url.path for p in rec.params("request_headers_sent")][-1] == "/get"
    assert rec.params("request_end")[0].url.path == "/get"


async def test_exception_signals_end_every_traced_request(
    httpbin: Endpoint, unused_port: int, scripted_server: ScriptedServer
) -> None:
    rec = Recorder(("request_start", "request_end", "request_exception"))
    scripted_server.script([ReadRequest(), Hang()])
    async with ClientSession(trace_configs=[rec.config]) as session:
        with pytest.raises(ClientConnectorError):
            await session.get(f"http://127.0.0.1:{unused_port}/")
        with pytest.raises(ClientResponseError):
            await session.get(httpbin.url("/status/500"), raise_for_status=True)
        with pytest.raises(asyncio.TimeoutError):
            await session.get(scripted_server.url(), timeout=ClientTimeout(total=0.2))
    assert rec.names() == ["request_start", "request_exception"] * 3
    errors = [p.exception for p in rec.params("request_exception")]
    assert isinstance(errors[0], ClientConnectorError)
    assert isinstance(errors[1], ClientResponseError)
    assert errors[1].status == 500
    assert isinstance(errors[2], asyncio.TimeoutError)


# -- the pool ----------------------------------------------------------------------------------


async def test_queued_request_then_reuses_the_freed_connection(
    counting_server: CountingServer,
) -> None:
    rec = Recorder()
    async with traced_session(rec, limit=1) as session:

        async def get(delay: float, tag: str) -> None:
            url = counting_server.url(f"/?delay={delay}")
            async with session.get(url, trace_request_ctx=tag) as resp:
                await resp.read()

        first = asyncio.create_task(get(0.1, "first"))
        connector = session.connector
        assert connector is not None
        while connector.stats()["in_use"] == 0:  # the first holds the only slot
            await asyncio.sleep(0.001)
        await get(0, "second")
        await first
    second = [e.name for e in rec.events if e.ctx.trace_request_ctx == "second"]
    assert second[:4] == [
        "request_start",
        "connection_queued_start",
        "connection_queued_end",
        "connection_reuseconn",
    ]
    assert "connection_create_start" not in second
    assert counting_server.stats.connections == 1


# -- TraceConfig itself ------------------------------------------------------------------------


async def test_signals_freeze_when_a_session_takes_the_config() -> None:
    config = TraceConfig()

    async def callback(*args: object) -> None:
        """Never called."""

    config.on_request_start.append(callback)
    async with ClientSession(trace_configs=[config]):
        signal = config.on_request_start
        assert signal.frozen
        for mutate in (
            lambda: signal.append(callback),
            lambda: signal.extend([callback]),
            lambda: signal.insert(0, callback),
            lambda: signal.remove(callback),
            lambda: signal.pop(),
            lambda: signal.clear(),
            lambda: signal.__setitem__(0, callback),
            lambda: signal.__delitem__(0),
            lambda: signal.__iadd__([callback]),
        ):
            with pytest.raises(RuntimeError, match="frozen"):
                mutate()
        assert list(signal) == [callback]
        assert config.on_dns_cache_hit.frozen


async def test_signals_without_callbacks_build_no_params(
    httpbin: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unwanted(*args: object) -> None:
        raise AssertionError("params built for a signal nobody listens to")

    for name in client.tracing.__all__:
        if name.endswith("Params") and name != "TraceRequestStartParams":
            monkeypatch.setattr(client.tracing, name, unwanted)
    rec = Recorder(("request_start",))
    async with ClientSession(trace_configs=[rec.config]) as session:
        async with session.post(httpbin.url("/redirect-to?url=/anything"), data=b"x") as resp:
            assert (await resp.json())["method"] == "GET"
    assert rec.names() == ["request_start"]
