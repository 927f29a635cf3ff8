"""A test resolver: chosen host names all lead to 127.0.0.1.

Pass it as ``TCPConnector(resolver=LoopbackNames("x.co.uk", "y.co.uk"))`` to make
requests to real names (cookie domains, certificate names) reach the loopback
servers, without any query leaving the machine. Other names fail as unknown.
"""

from __future__ import annotations

import socket

from client import AbstractResolver
from client.resolver import ResolveResult

from .endpoint import LOOPBACK


class LoopbackNames(AbstractResolver):
    """Resolves each of *names* (case-insensitively) to 127.0.0.1; records queries."""

    def __init__(self, *names: str) -> None:
        self.names = frozenset(name.lower() for name in names)
        #: Every host name asked for, in order (e.g. to prove a secret never got here).
        self.queries: list[str] = []
        self.closed = False

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.queries.append(host)
        if host.lower().rstrip(".") not in self.names:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} is not a test name")
        return [
            ResolveResult(
                hostname=host,
                host=LOOPBACK,
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            )
        ]

    async def close(self) -> None:
        self.closed = True
