"""The seed documents' websocket examples run unchanged on ``client``.

Each example is embedded verbatim (004's RST indent dropped) and run by
:class:`seed_support.SeedRunner` in the test's loop, with example.org played
by a real ``websockets`` server that says ``hello``, expects the example's
``hello/answer``, then sends ``close cmd`` and waits for the client's CLOSE.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from seed_support import SeedRunner
from websockets.asyncio.server import ServerConnection, serve

import client

# 004_df6cff8fa7d36e59.txt, "WebSockets"
S004_WEBSOCKETS = r"""
session = aiohttp.ClientSession()
async with session.ws_connect('http://example.org/websocket') as ws:

    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.TEXT:
            if msg.data == 'close cmd':
                await ws.close()
                break
            else:
                await ws.send_str(msg.data + '/answer')
        elif msg.type == aiohttp.WSMsgType.CLOSED:
            break
        elif msg.type == aiohttp.WSMsgType.ERROR:
            break
"""

# 003_8fb840ba3f8acd2e.txt, the websocket notes (``session`` in scope)
S003_WEBSOCKETS = r"""
# websokets (ou must use the only websocket task for both reading
# (e.g. await ws.receive() or async for msg in ws:) and writing but may
# have multiple writer tasks which can only send data asynchronously
# (by await ws.send_str('data') for example))
async with session.ws_connect('http://example.org/ws') as ws:
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.TEXT:
            if msg.data == 'close cmd':
                await ws.close()
                break
            else:
                await ws.send_str(msg.data + '/answer')
        elif msg.type == aiohttp.WSMsgType.ERROR:
            break
"""


@dataclass
class Conversation:
    """What the example.org stand-in heard on each websocket."""

    paths: list[str] = field(default_factory=list)
    heard: list[str] = field(default_factory=list)
    closes: list[int | None] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.paths.append(ws.request.path)
        await ws.send("hello")
        answer = await ws.recv()
        assert isinstance(answer, str)
        self.heard.append(answer)
        await ws.send("close cmd")
        await ws.wait_closed()
        self.closes.append(ws.close_code)
        self.done.set()


@pytest.fixture
async def example_org() -> AsyncIterator[tuple[SeedRunner, Conversation]]:
    talk = Conversation()
    async with serve(talk.handle, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        yield SeedRunner({"http://example.org": f"http://127.0.0.1:{port}"}), talk


async def test_004_websockets(example_org: tuple[SeedRunner, Conversation]) -> None:
    run, talk = example_org
    ns = await run.fragment(S004_WEBSOCKETS, aiohttp=client)
    session = ns["session"]  # the example never closes it
    try:
        ws = ns["ws"]
        assert ws.closed
        assert ws.close_code == 1000
        await asyncio.wait_for(talk.done.wait(), 5)
        assert talk.paths == ["/websocket"]
        assert talk.heard == ["hello/answer"]
        assert talk.closes == [1000]
    finally:
        await session.close()


async def test_003_websockets(example_org: tuple[SeedRunner, Conversation]) -> None:
    run, talk = example_org
    async with client.ClientSession() as session:
        ns = await run.fragment(S003_WEBSOCKETS, aiohttp=client, session=session)
    assert ns["ws"].closed
    await asyncio.wait_for(talk.done.wait(), 5)
    assert talk.paths == ["/ws"]
    assert talk.heard == ["hello/answer"]
    assert talk.closes == [1000]
