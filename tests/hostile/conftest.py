"""Fixtures of the hostile-peer suite: a fault server and a session per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from servers.faults import FaultServer

from client import ClientSession, ClientTimeout

#: Short but generous limits: a hostile test that hangs fails in seconds, not minutes.
QUICK = ClientTimeout(total=10, sock_connect=5, sock_read=5)


@pytest.fixture
async def fault_server() -> AsyncIterator[FaultServer]:
    """A started :class:`FaultServer`: healthy until ``.faults(...)`` is called."""
    server = FaultServer()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def other_server() -> AsyncIterator[FaultServer]:
    """A second origin (another port) for cross-origin checks."""
    server = FaultServer()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def session() -> AsyncIterator[ClientSession]:
    """A session with default settings except :data:`QUICK` timeouts."""
    async with ClientSession(timeout=QUICK) as s:
        yield s
