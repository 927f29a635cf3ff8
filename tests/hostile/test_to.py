"""TO-01..03: every phase times out on time, trickles hit the total deadline,
decoding never starves the loop, and cancellation is never swallowed.

TO-04 (the suite under ``python -O``) is a run of this directory, not a test.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from servers import Hang, ReadRequest, ScriptedConnection, Send, SendSlowly, Step
from servers.faults import FaultServer, StreamForever, zlib_bomb

from client import (
    AbstractResolver,
    ClientSession,
    ClientTimeout,
    ConnectionTimeoutError,
    ServerTimeoutError,
    SocketTimeoutError,
    TCPConnector,
    TotalTimeoutError,
)
from client.resolver import ResolveResult
from client.timeouts import DEFAULT_TIMEOUT
from client.ws_models import DEFAULT_WS_CLIENT_TIMEOUT
from jobs import TimeoutSpec

from .support import assert_pool_healthy, fetch, pool_stats

LIMIT = 0.5
HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"


class SilentResolver(AbstractResolver):
    """A DNS server that never answers."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def close(self) -> None:
        """Nothing to release."""


async def timed(coro: Awaitable[Any]) -> tuple[BaseException, float]:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ServerTimeoutError) as info:
        await coro
    return info.value, loop.time() - started


# -- TO-01 ----------------------------------------------------------------------------------

PHASES: dict[str, tuple[str, type[BaseException], ClientTimeout]] = {
    "accept-then-silence": ("http", SocketTimeoutError, ClientTimeout(sock_read=LIMIT)),
    "tls-handshake-stall": ("https", ConnectionTimeoutError, ClientTimeout(sock_connect=LIMIT)),
    "headers-then-stall": ("http", SocketTimeoutError, ClientTimeout(sock_read=LIMIT)),
    "dns-silence": ("dns", ConnectionTimeoutError, ClientTimeout(connect=LIMIT)),
    "connect-silence": ("proxy", ConnectionTimeoutError, ClientTimeout(sock_connect=LIMIT)),
    "total-deadline": ("http", TotalTimeoutError, ClientTimeout(total=LIMIT)),
}


@pytest.mark.parametrize("phase", PHASES)
async def test_TO_01_each_phase_times_out_on_time(fault_server: FaultServer, phase: str) -> None:
    kind, error, timeout = PHASES[phase]
    silent: list[Step] = [ReadRequest(), Hang()]
    url = fault_server.url()
    kwargs: dict[str, Any] = {}
    connector = TCPConnector()
    if phase == "headers-then-stall":
        silent = [ReadRequest(), Send(HEAD + b"x" * 10), Hang()]
    elif kind == "https":
        silent = [Hang()]  # accepts TCP, never answers the ClientHello
        url = url.replace("http://", "https://")
    elif kind == "dns":
        connector = TCPConnector(resolver=SilentResolver())
        url = f"http://never.test:{fault_server.port}/"
    elif kind == "proxy":
        silent = [_ReadHead(), Hang()]  # reads the CONNECT, never answers it
        url, kwargs["proxy"] = "https://origin.test/", fault_server.base
    fault_server.faults(silent)
    async with ClientSession(connector=connector, timeout=timeout) as session:
        exc, elapsed = await timed(fetch(session, url, **kwargs))
        assert type(exc) is error
        assert LIMIT * 0.9 <= elapsed <= LIMIT * 1.1 + 0.05  # loop-tick slack
        if kind != "dns":
            await assert_pool_healthy(session, fault_server, closed=())


async def test_TO_01_defaults_are_finite() -> None:
    # The session default (aiohttp's): five minutes in all, 30 s per connect attempt;
    # every other phase (DNS, TLS, CONNECT, reads, pool wait) sits under ``total``.
    async with ClientSession() as session:
        assert session.timeout == DEFAULT_TIMEOUT
    assert (DEFAULT_TIMEOUT.total, DEFAULT_TIMEOUT.sock_connect) == (300, 30)
    # The runner gives every request its own, tighter limits.
    spec = TimeoutSpec()
    assert (spec.total, spec.connect, spec.sock_read) == (60, 10, 30)
    # Websockets: the closing handshake is bounded too.
    assert DEFAULT_WS_CLIENT_TIMEOUT.ws_close is not None


class _ReadHead:
    async def run(self, conn: ScriptedConnection) -> None:
        conn.requests.append(await conn.reader.readuntil(b"\r\n\r\n"))


# -- TO-02 ----------------------------------------------------------------------------------

# Scaled from "1 byte every 0.9 s against a 1 s read timeout": every gap beats sock_read.
TRICKLE = ClientTimeout(total=0.6, sock_read=0.1)


@pytest.mark.parametrize("where", ["headers", "body"])
async def test_TO_02_slowloris_hits_the_total_deadline(
    fault_server: FaultServer, where: str
) -> None:
    slow = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"s" * 100 + b"\r\n\r\n"
    if where == "headers":
        steps: list[Step] = [ReadRequest(), SendSlowly(slow, 1, 0.07), Hang()]
    else:
        steps = [ReadRequest(), Send(HEAD), SendSlowly(b"b" * 100, 1, 0.07), Hang()]
    fault_server.faults(steps)
    async with ClientSession(timeout=TRICKLE) as session:
        exc, elapsed = await timed(fetch(session, fault_server.url()))
        assert type(exc) is TotalTimeoutError  # sock_read alone never fires on a trickle
        assert 0.54 <= elapsed <= 0.72
        await assert_pool_healthy(session, fault_server, closed=())


# -- TO-03 ----------------------------------------------------------------------------------


async def test_TO_03_decoding_does_not_starve_timers(fault_server: FaultServer) -> None:
    bomb = zlib_bomb(31, 1024 * 1024 * 1024)
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb)
    fault_server.routes({"/": lambda _: head + bomb})
    loop = asyncio.get_running_loop()
    lateness: list[float] = []

    async def timer() -> None:
        due = loop.time() + 0.2
        await asyncio.sleep(0.2)
        lateness.append(loop.time() - due)

    async with ClientSession() as session:
        async with session.get(fault_server.url()) as resp:
            await resp.content.readany()  # decoding has started
            ticking = asyncio.create_task(timer())
            decoded = 0
            while not ticking.done():  # a job decoding flat out, never awaiting I/O
                decoded += len(await resp.content.readany())
            await ticking
    assert decoded > 10 * 1024 * 1024
    assert lateness[0] < 0.1  # the 200 ms timer fired within 300 ms


async def wait_for(predicate: Callable[..., bool]) -> None:
    async with asyncio.timeout(3):
        while not predicate():
            await asyncio.sleep(0.002)


@pytest.mark.parametrize("phase", ["dns", "tls-handshake", "head", "body"])
async def test_TO_03_cancellation_is_never_swallowed(fault_server: FaultServer, phase: str) -> None:
    resolver = SilentResolver()
    connector = TCPConnector(resolver=resolver)
    url = fault_server.url()
    if phase == "dns":
        url = f"http://never.test:{fault_server.port}/"
    elif phase == "tls-handshake":
        fault_server.script([Hang()])  # every connection
        url = url.replace("http://", "https://")
    elif phase == "head":
        fault_server.script([ReadRequest(), Hang()])
    else:
        fault_server.script([ReadRequest(), Send(HEAD), StreamForever(b"x", 0.01)])
    async with ClientSession(connector=connector) as session:
        for attempt in range(3):  # every time, not by luck
            task = asyncio.create_task(fetch(session, url))
            if phase == "dns":
                await wait_for(resolver.asked.is_set)
            elif phase == "body":
                await wait_for(lambda n=attempt: len(fault_server.requests) > n)
                await asyncio.sleep(0.03)  # the body is streaming in
            else:
                await wait_for(lambda n=attempt: fault_server.accepted > n)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert task.cancelled()
            assert pool_stats(session)["in_use"] == 0
        fault_server.faults()
        await assert_pool_healthy(session, fault_server, closed=(), fresh=False)


def test_TO_04_defences_hold_under_python_O(tmp_path: Any) -> None:
    """Under ``python -O`` (asserts stripped) the defences still hold.

    CI runs all of tests/hostile again under -O; this checks the product code
    itself in an optimised interpreter: injection refused, limits enforced.
    """
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "o_mode.py"
    script.write_text(
        "import asyncio, sys\n"
        "import client\n"
        "from client.http1 import ResponseCodec\n"
        "from client.exceptions import HttpProcessingError\n"
        "assert sys.flags.optimize == 1 or print('not optimised') or sys.exit(3)\n"
        "codec = ResponseCodec()\n"
        "codec.start('GET')\n"
        "try:\n"
        "    codec.feed(b'HTTP/1.1 200 OK\\r\\nContent-Length: 4\\r\\n"
        "Transfer-Encoding: chunked\\r\\n\\r\\n')\n"
        "    sys.exit(4)\n"
        "except HttpProcessingError:\n"
        "    pass\n"
        "async def main():\n"
        "    async with client.ClientSession() as s:\n"
        "        try:\n"
        "            await s.get('http://127.0.0.1:9/', headers={'X': 'a\\r\\nY: b'})\n"
        "        except ValueError:\n"
        "            return 0\n"
        "    return 5\n"
        "sys.exit(asyncio.run(main()))\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-O", str(script)],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
