"""Proxies for the proxy tests: a real one (proxy.py) and a recording fake.

* :class:`ProxyPy` runs the ``proxy.py`` package as a subprocess on an
  ephemeral loopback port (``--port 0 --port-file``), optionally with
  ``--basic-auth``; its access log tells which requests went through it.
* :class:`RecordingProxy` is a small forward proxy in the test's loop that
  records every request head it receives. ``CONNECT`` is answered ``200`` and
  relayed to the (loopback) target, so a TLS origin behind it sees the
  decrypted inner request; other requests are answered by ``respond`` without
  contacting anyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .endpoint import LOOPBACK
from .scripted import http_response

_STARTUP = 15.0  # seconds proxy.py may take to write its port file


class ProxyPy:
    """``python -m proxy`` on 127.0.0.1; ``url`` once :meth:`start` returned."""

    def __init__(self, *, basic_auth: str | None = None) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="proxypy-")
        self._port_file = Path(self._dir.name) / "port"
        self.log_file = Path(self._dir.name) / "access.log"
        self._basic_auth = basic_auth
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> ProxyPy:
        """Spawn the proxy and wait until it listens."""
        args = [
            sys.executable,
            "-m",
            "proxy",
            "--hostname",
            LOOPBACK,
            "--port",
            "0",
            "--port-file",
            str(self._port_file),
            "--num-workers",
            "1",
            "--num-acceptors",
            "1",
            "--log-level",
            "INFO",  # the access log: one line per proxied connection
            "--log-file",
            str(self.log_file),
        ]
        if self._basic_auth is not None:
            args += ["--basic-auth", self._basic_auth]
        self._process = subprocess.Popen(
            args,
            cwd=self._dir.name,  # "-m proxy" must find the package, not a local proxy.py
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + _STARTUP
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"proxy.py exited with {self._process.returncode}")
            text = self._port_file.read_text() if self._port_file.exists() else ""
            if text.strip():
                self.port = int(text.split()[0])
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("proxy.py did not start in time")

    def access_log(self) -> str:
        """The access-log lines so far (a line is written when a connection ends)."""
        return self.log_file.read_text() if self.log_file.exists() else ""

    def mark(self) -> int:
        """Where the access log ends now (for :meth:`wait_for_log`'s ``since``)."""
        return len(self.access_log())

    async def wait_for_log(self, needle: str, *, since: int = 0, timeout: float = 5.0) -> str:
        """Wait until ``needle`` appears in the access log after ``since``; return that part."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while needle not in (log := self.access_log()[since:]):
            if loop.time() > deadline:
                raise AssertionError(f"{needle!r} not in proxy.py's log:\n{log}")
            await asyncio.sleep(0.02)
        return log

    def stop(self) -> None:
        """Terminate the process (it is ours, by pid) and remove its files."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._dir.cleanup()


@dataclass(frozen=True, slots=True)
class Head:
    """One request head as the proxy received it (header names as sent)."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    raw: bytes

    def get_all(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive)."""
        return [value for key, value in self.headers if key.lower() == name.lower()]


def parse_head(raw: bytes) -> Head:
    """Split a request head (up to and including CRLF CRLF)."""
    lines = raw.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name, value.strip()))
    return Head(method, target, tuple(headers), raw)


Responder = Callable[[Head], bytes]


def _ok(_: Head) -> bytes:
    return http_response(200, b"proxied", headers=[("Content-Type", "text/plain")])


class RecordingProxy:
    """A forward proxy that records request heads; see the module docstring."""

    def __init__(
        self, *, respond: Responder = _ok, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.heads: list[Head] = []
        self.respond = respond
        self._ssl = ssl_context
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def url(self) -> str:
        scheme = "https" if self._ssl is not None else "http"
        return f"{scheme}://{LOOPBACK}:{self.port}"

    def methods(self) -> list[str]:
        return [head.method for head in self.heads]

    async def start(self) -> RecordingProxy:
        self._server = await asyncio.start_server(self._handle, LOOPBACK, 0, ssl=self._ssl)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()  # every handler then ends on its own
        tasks = list(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=2)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                head = parse_head(raw)
                self.heads.append(head)
                if head.method == "CONNECT":
                    await self._tunnel(head, reader, writer)
                    return
                writer.write(self.respond(head))
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _tunnel(
        self, head: Head, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        host, _, port = head.target.rpartition(":")
        if host.strip("[]") not in (LOOPBACK, "localhost", "::1"):
            writer.write(http_response(403, b"loopback only"))
            return
        up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
        self._writers.add(up_writer)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._writers.discard(up_writer)
            up_writer.close()


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
    except OSError:
        pass
    finally:
        if dst.can_write_eof():
            with contextlib.suppress(OSError):
                dst.write_eof()
        else:
            dst.close()


def proxy_env_names() -> list[str]:
    """Every variable in ``os.environ`` that a trust_env client would read."""
    return [
        name
        for name in os.environ
        if name.lower().endswith("_proxy") or name in ("NETRC", "REQUEST_METHOD")
    ]
