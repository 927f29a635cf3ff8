"""SSRF test support: a connect guard, scripted resolvers, the CLI in-process.

The guard: the SSRF tests point the client at private addresses on purpose. While
one runs (``guarded()``), an audit hook refuses (and records) every
``socket.connect`` to anything but 127.0.0.1, so a regression fails the test
instead of sending a packet anywhere, and tests can assert on the exact addresses
the client connected to.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from servers import LOOPBACK

from client import AbstractResolver
from client.resolver import ResolveResult
from runner.cli import build_parser, main

# SSRF-02: legacy numeric spellings of 127.0.0.1 that the OS would resolve.
NON_CANONICAL = ["2130706433", "0x7f.1", "017700000001", "127.1", "0x7f000001", "127.0.1"]

_connects: list[list[str]] = []  # a stack: the innermost guard records


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event != "socket.connect" or not _connects:
        return
    address = args[1]
    host = str(address[0]) if isinstance(address, tuple) else str(address)
    _connects[-1].append(host)
    if host != LOOPBACK:
        raise PermissionError(f"test guard: refusing to connect to {host!r}")


sys.addaudithook(_audit)  # audit hooks cannot be removed; inactive outside a guard


@contextmanager
def guarded() -> Iterator[list[str]]:
    """Addresses the process connects to meanwhile (only 127.0.0.1 is let through)."""
    seen: list[str] = []
    _connects.append(seen)
    try:
        yield seen
    finally:
        _connects.pop()


def fetchrun(*args: str | Path) -> int:
    """``runner.cli.main`` in-process, on asyncio's own loop: the guard sees its connects
    (uvloop dials in C, past the audit hook)."""
    argv = [str(a) for a in args]
    if "--no-uvloop" in build_parser().format_usage():
        argv.append("--no-uvloop")
    return main(argv)


class FixedNames(AbstractResolver):
    """Answers each name with fixed addresses; ``answers`` may change between calls."""

    def __init__(self, answers: dict[str, Sequence[str]]) -> None:
        self.answers = {name: list(addrs) for name, addrs in answers.items()}
        self.queries: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.queries.append(host)
        addresses = self.answers.get(host)
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} is not a test name")
        return [result(host, addr, port) for addr in addresses]

    async def close(self) -> None:
        """Nothing to release."""


class Rebinding(FixedNames):
    """A DNS rebinding attacker: each lookup of a name gets the next answer in turn."""

    def __init__(self, name: str, *answers: Sequence[str]) -> None:
        super().__init__({})
        self._name = name
        self._answers = [list(a) for a in answers]

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host == self._name and self._answers:
            self.answers[host] = self._answers.pop(0)
        return await super().resolve(host, port, family)


def result(host: str, addr: str, port: int) -> ResolveResult:
    numeric = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    return ResolveResult(hostname=host, host=addr, port=port, family=family, proto=0, flags=numeric)
