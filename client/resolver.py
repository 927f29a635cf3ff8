"""Name resolution with aiohttp's names, plus the connector's DNS cache.

Resolvers turn a host name into numeric addresses and raise ``OSError``
(``socket.gaierror``) on failure; the connector wraps that in
``ClientConnectorDNSError``.  Literal IPs never reach a resolver, and both
resolvers here refuse the legacy numeric IPv4 spellings (``127.1``) that the
OS or c-ares would otherwise turn into addresses (security.md SSRF-02).
"""

from __future__ import annotations

import asyncio
import socket
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any, TypedDict

from .helpers import check_host, is_ip_address

if TYPE_CHECKING:
    import aiodns

# aiodns (and pycares under it) is imported on the first lookup, not with the
# package: ~10 ms of `import client` that IP-literal and Unix-socket users never need.
_HAS_AIODNS = find_spec("aiodns") is not None


def _aiodns() -> Any:
    import aiodns

    return aiodns

__all__ = (
    "AbstractResolver",
    "AsyncResolver",
    "DNSCache",
    "DefaultResolver",
    "ResolveResult",
    "ThreadedResolver",
    "check_host",
    "is_ip_address",
)

# Results are numeric: whoever connects must not resolve them again.
_NUMERIC_FLAGS = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
# Skip address families the host has no interface for (as aiohttp does).
_AI_ADDRCONFIG = socket.AI_ADDRCONFIG & getattr(socket, "AI_MASK", -1)


class ResolveResult(TypedDict):
    """One resolved address, in aiohttp's shape."""

    hostname: str
    host: str
    port: int
    family: int
    proto: int
    flags: int


class AbstractResolver(ABC):
    """A DNS resolver, as injected into ``TCPConnector(resolver=...)``."""

    @abstractmethod
    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Return the addresses of ``host``; raise OSError when there are none."""

    @abstractmethod
    async def close(self) -> None:
        """Release the resolver's resources."""

    async def resolve_with_ttl(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> tuple[list[ResolveResult], float | None]:
        """Like :meth:`resolve`, plus the records' TTL in seconds when known.

        Ours (aiohttp has no such call): lets :class:`DNSCache` honour record
        TTLs (aiohttp issue #2262).  The default knows no TTL.
        """
        return await self.resolve(host, port, family), None


def _refuse_numeric(host: str) -> None:
    """Refuse hosts that ``check_host`` rejects, as a lookup failure."""
    try:
        check_host(host)
    except ValueError as exc:
        raise socket.gaierror(socket.EAI_NONAME, str(exc)) from exc


def _ipv6_text(addr: str, scope_id: int) -> str:
    """``fe80::1%eth0``: a link-local address is useless without its zone."""
    if not scope_id:
        return addr
    try:
        return f"{addr}%{socket.if_indextoname(scope_id)}"
    except OSError:
        return f"{addr}%{scope_id}"


class ThreadedResolver(AbstractResolver):
    """``loop.getaddrinfo`` in the default executor (the system resolver)."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        # ``loop`` is accepted for aiohttp compatibility; the running loop is used.
        del loop

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve with the OS; raises ``socket.gaierror``."""
        _refuse_numeric(host)
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, family=family, flags=_AI_ADDRCONFIG
        )
        hosts: list[ResolveResult] = []
        for fam, _, proto, _, sockaddr in infos:
            if fam == socket.AF_INET6:
                if len(sockaddr) < 4:
                    continue  # Python built without IPv6 support
                addr = _ipv6_text(str(sockaddr[0]), int(sockaddr[3]))
            elif fam == socket.AF_INET:
                addr = str(sockaddr[0])
            else:
                continue
            hosts.append(
                ResolveResult(
                    hostname=host,
                    host=addr,
                    port=int(sockaddr[1]),
                    family=fam,
                    proto=proto,
                    flags=_NUMERIC_FLAGS,
                )
            )
        if not hosts:
            raise socket.gaierror(socket.EAI_NONAME, f"no usable address for {host!r}")
        return hosts

    async def close(self) -> None:
        """Nothing to release."""


def _gaierror_from(exc: Exception, host: str) -> socket.gaierror:
    """Map an ``aiodns.error.DNSError`` to the ``gaierror`` getaddrinfo would raise."""
    code = exc.args[0] if exc.args else None
    msg = str(exc.args[1]) if len(exc.args) > 1 else "DNS lookup failed"
    err = _aiodns().error
    if code in (err.ARES_ENOTFOUND, err.ARES_ENONAME, err.ARES_ENODATA):
        eai = socket.EAI_NONAME
    elif code in (err.ARES_ETIMEOUT, err.ARES_ESERVFAIL, err.ARES_ECONNREFUSED, err.ARES_EREFUSED):
        eai = socket.EAI_AGAIN  # transient: a retry may succeed
    else:
        eai = socket.EAI_FAIL
    return socket.gaierror(eai, f"{msg} ({host})")


class AsyncResolver(AbstractResolver):
    """c-ares through aiodns: non-blocking, and it knows each record's TTL.

    Positional and keyword arguments go to ``aiodns.DNSResolver`` (and on to
    ``pycares.Channel``: ``timeout``, ``tries``, ``udp_port``...).  The
    channel is created on first use inside the running loop and bound to it.
    """

    def __init__(self, *args: Any, nameservers: list[str] | None = None, **kwargs: Any) -> None:
        if not _HAS_AIODNS:  # pragma: no cover
            raise RuntimeError("Resolver requires aiodns library")
        if args and isinstance(args[0], asyncio.AbstractEventLoop):
            args = args[1:]  # aiohttp's first positional parameter is the loop
        if len(args) > 1 or (args and nameservers is not None):
            raise TypeError("AsyncResolver takes at most one positional argument (nameservers)")
        kwargs.pop("loop", None)
        self._kwargs = kwargs
        self._nameservers: list[str] | None = list(args[0]) if args else nameservers
        self._resolver: aiodns.DNSResolver | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    def _channel(self) -> aiodns.DNSResolver:
        loop = asyncio.get_running_loop()
        if self._closed:
            raise RuntimeError("resolver is closed")
        if self._resolver is None:
            self._resolver = _aiodns().DNSResolver(
                nameservers=self._nameservers, loop=loop, **self._kwargs
            )
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError("AsyncResolver is bound to another event loop")
        return self._resolver

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve with c-ares; raises ``socket.gaierror``."""
        return (await self._lookup(host, port, family))[0]

    async def resolve_with_ttl(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> tuple[list[ResolveResult], float | None]:
        """Addresses plus the smallest record TTL (None when c-ares reports 0)."""
        if type(self).resolve is not AsyncResolver.resolve:
            # A subclass customised resolve(): honour it rather than bypass it.
            return await super().resolve_with_ttl(host, port, family)
        return await self._lookup(host, port, family)

    async def _lookup(
        self, host: str, port: int, family: socket.AddressFamily
    ) -> tuple[list[ResolveResult], float | None]:
        _refuse_numeric(host)
        channel = self._channel()
        try:
            result = await channel.getaddrinfo(
                host, family=family, port=port, type=socket.SOCK_STREAM, flags=_AI_ADDRCONFIG
            )
        except _aiodns().error.DNSError as exc:
            raise _gaierror_from(exc, host) from exc
        hosts: list[ResolveResult] = []
        ttl: int | None = None
        for node in result.nodes:
            addr = node.addr[0].decode("ascii")
            if node.family == socket.AF_INET6:
                addr = _ipv6_text(addr, node.addr[3] if len(node.addr) > 3 else 0)
            elif node.family != socket.AF_INET:
                continue
            hosts.append(
                ResolveResult(
                    hostname=host,
                    host=addr,
                    port=int(node.addr[1]),
                    family=int(node.family),
                    proto=0,
                    flags=_NUMERIC_FLAGS,
                )
            )
            ttl = node.ttl if ttl is None else min(ttl, node.ttl)
        if not hosts:
            raise socket.gaierror(socket.EAI_NONAME, f"DNS lookup failed ({host})")
        # c-ares reports 0 for answers without a TTL (hosts file, localhost);
        # treat that as unknown so the cache's own TTL applies.
        return hosts, (float(ttl) if ttl else None)

    async def close(self) -> None:
        """Cancel pending lookups and close the c-ares channel."""
        self._closed = True
        resolver, self._resolver = self._resolver, None
        if resolver is not None:
            await resolver.close()


DefaultResolver: type[AsyncResolver] | type[ThreadedResolver] = (
    AsyncResolver if _HAS_AIODNS else ThreadedResolver
)


class _Entry:
    """Cached addresses for one (host, port), handed out round robin."""

    __slots__ = ("_offset", "addrs", "expires")

    def __init__(self, addrs: list[ResolveResult], expires: float | None) -> None:
        self.addrs = addrs
        self.expires = expires
        self._offset = 0

    def take(self) -> list[ResolveResult]:
        """A copy rotated one further on each call, spreading load (as aiohttp)."""
        i = self._offset
        self._offset = (i + 1) % len(self.addrs)
        return self.addrs[i:] + self.addrs[:i]


class DNSCache:
    """TTL + LRU cache of resolutions, with one lookup in flight per (host, port).

    ``ttl=None`` keeps entries until evicted, unless the resolver reports a
    record TTL: the effective TTL is always the smaller of the two.  Failures
    are never cached.
    """

    def __init__(
        self,
        ttl: float | None = 10,
        max_size: int = 1000,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl is not None and ttl < 0:
            raise ValueError("ttl must be >= 0 or None")
        if max_size < 0:
            raise ValueError("max_size must be >= 0")
        self._ttl = ttl
        self._max_size = max_size
        self._clock = clock
        self._entries: OrderedDict[tuple[str, int], _Entry] = OrderedDict()
        self._inflight: dict[tuple[str, int], asyncio.Task[_Entry]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return (
            f"<DNSCache entries={len(self._entries)} in_flight={len(self._inflight)} "
            f"ttl={self._ttl} max_size={self._max_size}>"
        )

    async def resolve(
        self,
        resolver: AbstractResolver,
        host: str,
        port: int,
        family: int,
        *,
        on_hit: Callable[[], Awaitable[None]] | None = None,
        on_miss: Callable[[], Awaitable[None]] | None = None,
    ) -> list[ResolveResult]:
        """Cached addresses for (host, port), resolving at most once concurrently.

        ``on_hit`` runs for a fresh entry or when joining a lookup already in
        flight; ``on_miss`` when this call starts the lookup (tracing hooks).
        """
        key = (host, port)
        entry = self._entries.get(key)
        if entry is not None:
            if entry.expires is None or self._clock() < entry.expires:
                self._entries.move_to_end(key)
                addrs = entry.take()  # before any await, so the entry cannot vanish
                if on_hit is not None:
                    await on_hit()
                return addrs
            del self._entries[key]
        task = self._inflight.get(key)
        if task is not None:
            if on_hit is not None:
                await on_hit()
        else:
            task = self._start(resolver, key, family)
            if on_miss is not None:
                await on_miss()
        # Shielded: a caller's cancellation must not cancel the shared lookup.
        return (await asyncio.shield(task)).take()

    def _start(
        self, resolver: AbstractResolver, key: tuple[str, int], family: int
    ) -> asyncio.Task[_Entry]:
        coro = self._lookup(resolver, key, socket.AddressFamily(family))
        task = asyncio.get_running_loop().create_task(coro, name=f"dns:{key[0]}:{key[1]}")
        self._inflight[key] = task
        task.add_done_callback(lambda t: self._finished(key, t))
        return task

    def _finished(self, key: tuple[str, int], task: asyncio.Task[_Entry]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            # Mark the error retrieved: when every waiter has gone, nobody else will.
            task.exception()

    async def _lookup(
        self, resolver: AbstractResolver, key: tuple[str, int], family: socket.AddressFamily
    ) -> _Entry:
        host, port = key
        if isinstance(resolver, AbstractResolver):
            addrs, record_ttl = await resolver.resolve_with_ttl(host, port, family)
        else:  # a duck-typed aiohttp-style resolver
            addrs, record_ttl = await resolver.resolve(host, port, family), None
        if not addrs:
            raise socket.gaierror(socket.EAI_NONAME, f"DNS lookup returned nothing ({host})")
        for addr in addrs:
            # The connector connects to (and policy-checks) these: names would be
            # resolved again behind its back (security.md H3).
            if not is_ip_address(addr["host"]):
                raise socket.gaierror(socket.EAI_FAIL, f"resolver returned {addr['host']!r}")
        entry = _Entry(list(addrs), None)
        ttl = self._effective_ttl(record_ttl)
        if ttl is None or ttl > 0:
            entry.expires = None if ttl is None else self._clock() + ttl
            self._store(key, entry)
        return entry

    def _effective_ttl(self, record_ttl: float | None) -> float | None:
        if record_ttl is None:
            return self._ttl
        return record_ttl if self._ttl is None else min(self._ttl, record_ttl)

    def _store(self, key: tuple[str, int], entry: _Entry) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_size:
            self._entries.popitem(last=False)  # least recently used (security.md C9)

    def clear(self, host: str | None = None, port: int | None = None) -> None:
        """Forget (host, port), or everything when both are None (as aiohttp)."""
        if host is not None and port is not None:
            self._entries.pop((host, port), None)
        elif host is not None or port is not None:
            raise ValueError("either both host and port or none of them are allowed")
        else:
            self._entries.clear()

    async def close(self) -> None:
        """Cancel lookups in flight and wait for them; forget every entry."""
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        # return_exceptions: the outcomes are moot, but our own cancellation still propagates.
        await asyncio.gather(*tasks, return_exceptions=True)
        self._entries.clear()
