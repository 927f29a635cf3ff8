"""Assertions shared by the hostile-peer tests."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from servers.faults import OK_BODY, FaultServer

from client import ClientPayloadError, ClientResponseError, ClientSession
from client.exceptions import HttpProcessingError

#: What a framing violation surfaces as: in the head, or in the body once read.
PROTOCOL_ERRORS = (ClientResponseError, ClientPayloadError)


async def fetch(session: ClientSession, url: str, method: str = "GET", **kwargs: Any) -> bytes:
    """The whole body of ``method url`` (any status)."""
    async with session.request(method, url, **kwargs) as resp:
        return await resp.read()


def protocol_cause(exc: BaseException) -> HttpProcessingError:
    """The ``HttpProcessingError`` behind a client error; fails the test if none."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, HttpProcessingError):
            return seen
        seen = seen.__cause__
    pytest.fail(f"{exc!r} was not caused by a protocol error")


async def assert_protocol_error(session: ClientSession, url: str, **kwargs: Any) -> str:
    """The request fails with a protocol error; returns the error's text."""
    with pytest.raises(PROTOCOL_ERRORS) as info:
        await fetch(session, url, **kwargs)
    return str(protocol_cause(info.value))


def pool_stats(session: ClientSession) -> dict[str, int]:
    connector = session.connector
    assert connector is not None
    return connector.stats()


async def assert_pool_healthy(
    session: ClientSession,
    server: FaultServer,
    *,
    closed: tuple[int, ...] = (0,),
    fresh: bool = True,
) -> None:
    """The faulty connections were closed by the client, nothing is checked out or
    pooled, and the next request gets its own answer on a fresh connection.

    ``fresh=False``: earlier requests succeeded, so an idle pooled socket is fine.
    """
    for index in closed:
        await server.wait_closed_by_client(index)
    stats = pool_stats(session)
    assert (stats["in_use"], stats["waiting"]) == (0, 0)
    if fresh:
        assert stats["idle"] == 0, "a connection that saw a fault was pooled"
    accepted = server.accepted
    async with session.get(server.url("/next")) as resp:
        assert resp.status == 200
        assert await resp.read() == OK_BODY
        if fresh:
            assert resp.headers["X-Conn"] == str(accepted), "not answered on a new connection"
    if fresh:
        assert server.accepted == accepted + 1
    assert pool_stats(session)["in_use"] == 0


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@asynccontextmanager
async def watch_loop() -> AsyncIterator[dict[str, float]]:
    """Samples RSS growth and the longest event-loop stall (CPU seconds) meanwhile."""
    seen = {"stall": 0.0, "rss_growth": 0.0}
    gc.collect()  # a full collection of earlier tests' garbage is not the body's stall
    base = rss()

    async def tick() -> None:
        # CPU time of this thread between two ticks: what the loop spent without
        # yielding. (Wall time would also count other processes preempting us.)
        last = time.thread_time()
        while True:
            await asyncio.sleep(0.002)
            now = time.thread_time()
            seen["stall"] = max(seen["stall"], now - last)
            seen["rss_growth"] = max(seen["rss_growth"], rss() - base)
            last = now

    task = asyncio.create_task(tick())
    await asyncio.sleep(0)
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        seen["rss_growth"] = max(seen["rss_growth"], rss() - base)
