"""Connectors: the connection pool (``BaseConnector``) and how to dial (TCP, Unix).

Pool rules, decided synchronously (no await between a check and its update):

* ``limit`` caps connections *in use* (checked out or being opened), and
  ``limit_per_host`` the same per ``ConnectionKey``; idle pooled sockets are
  not counted, as in aiohttp.
* Idle connections are reused last-in first-out: the most recently used
  socket is the one least likely to have been closed by the server
  (aiohttp pops the oldest).
* Waiters are served first-come first-served across all hosts.
* An idle connection past ``keepalive_timeout`` is closed, at checkout or by
  one sweep timer.
* Ours: with a ``limit``, idle sockets count towards it too: when in-use plus
  idle would pass ``limit``, the least recently used idle socket is closed, so
  a crawl of many hosts never holds more than ``limit`` sockets open
  (security.md C9, LIM-07). aiohttp keeps every idle socket until it expires.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from .connection import Connection, ConnectionKey, ConnState, Releaser
from .exceptions import ConnectionTimeoutError, PoolTimeoutError
from .protocol import ResponseProtocol
from .timeouts import ClientTimeout, active

if TYPE_CHECKING:
    from .tracing import Trace

__all__ = ("BaseConnector", "ConnectionKey")


class BaseConnector(Releaser):
    """A pool of HTTP/1.1 connections; subclasses say how to open one."""

    allowed_protocol_schema_set: frozenset[str] = frozenset({"http", "https", "ws", "wss"})

    def __init__(
        self,
        *,
        keepalive_timeout: float | object | None = ...,
        force_close: bool = False,
        limit: int = 100,
        limit_per_host: int = 0,
        enable_cleanup_closed: bool = False,
        timeout_ceil_threshold: float = 5,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if force_close:
            if keepalive_timeout is not None and keepalive_timeout is not ...:
                raise ValueError("keepalive_timeout cannot be set if force_close is True")
            keepalive: float | None = None
        else:
            keepalive = 15.0 if keepalive_timeout is ... else keepalive_timeout  # type: ignore[assignment]
        if limit < 0 or limit_per_host < 0:
            raise ValueError("limit and limit_per_host must be >= 0")
        self._loop = loop
        self._keepalive_timeout = keepalive
        self._force_close = force_close
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._idle: dict[ConnectionKey, list[Connection]] = {}
        self._idle_lru: dict[Connection, None] = {}  # every idle connection, oldest first
        self._acquired: set[Connection] = set()
        self._in_use = 0  # acquired connections plus dials in progress
        self._in_use_per_key: dict[ConnectionKey, int] = {}
        self._waiters: deque[tuple[ConnectionKey, asyncio.Future[None]]] = deque()
        self._sweep_timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._closing: set[asyncio.Future[None]] = set()

    def __repr__(self) -> str:
        idle = sum(len(v) for v in self._idle.values())
        return (
            f"<{type(self).__name__} in_use={self._in_use} idle={idle} "
            f"waiting={len(self._waiters)} limit={self._limit}>"
        )

    # -- public properties (aiohttp names) -------------------------------------

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def limit_per_host(self) -> int:
        return self._limit_per_host

    @property
    def force_close(self) -> bool:
        return self._force_close

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def keepalive_timeout(self) -> float | None:
        return self._keepalive_timeout

    def stats(self) -> dict[str, int]:
        """Counters for tests and diagnostics: in use, idle, waiting."""
        return {
            "in_use": self._in_use,
            "idle": sum(len(v) for v in self._idle.values()),
            "waiting": len(self._waiters),
        }

    # -- checkout --------------------------------------------------------------

    async def connect(
        self,
        key: ConnectionKey,
        timeout: ClientTimeout,
        traces: list[Trace] | None = None,
    ) -> Connection:
        """Check a connection out for ``key``: a pooled one, or a new one."""
        if self._closed:
            raise RuntimeError("Connector is closed.")
        conn = self._take_idle(key)
        if conn is not None:
            # Hot path (keep-alive reuse, no traces): no coroutine for _reused.
            return await self._reused(conn, traces) if traces else conn
        loop = asyncio.get_running_loop()
        connect_limit = active(timeout.connect)
        deadline = loop.time() + connect_limit if connect_limit else None
        if not self._has_slot(key):
            await self._wait_for_slot(key, timeout, deadline, traces)
            conn = self._take_idle(key)
            if conn is not None:  # queued, then handed a pooled socket (aiohttp traces it too)
                return await self._reused(conn, traces)
        self._reserve(key)
        self._trim_idle()
        try:
            if traces:
                for trace in traces:
                    await trace.send_connection_create_start()
            protocol = await self._dial_within(key, timeout, deadline, traces)
        except BaseException:
            self._unreserve(key)
            raise
        if self._closed:
            protocol.abort()
            self._unreserve(key)
            raise RuntimeError("Connector is closed.")
        conn = Connection(self, key, protocol)
        conn.requests = 1
        self._acquired.add(conn)
        if traces:
            for trace in traces:
                await trace.send_connection_create_end()
        return conn

    def take_pooled(self, key: ConnectionKey) -> Connection | None:
        """``connect`` for an untraced request when a pooled socket is ready, else ``None``.

        No coroutine: the keep-alive hot path checks out synchronously (``exchange``).
        """
        if self._closed:
            raise RuntimeError("Connector is closed.")
        return self._take_idle(key)

    @staticmethod
    async def _reused(conn: Connection, traces: list[Trace] | None) -> Connection:
        if traces:
            try:
                for trace in traces:
                    await trace.send_connection_reuseconn()
            except BaseException:
                conn.release()  # a failing callback must not keep the socket checked out
                raise
        return conn

    def _take_idle(self, key: ConnectionKey) -> Connection | None:
        stack = self._idle.get(key)
        if not stack:
            return None
        # The socket's own loop (the running one): asyncio.get_running_loop() costs a
        # getpid() system call per request.
        now = stack[-1].protocol.loop.time()
        keepalive = self._keepalive_timeout
        while stack:
            conn = stack.pop()  # LIFO: the freshest socket
            self._idle_lru.pop(conn, None)
            # conn.is_reusable() and not conn.has_expired(...), inline: once per request.
            if (
                conn.state is not ConnState.CLOSED
                and conn.protocol.reusable
                and (keepalive is None or now - conn.idle_since <= keepalive)
            ):
                if not stack:
                    del self._idle[key]
                conn.state = ConnState.ACTIVE
                conn.requests += 1
                self._acquired.add(conn)
                self._in_use += 1  # self._reserve(key), inline: once per checkout
                self._in_use_per_key[key] = self._in_use_per_key.get(key, 0) + 1
                return conn
            conn.state = ConnState.CLOSED
            conn.protocol.close()
        del self._idle[key]
        return None

    def _has_slot(self, key: ConnectionKey) -> bool:
        if self._limit and self._in_use >= self._limit:
            return False
        return not (
            self._limit_per_host and self._in_use_per_key.get(key, 0) >= self._limit_per_host
        )

    def _reserve(self, key: ConnectionKey) -> None:
        self._in_use += 1
        self._in_use_per_key[key] = self._in_use_per_key.get(key, 0) + 1

    def _unreserve(self, key: ConnectionKey) -> None:
        self._in_use -= 1
        left = self._in_use_per_key[key] - 1
        if left:
            self._in_use_per_key[key] = left
        else:
            del self._in_use_per_key[key]
        self._wake_next()

    async def _wait_for_slot(
        self,
        key: ConnectionKey,
        timeout: ClientTimeout,
        deadline: float | None,
        traces: list[Trace] | None,
    ) -> None:
        loop = asyncio.get_running_loop()
        pool_limit = active(timeout.pool)
        pool_deadline = loop.time() + pool_limit if pool_limit else None
        limits = [d for d in (deadline, pool_deadline) if d is not None]
        when = min(limits) if limits else None
        if traces:
            for trace in traces:
                await trace.send_connection_queued_start()
        while not self._has_slot(key):
            waiter: asyncio.Future[None] = loop.create_future()
            entry = (key, waiter)
            self._waiters.append(entry)
            try:
                async with asyncio.timeout_at(when) as cm:
                    await waiter
            except TimeoutError as exc:
                if not cm.expired():
                    raise
                if pool_deadline is not None and when == pool_deadline:
                    raise PoolTimeoutError(
                        f"No free connection to {key.host}:{key.port} within {pool_limit} s"
                    ) from exc
                raise ConnectionTimeoutError(
                    f"Connection timeout to host {key.host}:{key.port}"
                ) from exc
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake_next()  # pass our wake-up on: we will not use the slot
                raise
            finally:
                with suppress(ValueError):
                    self._waiters.remove(entry)
            if self._closed:
                raise RuntimeError("Connector is closed.")
        if traces:
            for trace in traces:
                await trace.send_connection_queued_end()

    def _wake_next(self) -> None:
        """Wake the oldest waiter whose host has room now."""
        for key, waiter in self._waiters:
            if not waiter.done() and self._has_slot(key):
                waiter.set_result(None)
                return

    async def _dial_within(
        self,
        key: ConnectionKey,
        timeout: ClientTimeout,
        deadline: float | None,
        traces: list[Trace] | None,
    ) -> ResponseProtocol:
        try:
            async with asyncio.timeout_at(deadline) as cm:
                return await self._dial(key, timeout, traces)
        except TimeoutError as exc:
            if cm.expired():
                raise ConnectionTimeoutError(
                    f"Connection timeout to host {key.host}:{key.port}"
                ) from exc
            raise

    async def _dial(
        self, key: ConnectionKey, timeout: ClientTimeout, traces: list[Trace] | None
    ) -> ResponseProtocol:
        raise NotImplementedError

    # -- release (called by Connection) ------------------------------------------

    def _release(self, conn: Connection, reusable: bool) -> None:
        if conn in self._acquired:
            self._acquired.discard(conn)
            self._in_use -= 1
            left = self._in_use_per_key[conn.key] - 1
            if left:
                self._in_use_per_key[conn.key] = left
            else:
                del self._in_use_per_key[conn.key]
        if reusable and not self._force_close and not self._closed:
            conn.state = ConnState.IDLE
            loop = conn.protocol.loop  # not get_running_loop(): see _take_idle
            conn.idle_since = loop.time()
            self._idle.setdefault(conn.key, []).append(conn)
            self._idle_lru[conn] = None
            if self._limit and len(self._idle_lru) > self._limit:
                self._trim_idle()
            if self._sweep_timer is None:
                self._arm_sweep(loop)
        else:
            if conn.state is not ConnState.CLOSED:
                conn.state = ConnState.CLOSED
                conn.protocol.close()
            self._track_close(conn.protocol)
        if self._waiters:  # nobody queued: nothing to wake (the common case)
            self._wake_next()

    def _trim_idle(self) -> None:
        """Keep at most ``limit`` idle sockets, closing the least recently used.

        Open sockets stay under ``2 * limit`` (in use plus idle) however many
        hosts a crawl visits (security.md LIM-07). Counting idle sockets against
        the in-use cap instead would close a busy host's warm socket for every
        new host and churn connections on multi-host runs.
        """
        lru = self._idle_lru
        while self._limit and len(lru) > self._limit:
            conn = next(iter(lru))
            del lru[conn]
            stack = self._idle[conn.key]
            stack.remove(conn)
            if not stack:
                del self._idle[conn.key]
            conn.state = ConnState.CLOSED
            conn.protocol.close()
            self._track_close(conn.protocol)

    def _forget(self, conn: Connection) -> None:
        self._idle_lru.pop(conn, None)
        stack = self._idle.get(conn.key)
        if stack is not None:
            with suppress(ValueError):
                stack.remove(conn)
            if not stack:
                del self._idle[conn.key]
        self._track_close(conn.protocol)

    def _track_close(self, protocol: ResponseProtocol) -> None:
        if not protocol.closed.done():
            self._closing.add(protocol.closed)
            protocol.closed.add_done_callback(self._closing.discard)

    def _arm_sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._sweep_timer is None and self._keepalive_timeout:
            self._sweep_timer = loop.call_later(self._keepalive_timeout, self._sweep)

    def _sweep(self) -> None:
        """Close idle connections that outlived ``keepalive_timeout``."""
        self._sweep_timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        for key in list(self._idle):
            keep = []
            for conn in self._idle[key]:
                if conn.is_reusable() and not conn.has_expired(now, self._keepalive_timeout):
                    keep.append(conn)
                else:
                    self._idle_lru.pop(conn, None)
                    conn.state = ConnState.CLOSED
                    conn.protocol.close()
                    self._track_close(conn.protocol)
            if keep:
                self._idle[key] = keep
            else:
                del self._idle[key]
        if self._idle:
            self._arm_sweep(loop)

    # -- shutdown --------------------------------------------------------------

    async def close(self) -> None:
        """Close every connection and wait until each socket is really closed.

        Waiting for ``connection_lost`` is what makes the old
        "sleep before closing the loop" advice unnecessary.
        """
        if self._closed:
            await self._wait_closing()
            return
        self._closed = True
        if self._sweep_timer is not None:
            self._sweep_timer.cancel()
            self._sweep_timer = None
        conns = [c for stack in self._idle.values() for c in stack] + list(self._acquired)
        self._idle.clear()
        self._idle_lru.clear()
        for conn in self._acquired:
            self._unreserve(conn.key)  # closed below: its slot is free (stats() says 0)
        self._acquired.clear()
        for conn in conns:
            conn.state = ConnState.CLOSED
            protocol = conn.protocol
            if protocol.transport is not None and protocol.transport.get_extra_info("sslcontext"):
                protocol.abort()  # no close_notify dance on shutdown (aiohttp 3.12.11 does so)
            else:
                protocol.abandon()
            self._track_close(protocol)
        for _, waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)  # they see _closed and raise
        await self._close_resources()
        await self._wait_closing()

    async def _close_resources(self) -> None:
        """Subclasses release what they own (the resolver)."""

    async def _wait_closing(self) -> None:
        pending = [f for f in self._closing if not f.done()]
        if pending:
            await asyncio.wait(pending, timeout=5)

    async def __aenter__(self) -> BaseConnector:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def protocol_factory(loop: asyncio.AbstractEventLoop) -> Callable[[], ResponseProtocol]:
    return lambda: ResponseProtocol(loop)


AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, Any]
Hook = Callable[[], Awaitable[None]]
