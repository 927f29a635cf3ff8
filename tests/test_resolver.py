"""Resolvers against real lookups (system and a loopback DNS server), and DNSCache."""

from __future__ import annotations

import asyncio
import gc
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import pytest

from client.resolver import (
    AbstractResolver,
    AsyncResolver,
    DefaultResolver,
    DNSCache,
    ResolveResult,
    ThreadedResolver,
)

# -- a tiny authoritative DNS server on 127.0.0.1 (RFC 1035 §4) ---------------

A, AAAA = 1, 28
RECORD_TTL = 42


class _DNSProtocol(asyncio.DatagramProtocol):
    """Answers A queries with 127.0.0.5 (TTL 42) and 127.0.0.6 (TTL 300).

    ``silent.*`` gets no answer, ``missing.*`` NXDOMAIN, ``v6.*`` an AAAA ``::1``;
    other AAAA queries get an empty NOERROR answer.  Every question is recorded.
    """

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.questions: list[tuple[str, int]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # 3.11's selector datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        txid = struct.unpack("!H", data[:2])[0]
        labels, i = [], 12
        while data[i]:
            labels.append(data[i + 1 : i + 1 + data[i]].decode("ascii"))
            i += 1 + data[i]
        qtype = struct.unpack("!H", data[i + 1 : i + 3])[0]
        question = data[12 : i + 5]
        name = ".".join(labels).lower()
        self.questions.append((name, qtype))
        rcode, answers = 0, []
        if name.startswith("silent."):
            return  # a server that never answers
        if name.startswith("missing."):
            rcode = 3  # NXDOMAIN
        elif qtype == A:
            answers = [(A, RECORD_TTL, socket.inet_aton("127.0.0.5"))]
            answers.append((A, 300, socket.inet_aton("127.0.0.6")))
        elif qtype == AAAA and name.startswith("v6."):
            answers = [(AAAA, RECORD_TTL, socket.inet_pton(socket.AF_INET6, "::1"))]
        header = struct.pack("!6H", txid, 0x8180 | rcode, 1, len(answers), 0, 0)
        body = b"".join(
            b"\xc0\x0c" + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata
            for rtype, ttl, rdata in answers
        )
        assert self.transport is not None
        self.transport.sendto(header + question + body, addr)


@pytest.fixture
async def dns_server() -> AsyncIterator[tuple[int, _DNSProtocol]]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        _DNSProtocol, local_addr=("127.0.0.1", 0)
    )
    yield transport.get_extra_info("sockname")[1], proto
    transport.close()


@pytest.fixture
async def async_resolver(
    dns_server: tuple[int, _DNSProtocol],
) -> AsyncIterator[AsyncResolver]:
    resolver = AsyncResolver(nameservers=[f"127.0.0.1:{dns_server[0]}"], timeout=2, tries=1)
    yield resolver
    await resolver.close()


# -- ThreadedResolver ------------------------------------------------------------


async def test_threaded_resolves_localhost() -> None:
    resolver = ThreadedResolver()
    hosts = await resolver.resolve("localhost", 8080, socket.AF_UNSPEC)
    assert {h["host"] for h in hosts} & {"127.0.0.1", "::1"}
    for h in hosts:
        assert h["hostname"] == "localhost"
        assert h["port"] == 8080
        assert h["flags"] == socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
        assert h["family"] in (socket.AF_INET, socket.AF_INET6)
    await resolver.close()


async def test_threaded_resolves_ip_literal() -> None:
    hosts = await ThreadedResolver().resolve("127.0.0.1", 80)
    assert [(h["host"], h["port"], h["family"]) for h in hosts] == [
        ("127.0.0.1", 80, socket.AF_INET)
    ]


@pytest.mark.parametrize("host", ["127.1", "2130706433", "0x7f.1", "017700000001"])
async def test_threaded_refuses_legacy_numeric_hosts(host: str) -> None:
    with pytest.raises(socket.gaierror, match="canonical"):
        await ThreadedResolver().resolve(host, 80)


# -- AsyncResolver against the loopback DNS server --------------------------------


async def test_async_resolver_real_query(
    async_resolver: AsyncResolver, dns_server: tuple[int, _DNSProtocol]
) -> None:
    hosts = await async_resolver.resolve("www.example.test", 443)
    assert [h["host"] for h in hosts] == ["127.0.0.5", "127.0.0.6"]
    assert all(h["port"] == 443 and h["hostname"] == "www.example.test" for h in hosts)
    assert all(h["family"] == socket.AF_INET for h in hosts)
    assert ("www.example.test", A) in dns_server[1].questions


async def test_async_resolver_reports_smallest_record_ttl(async_resolver: AsyncResolver) -> None:
    hosts, ttl = await async_resolver.resolve_with_ttl("ttl.example.test", 80)
    assert len(hosts) == 2
    assert ttl == RECORD_TTL


async def test_async_resolver_aaaa(async_resolver: AsyncResolver) -> None:
    hosts = await async_resolver.resolve("v6.example.test", 80, socket.AF_INET6)
    assert [(h["host"], h["family"]) for h in hosts] == [("::1", socket.AF_INET6)]


async def test_async_resolver_nxdomain_is_gaierror(async_resolver: AsyncResolver) -> None:
    with pytest.raises(socket.gaierror) as info:
        await async_resolver.resolve("missing.example.test", 80)
    assert info.value.errno == socket.EAI_NONAME
    assert "missing.example.test" in str(info.value)


async def test_async_resolver_close_ends_pending_lookup(async_resolver: AsyncResolver) -> None:
    pending = asyncio.create_task(async_resolver.resolve("silent.example.test", 80))
    await asyncio.sleep(0.05)
    assert not pending.done()
    await async_resolver.close()
    with pytest.raises(OSError):
        await asyncio.wait_for(pending, 1)


async def test_async_resolver_udp_port_option(dns_server: tuple[int, _DNSProtocol]) -> None:
    # pycares' own port option, instead of "host:port" in nameservers.
    resolver = AsyncResolver(nameservers=["127.0.0.1"], udp_port=dns_server[0], tries=1)
    try:
        hosts = await resolver.resolve("port.example.test", 80)
    finally:
        await resolver.close()
    assert hosts[0]["host"] == "127.0.0.5"


async def test_async_resolver_refuses_numeric_forms_without_querying(
    async_resolver: AsyncResolver, dns_server: tuple[int, _DNSProtocol]
) -> None:
    for host in ("127.1", "2130706433", "0x7f.1", "017700000001"):
        with pytest.raises(socket.gaierror):
            await async_resolver.resolve(host, 80)
    assert dns_server[1].questions == []


async def test_async_resolver_closed_refuses_use(async_resolver: AsyncResolver) -> None:
    assert (await async_resolver.resolve("a.example.test"))[0]["host"] == "127.0.0.5"
    await async_resolver.close()
    await async_resolver.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        await async_resolver.resolve("a.example.test")


async def test_async_resolver_accepts_aiohttp_style_loop_argument(
    dns_server: tuple[int, _DNSProtocol],
) -> None:
    loop = asyncio.get_running_loop()
    resolver = AsyncResolver(loop, nameservers=[f"127.0.0.1:{dns_server[0]}"], tries=1)
    try:
        assert (await resolver.resolve("loop.example.test"))[0]["host"] == "127.0.0.5"
    finally:
        await resolver.close()
    with pytest.raises(TypeError):
        AsyncResolver(["127.0.0.1"], ["127.0.0.2"])


def test_default_resolver_is_aiodns() -> None:
    assert DefaultResolver is AsyncResolver


async def test_cache_honours_record_ttl_from_aiodns(
    async_resolver: AsyncResolver, dns_server: tuple[int, _DNSProtocol]
) -> None:
    clock = FakeClock()
    cache = DNSCache(ttl=100, clock=clock)
    first = await cache.resolve(async_resolver, "rec.example.test", 80, socket.AF_INET)
    clock.now += RECORD_TTL - 1
    assert await cache.resolve(async_resolver, "rec.example.test", 80, socket.AF_INET)
    assert len(cache) == 1
    clock.now += 2  # past the record's 42 s although the cache allows 100 s
    await cache.resolve(async_resolver, "rec.example.test", 80, socket.AF_INET)
    assert first[0]["host"] == "127.0.0.5"
    assert len(cache) == 1


# -- DNSCache with an in-memory resolver ------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _addr(host: str, ip: str, port: int = 80) -> ResolveResult:
    return ResolveResult(hostname=host, host=ip, port=port, family=2, proto=0, flags=0)


class FakeResolver(AbstractResolver):
    """Answers from a table; can hold lookups at a gate or fail a number of times."""

    def __init__(self, ips: list[str] | None = None, ttl: float | None = None) -> None:
        self.ips = ["10.0.0.1", "10.0.0.2"] if ips is None else ips
        self.ttl = ttl
        self.calls: list[tuple[str, int]] = []
        self.gate: asyncio.Event | None = None
        self.failures = 0
        self.cancelled = 0

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return (await self.resolve_with_ttl(host, port, family))[0]

    async def resolve_with_ttl(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> tuple[list[ResolveResult], float | None]:
        self.calls.append((host, port))
        try:
            if self.gate is not None:
                await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.failures:
            self.failures -= 1
            raise socket.gaierror(socket.EAI_AGAIN, "temporary failure")
        return [_addr(host, ip, port) for ip in self.ips], self.ttl

    async def close(self) -> None:
        pass


def _ips(addrs: list[ResolveResult]) -> list[str]:
    return [a["host"] for a in addrs]


async def test_one_lookup_for_fifty_concurrent_callers() -> None:
    resolver = FakeResolver()
    resolver.gate = asyncio.Event()
    cache = DNSCache()
    tasks = [
        asyncio.create_task(cache.resolve(resolver, "h.test", 80, socket.AF_INET))
        for _ in range(50)
    ]
    await asyncio.sleep(0.01)
    resolver.gate.set()
    results = await asyncio.gather(*tasks)
    assert resolver.calls == [("h.test", 80)]
    assert all(sorted(_ips(r)) == ["10.0.0.1", "10.0.0.2"] for r in results)
    # Round robin across the waiters too: both addresses lead some results.
    assert {r[0]["host"] for r in results} == {"10.0.0.1", "10.0.0.2"}
    assert len(cache) == 1


async def test_round_robin_rotation_returns_copies() -> None:
    resolver = FakeResolver(["10.0.0.1", "10.0.0.2", "10.0.0.3"])
    cache = DNSCache()
    seen = [_ips(await cache.resolve(resolver, "h.test", 80, 2)) for _ in range(4)]
    assert seen == [
        ["10.0.0.1", "10.0.0.2", "10.0.0.3"],
        ["10.0.0.2", "10.0.0.3", "10.0.0.1"],
        ["10.0.0.3", "10.0.0.1", "10.0.0.2"],
        ["10.0.0.1", "10.0.0.2", "10.0.0.3"],
    ]
    got = await cache.resolve(resolver, "h.test", 80, 2)
    got.clear()
    assert len(await cache.resolve(resolver, "h.test", 80, 2)) == 3
    assert len(resolver.calls) == 1


async def test_ttl_expiry_with_fake_clock() -> None:
    clock = FakeClock()
    resolver = FakeResolver()
    cache = DNSCache(ttl=10, clock=clock)
    await cache.resolve(resolver, "h.test", 80, 2)
    clock.now += 9.9
    await cache.resolve(resolver, "h.test", 80, 2)
    assert len(resolver.calls) == 1
    clock.now += 0.2
    await cache.resolve(resolver, "h.test", 80, 2)
    assert len(resolver.calls) == 2


async def test_ttl_none_caches_forever_without_record_ttl() -> None:
    clock = FakeClock()
    resolver = FakeResolver()
    cache = DNSCache(ttl=None, clock=clock)
    await cache.resolve(resolver, "h.test", 80, 2)
    clock.now += 1e9
    await cache.resolve(resolver, "h.test", 80, 2)
    assert len(resolver.calls) == 1


@pytest.mark.parametrize(
    ("ttl", "record_ttl", "expires_after"),
    [(10, 3, 3), (10, 100, 10), (None, 3, 3)],
)
async def test_effective_ttl_is_smaller_of_cache_and_record(
    ttl: float | None, record_ttl: float, expires_after: float
) -> None:
    clock = FakeClock()
    resolver = FakeResolver(ttl=record_ttl)
    cache = DNSCache(ttl=ttl, clock=clock)
    await cache.resolve(resolver, "h.test", 80, 2)
    clock.now += expires_after - 0.01
    await cache.resolve(resolver, "h.test", 80, 2)
    assert len(resolver.calls) == 1
    clock.now += 0.02
    await cache.resolve(resolver, "h.test", 80, 2)
    assert len(resolver.calls) == 2


async def test_ttl_zero_stores_nothing() -> None:
    resolver = FakeResolver()
    cache = DNSCache(ttl=0)
    for _ in range(3):
        assert _ips(await cache.resolve(resolver, "h.test", 80, 2))
    assert len(cache) == 0
    assert len(resolver.calls) == 3


async def test_lru_eviction_bounds_the_table() -> None:
    resolver = FakeResolver()
    cache = DNSCache(max_size=2)
    await cache.resolve(resolver, "a.test", 80, 2)
    await cache.resolve(resolver, "b.test", 80, 2)
    await cache.resolve(resolver, "a.test", 80, 2)  # a is now most recently used
    await cache.resolve(resolver, "c.test", 80, 2)  # evicts b
    assert len(cache) == 2
    await cache.resolve(resolver, "a.test", 80, 2)
    assert resolver.calls.count(("a.test", 80)) == 1
    await cache.resolve(resolver, "b.test", 80, 2)
    assert resolver.calls.count(("b.test", 80)) == 2


async def test_many_hosts_stay_under_max_size() -> None:
    cache = DNSCache(max_size=100)
    resolver = FakeResolver()
    for i in range(1000):
        await cache.resolve(resolver, f"h{i}.test", 80, 2)
    assert len(cache) == 100


async def test_keyed_by_host_and_port() -> None:
    resolver = FakeResolver()
    cache = DNSCache()
    a = await cache.resolve(resolver, "h.test", 80, 2)
    b = await cache.resolve(resolver, "h.test", 443, 2)
    assert (a[0]["port"], b[0]["port"]) == (80, 443)
    assert resolver.calls == [("h.test", 80), ("h.test", 443)]


async def test_errors_are_not_cached() -> None:
    resolver = FakeResolver()
    resolver.failures = 1
    cache = DNSCache()
    with pytest.raises(OSError, match="temporary"):
        await cache.resolve(resolver, "h.test", 80, 2)
    assert len(cache) == 0
    assert _ips(await cache.resolve(resolver, "h.test", 80, 2)) == ["10.0.0.1", "10.0.0.2"]
    assert len(resolver.calls) == 2


async def test_concurrent_callers_share_one_error() -> None:
    resolver = FakeResolver()
    resolver.gate = asyncio.Event()
    resolver.failures = 1
    cache = DNSCache()
    tasks = [asyncio.create_task(cache.resolve(resolver, "h.test", 80, 2)) for _ in range(10)]
    await asyncio.sleep(0)
    resolver.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, socket.gaierror) for r in results)
    assert len(resolver.calls) == 1


async def test_cancelling_one_waiter_does_not_break_others() -> None:
    resolver = FakeResolver()
    resolver.gate = asyncio.Event()
    cache = DNSCache()
    starter = asyncio.create_task(cache.resolve(resolver, "h.test", 80, 2))
    await asyncio.sleep(0)
    others = [asyncio.create_task(cache.resolve(resolver, "h.test", 80, 2)) for _ in range(3)]
    await asyncio.sleep(0)
    starter.cancel()  # the caller that started the shared lookup goes away
    with pytest.raises(asyncio.CancelledError):
        await starter
    resolver.gate.set()
    results = await asyncio.gather(*others)
    assert all(len(r) == 2 for r in results)
    assert resolver.cancelled == 0
    assert len(resolver.calls) == 1


def _capture_loop_errors() -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    return errors


async def test_all_waiters_gone_lookup_still_finishes_and_is_cached() -> None:
    resolver = FakeResolver()
    resolver.gate = asyncio.Event()
    cache = DNSCache()
    waiter = asyncio.create_task(cache.resolve(resolver, "h.test", 80, 2))
    await asyncio.sleep(0)
    waiter.cancel()
    resolver.gate.set()
    await asyncio.sleep(0.01)
    assert waiter.cancelled()
    assert len(cache) == 1
    await cache.resolve(resolver, "h.test", 80, 2)
    assert len(resolver.calls) == 1


async def test_all_waiters_gone_failure_is_not_reported_unretrieved() -> None:
    errors = _capture_loop_errors()
    resolver = FakeResolver()
    resolver.gate = asyncio.Event()
    resolver.failures = 1
    cache = DNSCache()
    waiters = [asyncio.create_task(cache.resolve(resolver, "h.test", 80, 2)) for _ in range(2)]
    await asyncio.sleep(0)
    for waiter in waiters:
        waiter.cancel()
    resolver.gate.set()
    await asyncio.sleep(0.01)
    gc.collect()
    await asyncio.sleep(0)
    assert errors == []
    assert len(cache) == 0


async def test_hooks_hit_and_miss() -> None:
    events: list[str] = []

    def hook(name: str) -> Callable[[], Awaitable[None]]:
        async def record() -> None:
            events.append(name)

        return record

    resolver = FakeResolver()
    resolver.gate = asyncio.Event()
    cache = DNSCache()
    hooks = {"on_hit": hook("hit"), "on_miss": hook("miss")}
    first = asyncio.create_task(cache.resolve(resolver, "h.test", 80, 2, **hooks))
    await asyncio.sleep(0)
    joiner = asyncio.create_task(cache.resolve(resolver, "h.test", 80, 2, **hooks))
    await asyncio.sleep(0)
    resolver.gate.set()
    await asyncio.gather(first, joiner)
    await cache.resolve(resolver, "h.test", 80, 2, **hooks)
    assert events == ["miss", "hit", "hit"]


async def test_failing_miss_hook_leaves_lookup_for_others() -> None:
    errors = _capture_loop_errors()
    resolver = FakeResolver()
    resolver.gate = asyncio.Event()
    resolver.failures = 1
    cache = DNSCache()

    async def broken() -> None:
        raise RuntimeError("trace hook failed")

    with pytest.raises(RuntimeError, match="trace hook"):
        await cache.resolve(resolver, "h.test", 80, 2, on_miss=broken)
    joiner = asyncio.create_task(cache.resolve(resolver, "h.test", 80, 2))
    await asyncio.sleep(0)
    resolver.gate.set()
    with pytest.raises(socket.gaierror):
        await joiner
    gc.collect()
    await asyncio.sleep(0)
    assert errors == []
    assert len(resolver.calls) == 1


async def test_empty_or_non_ip_results_are_errors() -> None:
    cache = DNSCache()
    with pytest.raises(OSError, match="nothing"):
        await cache.resolve(FakeResolver(ips=[]), "h.test", 80, 2)
    # A name would be resolved again by the dialer, behind any address policy.
    with pytest.raises(OSError, match="localhost"):
        await cache.resolve(FakeResolver(ips=["localhost"]), "x.test", 80, 2)
    assert len(cache) == 0


async def test_clear() -> None:
    resolver = FakeResolver()
    cache = DNSCache()
    await cache.resolve(resolver, "a.test", 80, 2)
    await cache.resolve(resolver, "b.test", 80, 2)
    cache.clear("a.test", 80)
    assert len(cache) == 1
    with pytest.raises(ValueError, match="both"):
        cache.clear("b.test")
    cache.clear()
    assert len(cache) == 0
    await cache.resolve(resolver, "b.test", 80, 2)
    assert resolver.calls.count(("b.test", 80)) == 2


async def test_close_cancels_lookups_in_flight() -> None:
    resolver = FakeResolver()
    resolver.gate = asyncio.Event()
    cache = DNSCache()
    await cache.resolve(FakeResolver(), "done.test", 80, 2)
    waiter = asyncio.create_task(cache.resolve(resolver, "h.test", 80, 2))
    while not resolver.calls:
        await asyncio.sleep(0)
    await cache.close()
    assert resolver.cancelled == 1
    assert len(cache) == 0
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert "in_flight=0" in repr(cache)


class DuckResolver:
    """An aiohttp-style resolver that does not subclass AbstractResolver."""

    async def resolve(self, host: str, port: int = 0, family: int = 2) -> list[ResolveResult]:
        return [_addr(host, "10.1.1.1", port)]


async def test_duck_typed_resolver() -> None:
    cache = DNSCache()
    duck: Any = DuckResolver()
    assert _ips(await cache.resolve(duck, "h.test", 80, 2)) == ["10.1.1.1"]


async def test_base_resolve_with_ttl_defers_to_resolve() -> None:
    class Plain(AbstractResolver):
        async def resolve(
            self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
        ) -> list[ResolveResult]:
            return [_addr(host, "10.2.2.2", port)]

        async def close(self) -> None:
            pass

    hosts, ttl = await Plain().resolve_with_ttl("h.test", 80)
    assert (_ips(hosts), ttl) == (["10.2.2.2"], None)


def test_constructor_validation() -> None:
    with pytest.raises(ValueError, match="ttl"):
        DNSCache(ttl=-1)
    with pytest.raises(ValueError, match="max_size"):
        DNSCache(max_size=-1)
    assert "ttl=10" in repr(DNSCache())


async def test_failing_miss_hook_and_failing_lookup_without_waiters() -> None:
    errors = _capture_loop_errors()
    resolver = FakeResolver()
    resolver.failures = 1
    cache = DNSCache()

    async def broken() -> None:
        raise RuntimeError("trace hook failed")

    with pytest.raises(RuntimeError, match="trace hook"):
        await cache.resolve(resolver, "h.test", 80, 2, on_miss=broken)
    while resolver.calls == []:
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    gc.collect()
    await asyncio.sleep(0)
    assert errors == []
    assert "in_flight=0" in repr(cache)
