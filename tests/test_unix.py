"""``UnixConnector``: HTTP over a Unix domain socket, against httpbin on waitress.

The URL's host only fills the ``Host`` header: nothing is resolved, every
request goes to the socket.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import httpbin_app
from waitress import wasyncore
from waitress.server import create_server

from client import (
    ClientConnectorError,
    ClientSession,
    NonHttpUrlClientError,
    TraceConfig,
    UnixClientConnectorError,
    UnixConnector,
)


class UnixHttpbin:
    """httpbin served by waitress on a Unix socket, in a daemon thread."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self._server = create_server(
            httpbin_app(), unix_socket=self.path, unix_socket_perms="600", threads=4
        )
        self._thread = threading.Thread(target=self._server.run, name="waitress-unix", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        # As tests/servers/wsgi.py: close waitress's sockets from its own thread.
        socket_map = self._server._map
        self._server.trigger.pull_trigger(lambda: wasyncore.close_all(socket_map))
        self._thread.join(timeout=15)
        self._server.task_dispatcher.shutdown(cancel_pending=True, timeout=15)


@pytest.fixture(scope="module")
def unix_httpbin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UnixHttpbin]:
    # A short directory: AF_UNIX paths are limited to about 100 bytes.
    server = UnixHttpbin(tmp_path_factory.mktemp("unix") / "httpbin.sock")
    server.start()
    yield server
    server.stop()


async def test_get_over_a_unix_socket(unix_httpbin: UnixHttpbin) -> None:
    connector = UnixConnector(path=unix_httpbin.path)
    assert connector.path == unix_httpbin.path
    async with ClientSession(connector=connector) as session:
        async with session.get("http://localhost/get?x=1") as resp:
            assert resp.status == 200
            data = await resp.json()
    assert data["args"] == {"x": "1"}
    assert data["headers"]["Host"] == "localhost"
    assert data["url"] == "http://localhost/get?x=1"


async def test_the_host_is_never_resolved(unix_httpbin: UnixHttpbin) -> None:
    async with ClientSession(connector=UnixConnector(unix_httpbin.path)) as session:
        async with session.get("http://no-such-host.invalid:8080/headers") as resp:
            assert resp.status == 200
            assert (await resp.json())["headers"]["Host"] == "no-such-host.invalid:8080"


async def test_post_and_keep_alive(unix_httpbin: UnixHttpbin) -> None:
    created: list[str] = []
    reused: list[str] = []
    config = TraceConfig()

    async def on_create(*_: object) -> None:
        created.append("create")

    async def on_reuse(*_: object) -> None:
        reused.append("reuse")

    config.on_connection_create_end.append(on_create)
    config.on_connection_reuseconn.append(on_reuse)
    connector = UnixConnector(unix_httpbin.path)
    async with ClientSession(connector=connector, trace_configs=[config]) as session:
        for i in range(3):
            async with session.post("http://localhost/post", json={"i": i}) as resp:
                assert (await resp.json())["json"] == {"i": i}
        assert connector.stats()["idle"] == 1
    assert (len(created), len(reused)) == (1, 2)


async def test_limit_queues_requests_on_the_socket(unix_httpbin: UnixHttpbin) -> None:
    connector = UnixConnector(unix_httpbin.path, limit=1)
    async with ClientSession(connector=connector) as session:

        async def get(i: int) -> int:
            async with session.get(f"http://localhost/anything/{i}") as resp:
                return int((await resp.json())["url"].rsplit("/", 1)[1])

        assert await asyncio.gather(*(get(i) for i in range(4))) == [0, 1, 2, 3]


async def test_missing_socket_is_a_unix_connector_error(tmp_path: Path) -> None:
    path = str(tmp_path / "nobody-listens.sock")
    async with ClientSession(connector=UnixConnector(path)) as session:
        with pytest.raises(UnixClientConnectorError) as info:
            await session.get("http://localhost/")
    error = info.value
    assert isinstance(error, ClientConnectorError)
    assert error.path == path
    assert isinstance(error.os_error, FileNotFoundError)
    assert str(error).startswith(f"Cannot connect to unix socket {path} [")


async def test_unix_scheme_urls_are_not_requestable(unix_httpbin: UnixHttpbin) -> None:
    """``unix`` is in the connector's schema set (as aiohttp) but a URL needs http(s)."""
    async with ClientSession(connector=UnixConnector(unix_httpbin.path)) as session:
        with pytest.raises(NonHttpUrlClientError):
            await session.get("unix:///get")
