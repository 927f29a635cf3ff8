"""The connection pool against real loopback servers, counted on the server side.

Limits, keep-alive reuse order, expiry, FIFO waiters, pool timeouts, and the
single retry of an idempotent request on a stale pooled connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from servers import (
    Close,
    CountingServer,
    ReadRequest,
    Reset,
    ScriptedServer,
    Send,
    Step,
    http_response,
)

from client import (
    ClientOSError,
    ClientSession,
    ClientTimeout,
    ConnectionKey,
    ConnectionTimeoutError,
    PoolTimeoutError,
    ServerDisconnectedError,
    TCPConnector,
)

FIRST = http_response(200, b"first")
FRESH = http_response(200, b"fresh")
SERVE_FRESH: list[Step] = [ReadRequest(), Send(FRESH)]


async def fetch(session: ClientSession, url: str, **kwargs: Any) -> bytes:
    async with session.get(url, **kwargs) as resp:
        assert resp.status == 200
        return await resp.read()


async def wait_until(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    """Poll ``predicate`` (server-side effects land a few loop turns later)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.002)


def path_of(target: str) -> str:
    return target.partition("?")[0]


def clean(connector: TCPConnector) -> bool:
    stats = connector.stats()
    return stats["in_use"] == 0 and stats["waiting"] == 0


# -- limits ---------------------------------------------------------------------------------


async def test_limit_caps_sockets_and_every_request_succeeds(
    counting_server: CountingServer,
) -> None:
    connector = TCPConnector(limit=2)
    async with ClientSession(connector=connector) as session:
        url = counting_server.url("/?delay=0.02")
        bodies = await asyncio.gather(*(fetch(session, url) for _ in range(10)))
        assert connector.stats() == {"in_use": 0, "idle": 2, "waiting": 0}
    assert bodies == [b"ok"] * 10
    stats = counting_server.stats
    assert (stats.requests, stats.max_open, stats.max_in_flight) == (10, 2, 2)
    assert stats.connections == 2


async def test_limit_per_host_holds_per_host_while_hosts_run_in_parallel(
    counting_server: CountingServer,
) -> None:
    port = counting_server.port
    hosts = ("127.0.0.1", "localhost")  # different pool keys, same server
    connector = TCPConnector(limit_per_host=1)
    async with ClientSession(connector=connector) as session:
        urls = [f"http://{host}:{port}/?delay=0.03" for host in hosts for _ in range(3)]
        assert await asyncio.gather(*(fetch(session, u) for u in urls)) == [b"ok"] * 6
    for host in hosts:
        counts = counting_server.by_host[f"{host}:{port}"]
        assert (counts.requests, counts.max_in_flight, counts.connections) == (3, 1, 1)
    assert counting_server.stats.max_in_flight == 2  # the two hosts overlapped


async def test_sequential_requests_share_one_connection(counting_server: CountingServer) -> None:
    connector = TCPConnector()
    async with ClientSession(connector=connector) as session:
        for _ in range(100):
            assert await fetch(session, counting_server.url()) == b"ok"
        assert connector.stats() == {"in_use": 0, "idle": 1, "waiting": 0}
    assert counting_server.stats.connections == 1
    assert counting_server.requests_per_connection == [100]


@pytest.mark.parametrize(("slow", "fast"), [("/a", "/b"), ("/b", "/a")])
async def test_most_recently_released_connection_is_reused(
    counting_server: CountingServer, slow: str, fast: str
) -> None:
    async with ClientSession() as session:
        await asyncio.gather(
            fetch(session, counting_server.url(f"{fast}?delay=0.01")),
            fetch(session, counting_server.url(f"{slow}?delay=0.08")),
        )
        await fetch(session, counting_server.url("/next"))
    conn_of = {path_of(r.target): r.connection for r in counting_server.requests}
    assert conn_of[slow] != conn_of[fast]
    assert conn_of["/next"] == conn_of[slow]  # LIFO: released last, reused first


async def test_force_close_opens_one_connection_per_request(
    counting_server: CountingServer,
) -> None:
    connector = TCPConnector(force_close=True)
    async with ClientSession(connector=connector) as session:
        for _ in range(3):
            assert await fetch(session, counting_server.url()) == b"ok"
        assert connector.stats()["idle"] == 0
    assert counting_server.stats.connections == 3
    for record in counting_server.requests:
        assert ("Connection", "close") in record.headers
        assert not record.keep_alive
    with pytest.raises(ValueError, match="keepalive_timeout"):
        TCPConnector(force_close=True, keepalive_timeout=5)


async def test_keepalive_timeout_closes_idle_sockets(counting_server: CountingServer) -> None:
    connector = TCPConnector(keepalive_timeout=0.05)
    async with ClientSession(connector=connector) as session:
        await fetch(session, counting_server.url())
        assert connector.stats()["idle"] == 1
        await wait_until(lambda: counting_server.stats.open == 0)  # the server saw the close
        assert connector.stats()["idle"] == 0
        await fetch(session, counting_server.url())
    assert counting_server.stats.connections == 2


async def test_idle_connection_closed_by_server_leaves_the_pool(
    scripted_server: ScriptedServer,
) -> None:
    scripted_server.script([ReadRequest(), Send(FIRST), Close()], SERVE_FRESH)
    connector = TCPConnector()
    async with ClientSession(connector=connector) as session:
        assert await fetch(session, scripted_server.url()) == b"first"
        await wait_until(lambda: connector.stats()["idle"] == 0)
        assert await fetch(session, scripted_server.url()) == b"fresh"
    assert scripted_server.accepted == 2


# -- waiters --------------------------------------------------------------------------------


async def queue_up(
    session: ClientSession, connector: TCPConnector, urls: list[str]
) -> list[asyncio.Task[bytes]]:
    """Start one request per url, each queued (waiting) before the next starts."""
    tasks = []
    for n, url in enumerate(urls, 1):
        tasks.append(asyncio.create_task(fetch(session, url)))
        await wait_until(lambda n=n: connector.stats()["waiting"] == n)  # type: ignore[misc]
    return tasks


async def test_waiters_are_served_fifo(counting_server: CountingServer) -> None:
    connector = TCPConnector(limit=1)
    async with ClientSession(connector=connector) as session:
        holder = asyncio.create_task(fetch(session, counting_server.url("/hold?delay=0.05")))
        await wait_until(lambda: connector.stats()["in_use"] == 1)
        urls = [counting_server.url(f"/w{i}") for i in range(5)]
        tasks = await queue_up(session, connector, urls)
        await asyncio.gather(holder, *tasks)
        assert clean(connector)
    order = [path_of(r.target) for r in counting_server.requests]
    assert order == ["/hold", "/w0", "/w1", "/w2", "/w3", "/w4"]
    assert counting_server.stats.connections == 1


async def test_waiters_are_fifo_across_hosts(counting_server: CountingServer) -> None:
    port = counting_server.port
    connector = TCPConnector(limit=1)
    async with ClientSession(connector=connector) as session:
        holder = asyncio.create_task(fetch(session, counting_server.url("/hold?delay=0.05")))
        await wait_until(lambda: connector.stats()["in_use"] == 1)
        hosts = ["localhost", "127.0.0.1"] * 3
        urls = [f"http://{host}:{port}/w{i}" for i, host in enumerate(hosts)]
        tasks = await queue_up(session, connector, urls)
        await asyncio.gather(holder, *tasks)
        assert clean(connector)
    order = [path_of(r.target) for r in counting_server.requests]
    assert order == ["/hold"] + [f"/w{i}" for i in range(6)]
    assert counting_server.stats.max_in_flight == 1


async def test_cancelled_waiter_does_not_leak_a_slot(counting_server: CountingServer) -> None:
    connector = TCPConnector(limit=1)
    async with ClientSession(connector=connector) as session:
        holder = asyncio.create_task(fetch(session, counting_server.url("/hold?delay=0.05")))
        await wait_until(lambda: connector.stats()["in_use"] == 1)
        [waiter] = await queue_up(session, connector, [counting_server.url("/never")])
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert connector.stats()["waiting"] == 0
        assert await holder == b"ok"
        assert connector.stats() == {"in_use": 0, "idle": 1, "waiting": 0}
        assert await fetch(session, counting_server.url("/later")) == b"ok"
    assert [path_of(r.target) for r in counting_server.requests] == ["/hold", "/later"]


async def test_woken_then_cancelled_waiter_passes_its_turn_on(
    counting_server: CountingServer,
) -> None:
    connector = TCPConnector(limit=1)
    key = ConnectionKey("127.0.0.1", counting_server.port, False, True, None, None, None)
    timeout = ClientTimeout()
    try:
        conn = await connector.connect(key, timeout)
        first = asyncio.create_task(connector.connect(key, timeout))
        second = asyncio.create_task(connector.connect(key, timeout))
        await wait_until(lambda: connector.stats()["waiting"] == 2)
        conn.close()  # frees the slot and wakes `first` ...
        first.cancel()  # ... which is cancelled before it gets to run
        with pytest.raises(asyncio.CancelledError):
            await first
        conn2 = await asyncio.wait_for(second, 1)
        assert connector.stats() == {"in_use": 1, "idle": 0, "waiting": 0}
        conn2.release()
        assert connector.stats() == {"in_use": 0, "idle": 1, "waiting": 0}
    finally:
        await connector.close()


async def test_pool_timeout_when_every_slot_is_busy(counting_server: CountingServer) -> None:
    connector = TCPConnector(limit=1)
    async with ClientSession(connector=connector) as session:
        holder = asyncio.create_task(fetch(session, counting_server.url("/hold?delay=0.3")))
        await wait_until(lambda: connector.stats()["in_use"] == 1)
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(PoolTimeoutError) as info:
            await fetch(session, counting_server.url("/queued"), timeout=ClientTimeout(pool=0.05))
        assert loop.time() - start < 0.25
        assert isinstance(info.value, ConnectionTimeoutError)
        assert isinstance(info.value, asyncio.TimeoutError)
        assert connector.stats()["waiting"] == 0
        assert await holder == b"ok"
        assert clean(connector)
        assert await fetch(session, counting_server.url("/after")) == b"ok"
    assert [path_of(r.target) for r in counting_server.requests] == ["/hold", "/after"]


async def test_connect_timeout_covers_the_wait_for_a_slot(
    counting_server: CountingServer,
) -> None:
    connector = TCPConnector(limit=1)
    async with ClientSession(connector=connector) as session:
        holder = asyncio.create_task(fetch(session, counting_server.url("/hold?delay=0.3")))
        await wait_until(lambda: connector.stats()["in_use"] == 1)
        with pytest.raises(ConnectionTimeoutError) as info:
            await fetch(session, counting_server.url("/q"), timeout=ClientTimeout(connect=0.05))
        assert not isinstance(info.value, PoolTimeoutError)
        assert await holder == b"ok"
        assert clean(connector)


# -- the stale keep-alive retry ----------------------------------------------------------------


def stale_second_request(close: Step) -> list[Step]:
    """Answer once, then read the next request and drop the connection unanswered."""
    return [ReadRequest(), Send(FIRST), ReadRequest(), close]


@pytest.mark.parametrize("close", [Close(), Reset()], ids=["fin", "rst"])
async def test_stale_keepalive_get_is_retried_on_a_new_connection(
    scripted_server: ScriptedServer, close: Step
) -> None:
    scripted_server.script(stale_second_request(close), SERVE_FRESH)
    connector = TCPConnector()
    async with ClientSession(connector=connector) as session:
        assert await fetch(session, scripted_server.url("/1")) == b"first"
        assert await fetch(session, scripted_server.url("/2")) == b"fresh"
        assert connector.stats() == {"in_use": 0, "idle": 1, "waiting": 0}
    assert scripted_server.accepted == 2
    assert len(scripted_server.connections[0].requests) == 2  # the stale socket got /2


@pytest.mark.parametrize(
    ("close", "errors"),
    [
        (Close(), (ServerDisconnectedError,)),
        (Reset(), (ServerDisconnectedError, ClientOSError)),
    ],
    ids=["fin", "rst"],
)
async def test_stale_keepalive_post_is_not_retried(
    scripted_server: ScriptedServer, close: Step, errors: tuple[type[Exception], ...]
) -> None:
    scripted_server.script(stale_second_request(close), SERVE_FRESH)
    connector = TCPConnector()
    async with ClientSession(connector=connector) as session:
        assert await fetch(session, scripted_server.url("/1")) == b"first"
        with pytest.raises(errors):
            await session.post(scripted_server.url("/2"), data=b"not idempotent")
        assert connector.stats() == {"in_use": 0, "idle": 0, "waiting": 0}
        assert await fetch(session, scripted_server.url("/3")) == b"fresh"
    assert scripted_server.accepted == 2
    assert [len(c.requests) for c in scripted_server.connections] == [2, 1]


async def test_fresh_connection_closed_unanswered_is_not_retried(
    scripted_server: ScriptedServer,
) -> None:
    scripted_server.script([ReadRequest(), Close()])
    connector = TCPConnector()
    async with ClientSession(connector=connector) as session:
        with pytest.raises(ServerDisconnectedError):
            await fetch(session, scripted_server.url())
        assert clean(connector)
    assert scripted_server.accepted == 1


async def test_stale_retry_happens_at_most_once(scripted_server: ScriptedServer) -> None:
    scripted_server.script(stale_second_request(Close()), [ReadRequest(), Close()])
    connector = TCPConnector()
    async with ClientSession(connector=connector) as session:
        assert await fetch(session, scripted_server.url("/1")) == b"first"
        with pytest.raises(ServerDisconnectedError):
            await fetch(session, scripted_server.url("/2"))
        assert connector.stats() == {"in_use": 0, "idle": 0, "waiting": 0}
    assert scripted_server.accepted == 2  # the original and one retry, no more
