"""uvloop: the CLI runs on it when installed (``--no-uvloop`` opts out), and the
client works on its transports (they are not ``asyncio.Transport`` subclasses).

Skipped when uvloop is not installed (it is the ``uvloop`` / ``bench`` extra).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from servers import BackgroundLoop, CountingServer

import client
import runner.cli
from runner.cli import main

uvloop = pytest.importorskip("uvloop")


async def _started(server: CountingServer) -> CountingServer:
    await server.start()
    return server


@pytest.fixture
def served(background_loop: BackgroundLoop) -> Iterator[CountingServer]:
    server = background_loop.run(_started(CountingServer(body=b"uv body")))
    yield server
    background_loop.run(server.close())


def _spy_factory(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the type of every loop the CLI creates through uvloop's factory."""
    made: list[str] = []
    real: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop

    def factory() -> asyncio.AbstractEventLoop:
        loop = real()
        made.append(type(loop).__module__)
        return loop

    monkeypatch.setattr(runner.cli, "_uvloop_factory", lambda: factory)
    return made


def test_cli_runs_on_uvloop_by_default(
    served: CountingServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = _spy_factory(monkeypatch)
    out = tmp_path / "r.jsonl"
    urls = [f"{served.url('/a')}", f"{served.url('/b')}"]
    assert main([*urls, "--quiet", "--output", str(out)]) == 0
    assert made == ["uvloop"]
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted((r["status"], r["size"]) for r in recs) == [(200, 7), (200, 7)]


def test_no_uvloop_flag_uses_asyncio_loop(
    served: CountingServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = _spy_factory(monkeypatch)
    out = tmp_path / "r.jsonl"
    assert main([served.url("/a"), "--quiet", "--no-uvloop", "--output", str(out)]) == 0
    assert made == []
    assert json.loads(out.read_text())["status"] == 200


def test_client_keeps_alive_on_uvloop(served: CountingServer) -> None:
    async def fetch_three() -> list[tuple[int, bytes]]:
        async with client.ClientSession() as session:
            results = []
            for path in ("/1", "/2", "/3"):
                async with session.get(served.url(path)) as resp:
                    results.append((resp.status, await resp.read()))
            return results

    assert uvloop.run(fetch_three()) == [(200, b"uv body")] * 3
    assert served.stats.connections == 1  # one socket, reused: the protocol kept it
