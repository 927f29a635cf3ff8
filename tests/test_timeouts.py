"""Timeouts and cancellation against real loopback peers.

Every path ends with the same check: nothing is left checked out of the pool
and the next request on the same session works.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import socket
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from servers import (
    CountingServer,
    Hang,
    ReadRequest,
    ScriptedServer,
    Send,
    SendSlowly,
    Step,
    http_response,
)

from client import (
    ClientError,
    ClientSession,
    ClientTimeout,
    ConnectionTimeoutError,
    PoolTimeoutError,
    ServerTimeoutError,
    SocketTimeoutError,
    TCPConnector,
    TotalTimeoutError,
)

OK: list[Step] = [ReadRequest(), Send(http_response(200, b"ok"))]
NO_ANSWER: list[Step] = [ReadRequest(), Hang()]
# Promises 1000 body bytes, sends 10, then goes quiet.
STALLED_BODY: list[Step] = [
    ReadRequest(),
    Send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10),
    Hang(),
]


async def fetch(session: ClientSession, url: str, **kwargs: Any) -> bytes:
    async with session.get(url, **kwargs) as resp:
        assert resp.status == 200
        return await resp.read()


async def wait_until(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.002)


async def assert_recovers(session: ClientSession, url: str) -> None:
    """The pool is clean after the failure and the next request works."""
    connector = session.connector
    assert connector is not None
    stats = connector.stats()
    assert (stats["in_use"], stats["waiting"]) == (0, 0)
    assert await fetch(session, url) == b"ok"
    assert connector.stats()["in_use"] == 0


@contextmanager
def no_resource_warnings() -> Iterator[None]:
    """Fail if an abandoned socket or transport is left for the GC to warn about."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


def elapsed_since(start: float) -> float:
    return asyncio.get_running_loop().time() - start


def now() -> float:
    return asyncio.get_running_loop().time()


@pytest.fixture
def unresponsive_port() -> Iterator[int]:
    """A loopback port whose TCP connects hang: a listen(0) backlog, already full.

    Nothing accepts; queued connects fill the accept queue, so the kernel
    drops further SYNs and ``connect()`` neither succeeds nor fails.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port: int = listener.getsockname()[1]
    fillers = []
    for _ in range(8):
        filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for filler in fillers:
        filler.close()
    listener.close()


# -- ClientTimeout itself ---------------------------------------------------------------


async def test_defaults() -> None:
    assert ClientTimeout() == ClientTimeout(
        total=None, connect=None, sock_read=None, sock_connect=None, ceil_threshold=5, pool=None
    )
    async with ClientSession() as session:
        assert session.timeout == ClientTimeout(total=300, sock_connect=30)
    async with ClientSession(timeout=None) as session:  # aiohttp: None means the default
        assert session.timeout == ClientTimeout(total=300, sock_connect=30)


def test_client_timeout_is_frozen_and_validated() -> None:
    timeout = ClientTimeout(total=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        timeout.total = 2  # type: ignore[misc]
    with pytest.raises(ValueError, match="total"):
        ClientTimeout(total=-1)
    with pytest.raises(ValueError, match="sock_read"):
        ClientTimeout(sock_read="1")  # type: ignore[arg-type]


async def test_session_rejects_a_plain_number() -> None:
    with pytest.raises(ValueError, match="ClientTimeout"):
        ClientSession(timeout=5)


def test_exception_hierarchy() -> None:
    for exc in (TotalTimeoutError, SocketTimeoutError, ConnectionTimeoutError, PoolTimeoutError):
        assert issubclass(exc, ServerTimeoutError)
        assert issubclass(exc, asyncio.TimeoutError)
        assert issubclass(exc, ClientError)


# -- total --------------------------------------------------------------------------------


async def test_total_covers_a_stalled_body(scripted_server: ScriptedServer) -> None:
    scripted_server.script(STALLED_BODY, OK)
    async with ClientSession(timeout=ClientTimeout(total=0.15)) as session:
        start = now()
        async with session.get(scripted_server.url()) as resp:
            assert resp.status == 200
            with pytest.raises(TotalTimeoutError) as info:
                await resp.read()
        assert 0.1 < elapsed_since(start) < 1
        assert isinstance(info.value, asyncio.TimeoutError)
        assert isinstance(info.value, ClientError)
        await assert_recovers(session, scripted_server.url())
    assert scripted_server.accepted == 2


async def test_total_covers_waiting_for_the_head(scripted_server: ScriptedServer) -> None:
    scripted_server.script(NO_ANSWER, OK)
    async with ClientSession(timeout=ClientTimeout(total=0.1)) as session:
        start = now()
        with pytest.raises(TotalTimeoutError):
            await session.get(scripted_server.url())
        assert elapsed_since(start) < 1
        await assert_recovers(session, scripted_server.url())


async def test_total_covers_the_wait_for_a_pool_slot(counting_server: CountingServer) -> None:
    connector = TCPConnector(limit=1)
    async with ClientSession(connector=connector) as session:
        holder = asyncio.create_task(fetch(session, counting_server.url("/hold?delay=0.2")))
        await wait_until(lambda: connector.stats()["in_use"] == 1)
        with pytest.raises(TotalTimeoutError):
            await session.get(counting_server.url("/queued"), timeout=ClientTimeout(total=0.05))
        assert connector.stats()["waiting"] == 0
        assert await holder == b"ok"
        await assert_recovers(session, counting_server.url())
    assert [r.target for r in counting_server.requests] == ["/hold?delay=0.2", "/"]


async def test_plain_number_means_total(scripted_server: ScriptedServer) -> None:
    scripted_server.script(NO_ANSWER, OK)
    async with ClientSession() as session:
        with pytest.raises(TotalTimeoutError):
            await session.get(scripted_server.url(), timeout=0.1)
        await assert_recovers(session, scripted_server.url())


async def test_timeout_none_disables_the_session_default(
    counting_server: CountingServer,
) -> None:
    slow = counting_server.url("/?delay=0.15")
    async with ClientSession(timeout=ClientTimeout(total=0.05)) as session:
        with pytest.raises(TotalTimeoutError):
            await fetch(session, slow)
        assert await fetch(session, slow, timeout=None) == b"ok"
        assert await fetch(session, slow, timeout=ClientTimeout(total=0)) == b"ok"  # 0 = off
        await assert_recovers(session, counting_server.url())


# -- sock_read ---------------------------------------------------------------------------------


async def test_sock_read_fires_when_the_body_goes_quiet(scripted_server: ScriptedServer) -> None:
    scripted_server.script(STALLED_BODY, OK)
    async with ClientSession(timeout=ClientTimeout(sock_read=0.1)) as session:
        start = now()
        async with session.get(scripted_server.url()) as resp:
            with pytest.raises(SocketTimeoutError):
                await resp.read()
        assert 0.05 < elapsed_since(start) < 1
        await assert_recovers(session, scripted_server.url())


async def test_sock_read_fires_while_waiting_for_the_head(
    scripted_server: ScriptedServer,
) -> None:
    scripted_server.script(NO_ANSWER, OK)
    async with ClientSession(timeout=ClientTimeout(sock_read=0.1)) as session:
        with pytest.raises(SocketTimeoutError):
            await session.get(scripted_server.url())
        await assert_recovers(session, scripted_server.url())


async def test_sock_read_tolerates_a_steady_trickle(scripted_server: ScriptedServer) -> None:
    body = b"0123456789" * 50
    scripted_server.script([ReadRequest(), SendSlowly(http_response(200, body), 40, 0.02)], OK)
    async with ClientSession(timeout=ClientTimeout(sock_read=0.12)) as session:
        start = now()
        assert await fetch(session, scripted_server.url()) == body
        assert elapsed_since(start) > 0.12  # longer than sock_read in all
        await assert_recovers(session, scripted_server.url())


# -- connect ------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["sock_connect", "connect"])
async def test_connect_timeout_on_a_hanging_tcp_connect(
    unresponsive_port: int, counting_server: CountingServer, field: str
) -> None:
    url = f"http://127.0.0.1:{unresponsive_port}/"
    async with ClientSession() as session:
        start = now()
        with no_resource_warnings(), pytest.raises(ConnectionTimeoutError) as info:
            await session.get(url, timeout=ClientTimeout(**{field: 0.1}))
        assert elapsed_since(start) < 1
        assert not isinstance(info.value, PoolTimeoutError)
        await assert_recovers(session, counting_server.url())


@pytest.mark.parametrize("field", ["sock_connect", "connect"])
async def test_connect_timeout_covers_the_tls_handshake(
    scripted_server: ScriptedServer, counting_server: CountingServer, field: str
) -> None:
    scripted_server.script([Hang()])  # accepts TCP, never answers the ClientHello
    url = f"https://127.0.0.1:{scripted_server.port}/"
    async with ClientSession() as session:
        start = now()
        with no_resource_warnings(), pytest.raises(ConnectionTimeoutError):
            await session.get(url, timeout=ClientTimeout(**{field: 0.1}))
        # Unbounded, the handshake would wait for the 30 s sock_connect default; the slack
        # is for building the default SSL context (CA load) on a loaded CI machine.
        assert elapsed_since(start) < 5
        await assert_recovers(session, counting_server.url())


# -- cancellation --------------------------------------------------------------------------------


async def cancel_soon(task: asyncio.Task[Any], when: Callable[[], bool]) -> None:
    """Cancel ``task`` once ``when()`` holds; its CancelledError must come through."""
    await wait_until(when)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


async def test_cancel_during_tcp_connect(
    unresponsive_port: int, counting_server: CountingServer
) -> None:
    connector = TCPConnector()
    async with ClientSession(connector=connector) as session:
        task = asyncio.create_task(session.get(f"http://127.0.0.1:{unresponsive_port}/"))
        await cancel_soon(task, lambda: connector.stats()["in_use"] == 1)
        await assert_recovers(session, counting_server.url())


async def test_cancel_during_tls_handshake(
    scripted_server: ScriptedServer, counting_server: CountingServer
) -> None:
    scripted_server.script([Hang()])
    connector = TCPConnector()
    async with ClientSession(connector=connector) as session:
        task = asyncio.create_task(session.get(f"https://127.0.0.1:{scripted_server.port}/"))
        with no_resource_warnings():
            await cancel_soon(task, lambda: scripted_server.accepted == 1)
        await assert_recovers(session, counting_server.url())


async def test_cancel_while_waiting_for_the_head(counting_server: CountingServer) -> None:
    connector = TCPConnector()
    async with ClientSession(connector=connector) as session:
        task = asyncio.create_task(session.get(counting_server.url("/?delay=5")))
        await cancel_soon(task, lambda: counting_server.stats.in_flight == 1)
        await wait_until(lambda: counting_server.stats.open == 0)  # the socket was closed
        await assert_recovers(session, counting_server.url())
    assert counting_server.stats.connections == 2


async def test_cancel_while_reading_the_body(
    scripted_server: ScriptedServer,
) -> None:
    scripted_server.script(STALLED_BODY, OK)
    connector = TCPConnector()
    async with ClientSession(connector=connector) as session:
        async with session.get(scripted_server.url()) as resp:
            task = asyncio.create_task(resp.read())
            await cancel_soon(task, lambda: resp.content.total_raw_bytes == 10)
        await assert_recovers(session, scripted_server.url())
    assert scripted_server.accepted == 2


async def test_cancel_while_waiting_for_a_slot(counting_server: CountingServer) -> None:
    connector = TCPConnector(limit=1)
    async with ClientSession(connector=connector) as session:
        holder = asyncio.create_task(fetch(session, counting_server.url("/?delay=0.05")))
        await wait_until(lambda: connector.stats()["in_use"] == 1)
        task = asyncio.create_task(session.get(counting_server.url()))
        await cancel_soon(task, lambda: connector.stats()["waiting"] == 1)
        assert await holder == b"ok"
        await assert_recovers(session, counting_server.url())
