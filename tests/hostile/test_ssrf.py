"""SSRF-01..03 (security.md section 3): the crawler's address policy, enforced in the connector.

Every test server listens on 127.0.0.1, so "an allowed host" is built with
``deny_private(allow=["127.0.0.1"])`` (or a port-aware policy), and private targets
come from literal-IP URLs or from a test resolver that answers private addresses.
A connect guard (``ssrf_support.guarded``) lets nothing but 127.0.0.1 be dialed and
records what was. The runner's side (JSONL, job files) is in test_ssrf_runner.py.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from servers import LOOPBACK, CountingServer

import client
from client.address_policy import AddressPolicy, ClientConnectorBlockedError, deny_private
from jobs import RetryPolicy
from runner.fetch import classify
from runner.retry import should_retry

from .ssrf_support import NON_CANONICAL, FixedNames, Rebinding, guarded


@pytest.fixture
def connects() -> Iterator[list[str]]:
    """Addresses connected to during the test (see ``ssrf_support.guarded``)."""
    with guarded() as seen:
        yield seen


# ------------------------------------------------------------------------- SSRF-01

# security.md SSRF-01's list, plus neighbours of each class. Several (127.0.0.1,
# ::ffff:127.0.0.1, 0.0.0.0) would reach the test server if dialed: it counts them.
BLOCKED = [
    "127.0.0.1",
    "127.255.255.254",
    "::1",
    "10.0.0.1",
    "10.255.255.255",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.0.1",
    "192.168.255.255",
    "169.254.169.254",
    "169.254.0.1",
    "100.64.0.1",
    "100.127.255.254",
    "fd00::1",
    "fc00::1",
    "fdff:ffff::1",
    "fe80::1",
    "febf::1",
    "fec0::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "2002:7f00:1::1",  # 6to4
    "::127.0.0.1",  # IPv4-compatible
    "0.0.0.0",
    "0.1.2.3",
    "::",
    "224.0.0.1",
    "239.255.255.250",
    "ff02::1",
    "255.255.255.255",
    "240.0.0.1",
    "192.0.2.1",
    "198.18.0.1",
    "2001:db8::1",
]
PUBLIC = [
    "8.8.8.8",
    "93.184.216.34",
    "172.32.0.1",
    "100.128.0.1",
    "2606:2800:220:1:248:1893:25c8:1946",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
]


def _literal(address: str, port: int) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}/"


@pytest.mark.parametrize("address", BLOCKED)
def test_SSRF_01_deny_private_classifies_each_address_class(address: str) -> None:
    policy = deny_private()
    reason = policy.check(address)
    assert reason is not None
    assert policy(address, 80) is False


@pytest.mark.parametrize("address", PUBLIC)
def test_SSRF_01_deny_private_allows_public_unicast(address: str) -> None:
    assert deny_private().check(address) is None


def test_SSRF_01_policy_refuses_what_it_cannot_parse() -> None:
    policy = deny_private(allow=["0.0.0.0/0", "::/0"])
    assert policy.check("localhost") == "not a numeric IP address"
    assert policy.check("127.1") == "not a numeric IP address"
    assert policy.check("fe80::1%eth0") is None  # allowed by ::/0; the zone is not the address


def test_SSRF_01_allow_and_deny_lists() -> None:
    policy = deny_private(allow=["127.0.0.1", "10.1.0.0/16"])
    assert policy.check("127.0.0.1") is None
    assert policy.check("::ffff:127.0.0.1") is None  # the same IPv4 address
    assert policy.check("127.0.0.2") == "loopback"
    assert policy.check("10.1.200.3") is None
    assert policy.check("10.2.0.1") == "private (10/8)"
    custom = AddressPolicy(deny=["203.0.113.0/24"])
    assert custom.check("203.0.113.9") == "in denied network 203.0.113.0/24"
    assert custom.check("10.0.0.1") is None  # no special-range rule unless asked


@pytest.mark.parametrize("address", BLOCKED)
async def test_SSRF_01_literal_ip_targets_are_blocked_before_connect(
    address: str, counting_server: CountingServer, connects: list[str]
) -> None:
    connector = client.TCPConnector(address_policy=deny_private())
    async with client.ClientSession(connector=connector) as session:
        with pytest.raises(ClientConnectorBlockedError) as caught:
            await session.get(_literal(address, counting_server.port))
    assert caught.value.address is not None
    assert "refused" in str(caught.value)
    assert connects == []
    assert counting_server.stats.connections == 0


@pytest.mark.parametrize("address", BLOCKED)
async def test_SSRF_01_resolved_private_addresses_are_blocked_before_connect(
    address: str, counting_server: CountingServer, connects: list[str]
) -> None:
    resolver = FixedNames({"target.test": [address]})
    connector = client.TCPConnector(resolver=resolver, address_policy=deny_private())
    async with client.ClientSession(connector=connector) as session:
        with pytest.raises(ClientConnectorBlockedError) as caught:
            await session.get(f"http://target.test:{counting_server.port}/")
    assert caught.value.address == address
    assert caught.value.host == "target.test"
    assert isinstance(caught.value, client.ClientConnectorError)  # aiohttp-style handlers
    assert resolver.queries == ["target.test"]
    assert connects == []
    assert counting_server.stats.connections == 0


async def test_SSRF_01_a_redirect_hop_to_a_private_address_is_blocked(
    counting_server: CountingServer, connects: list[str]
) -> None:
    port = counting_server.port
    resolver = FixedNames({"public.test": [LOOPBACK], "internal.test": ["10.0.0.5"]})
    policy = deny_private(allow=[LOOPBACK])  # 127.0.0.1 plays the public site
    for location in (
        f"http://internal.test:{port}/admin",
        "http://169.254.169.254/latest/meta-data/",
        f"http://[::ffff:a9fe:a9fe]:{port}/",
        f"http://[fd00::1]:{port}/",
    ):
        query = f"status=302&header={quote('Location:' + location, safe='')}"
        connector = client.TCPConnector(resolver=resolver, address_policy=policy)
        async with client.ClientSession(connector=connector) as session:
            with pytest.raises(ClientConnectorBlockedError):
                await session.get(f"http://public.test:{port}/start?{query}")
    assert counting_server.stats.requests == 4  # only the first hops got through
    assert connects == [LOOPBACK] * 4


async def test_SSRF_01_every_hop_is_checked_even_to_a_live_server(connects: list[str]) -> None:
    """A port-aware policy admits server A only: the hop to B (also live) never connects."""
    a, b = CountingServer(), CountingServer()
    await a.start()
    await b.start()
    try:
        hop = quote(f"Location:{b.url('/b')}", safe="")
        connector = client.TCPConnector(address_policy=lambda addr, port: port == a.port)
        async with client.ClientSession(connector=connector) as session:
            with pytest.raises(ClientConnectorBlockedError) as caught:
                await session.get(a.url(f"/a?status=302&header={hop}"))
        assert "refused by the address policy" in str(caught.value)
        assert a.stats.requests == 1
        assert b.stats.connections == 0
        assert connects == [LOOPBACK]
    finally:
        await a.close()
        await b.close()


async def test_SSRF_01_only_the_allowed_addresses_of_an_answer_are_dialed(
    counting_server: CountingServer, connects: list[str]
) -> None:
    resolver = FixedNames({"mixed.test": ["10.0.0.1", "169.254.169.254", "::1", LOOPBACK]})
    connector = client.TCPConnector(
        resolver=resolver, address_policy=deny_private(allow=[LOOPBACK])
    )
    async with client.ClientSession(connector=connector) as session:
        async with session.get(f"http://mixed.test:{counting_server.port}/") as resp:
            assert resp.status == 200
    assert connects == [LOOPBACK]
    assert counting_server.stats.connections == 1


async def test_SSRF_03_a_resolver_answering_a_name_is_refused(
    counting_server: CountingServer, connects: list[str]
) -> None:
    # A name would be resolved again inside create_connection, unchecked. The DNS
    # cache refuses such answers first; the policy would too ("not a numeric IP address").
    resolver = FixedNames({"sneaky.test": ["localhost"]})
    policy = deny_private(allow=["0.0.0.0/0", "::/0"])
    connector = client.TCPConnector(resolver=resolver, address_policy=policy)
    async with client.ClientSession(connector=connector) as session:
        with pytest.raises(client.ClientConnectorError, match="localhost"):
            await session.get(f"http://sneaky.test:{counting_server.port}/")
    assert connects == []
    assert counting_server.stats.connections == 0


async def test_SSRF_01_a_proxy_is_refused_under_a_policy(
    counting_server: CountingServer, connects: list[str]
) -> None:
    connector = client.TCPConnector(address_policy=deny_private(allow=[LOOPBACK]))
    async with client.ClientSession(connector=connector) as session:
        for target in ("http://example.test/", "https://example.test/"):
            with pytest.raises(ClientConnectorBlockedError, match="through a proxy") as caught:
                await session.get(target, proxy=counting_server.url("/"))
            assert caught.value.address is None
    assert connects == []
    assert counting_server.stats.connections == 0


async def test_SSRF_01_no_policy_means_no_check(counting_server: CountingServer) -> None:
    connector = client.TCPConnector()
    assert connector.address_policy is None
    async with client.ClientSession(connector=connector) as session:
        async with session.get(counting_server.url("/")) as resp:
            assert resp.status == 200


def test_SSRF_01_blocked_is_its_own_kind_and_never_retried() -> None:
    error = ClientConnectorBlockedError(None, "10.0.0.1", "private (10/8)")
    info = classify(error)
    assert info.kind == "blocked_address"
    assert "10.0.0.1" in info.message
    assert should_retry(RetryPolicy(attempts=5), 1, None, "blocked_address") is False
    assert client.ClientConnectorBlockedError is ClientConnectorBlockedError
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.address, str(copy)) == (error.address, str(error))
    assert client.deny_private is deny_private


# ------------------------------------------------------------------------- SSRF-02


@pytest.mark.parametrize("host", NON_CANONICAL)
async def test_SSRF_02_non_canonical_hosts_are_invalid_urls(
    host: str, counting_server: CountingServer, connects: list[str]
) -> None:
    resolver = FixedNames({})
    connector = client.TCPConnector(resolver=resolver)  # no policy: refused regardless
    async with client.ClientSession(connector=connector) as session:
        with pytest.raises(client.InvalidURL):
            await session.get(f"http://{host}:{counting_server.port}/")
        location = quote(f"Location:http://{host}:{counting_server.port}/", safe="")
        with pytest.raises(client.InvalidUrlRedirectClientError):
            await session.get(counting_server.url(f"/r?status=302&header={location}"))
    assert resolver.queries == []  # never handed to DNS
    assert counting_server.stats.requests == 1  # just the redirecting hop


# ------------------------------------------------------------------------- SSRF-03


async def test_SSRF_03_rebinding_connects_only_to_validated_addresses(
    counting_server: CountingServer, connects: list[str]
) -> None:
    """First lookup: the allowed address; every later one: metadata/private/loopback-v6."""
    resolver = Rebinding(
        "rebind.test",
        [LOOPBACK],
        ["169.254.169.254"],
        ["10.0.0.1", "::1"],
        [LOOPBACK],
    )
    connector = client.TCPConnector(
        resolver=resolver,
        use_dns_cache=False,  # every connection resolves again: the attacker's best case
        force_close=True,
        address_policy=deny_private(allow=[LOOPBACK]),
    )
    url = f"http://rebind.test:{counting_server.port}/"
    outcomes: list[str] = []
    async with client.ClientSession(connector=connector) as session:
        for _ in range(4):
            try:
                async with session.get(url) as resp:
                    await resp.read()
                    outcomes.append(str(resp.status))
            except ClientConnectorBlockedError as exc:
                outcomes.append(f"blocked {exc.address}")
    assert outcomes == ["200", "blocked 169.254.169.254", "blocked ::1", "200"]
    assert resolver.queries == ["rebind.test"] * 4  # exactly one resolution per connection
    assert connects == [LOOPBACK, LOOPBACK]  # the validated address, never the rebound ones
    assert counting_server.stats.connections == 2


async def test_SSRF_03_a_cached_answer_is_the_checked_answer(
    counting_server: CountingServer, connects: list[str]
) -> None:
    """With the DNS cache on, the rebound answer is never even fetched within the TTL."""
    resolver = Rebinding("rebind.test", [LOOPBACK], ["10.0.0.1"])
    connector = client.TCPConnector(
        resolver=resolver, force_close=True, address_policy=deny_private(allow=[LOOPBACK])
    )
    async with client.ClientSession(connector=connector) as session:
        for _ in range(3):
            async with session.get(f"http://rebind.test:{counting_server.port}/") as resp:
                assert resp.status == 200
    assert resolver.queries == ["rebind.test"]
    assert connects == [LOOPBACK] * 3
