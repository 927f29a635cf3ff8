"""PRX-01..03: proxy credentials go to their proxy only; NO_PROXY; hostile CONNECT answers."""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import AsyncIterator

import pytest
from servers import LOOPBACK, ScriptedConnection, Send, TLSCertificates, http_response
from servers.faults import ExpectClose, FaultServer, StreamForever
from servers.names import LoopbackNames
from servers.proxy import Head, RecordingProxy, parse_head
from yarl import URL

from client import ClientHttpProxyError, ClientSession, TCPConnector
from client.no_proxy import NoProxy

from .conftest import QUICK
from .support import fetch


@pytest.fixture
async def tls_origin(tls_certificates: TLSCertificates) -> AsyncIterator[FaultServer]:
    server = FaultServer(ssl=tls_certificates.server_context("valid"))  # localhost, 127.0.0.1
    await server.start()
    yield server
    await server.close()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for scheme in ("http", "https", "ws", "wss", "all", "no"):
        for name in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", "/nonexistent/netrc")
    return monkeypatch


def basic(value: str) -> bytes:
    return base64.b64decode(value.split()[1])


def inner_heads(server: FaultServer) -> list[Head]:
    return [parse_head(raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n") for raw in server.requests]


# -- PRX-01 ----------------------------------------------------------------------------------


async def test_PRX_01_explicit_proxy_credentials_stay_in_the_connect(
    tls_origin: FaultServer, ssl_client_context: ssl.SSLContext
) -> None:
    proxy = await RecordingProxy().start()
    try:
        connector = TCPConnector(ssl=ssl_client_context)
        async with ClientSession(connector=connector, timeout=QUICK) as session:
            await fetch(
                session,
                f"https://localhost:{tls_origin.port}/inner",
                proxy=f"http://u:p@{LOOPBACK}:{proxy.port}",
                headers={"Authorization": "Bearer origin", "X-Custom": "origin-only"},
            )
    finally:
        await proxy.close()
    [connect] = proxy.heads
    assert connect.method == "CONNECT"
    assert [basic(v) for v in connect.get_all("Proxy-Authorization")] == [b"u:p"]
    assert connect.get_all("Authorization") == []  # origin headers never go to the proxy
    assert connect.get_all("X-Custom") == []
    [inner] = inner_heads(tls_origin)
    assert inner.get_all("Proxy-Authorization") == []  # never inside the tunnel
    assert inner.get_all("Authorization") == ["Bearer origin"]


async def test_PRX_01_redirect_to_another_env_proxy(
    tls_origin: FaultServer, ssl_client_context: ssl.SSLContext, clean_env: pytest.MonkeyPatch
) -> None:
    target = f"https://localhost:{tls_origin.port}/landed"
    # Proxy A (http, with credentials) answers the first hop itself with a redirect.
    first = await RecordingProxy(
        respond=lambda _: http_response(302, headers=[("Location", target)])
    ).start()
    second = await RecordingProxy().start()  # proxy B (https, no credentials)
    clean_env.setenv("HTTP_PROXY", f"http://u:p@{LOOPBACK}:{first.port}")
    clean_env.setenv("HTTPS_PROXY", f"http://{LOOPBACK}:{second.port}")
    try:
        connector = TCPConnector(ssl=ssl_client_context, resolver=LoopbackNames("origin.test"))
        async with ClientSession(connector=connector, timeout=QUICK, trust_env=True) as session:
            async with session.get("http://origin.test/start") as resp:
                assert resp.status == 200
                assert [r.status for r in resp.history] == [302]
    finally:
        await first.close()
        await second.close()
    [hop] = first.heads
    assert (hop.method, hop.target) == ("GET", "http://origin.test/start")
    assert [basic(v) for v in hop.get_all("Proxy-Authorization")] == [b"u:p"]
    [connect] = second.heads
    assert connect.method == "CONNECT"
    assert connect.get_all("Proxy-Authorization") == []  # never to the second proxy
    [inner] = inner_heads(tls_origin)
    assert inner.get_all("Proxy-Authorization") == []  # nor to the origin


# -- PRX-02 ----------------------------------------------------------------------------------

NO_PROXY_TABLE = [
    ("example.com", "http://example.com/", True),
    ("example.com", "http://sub.example.com/", True),
    ("example.com", "http://example.com./", True),
    ("example.com", "http://EXAMPLE.com/", True),
    ("example.com", "http://notexample.com/", False),
    ("example.com", "http://example.com.evil.test/", False),
    (".example.com", "http://sub.example.com/", True),
    ("*", "http://anything.test/", True),
    ("*", "http://10.1.2.3/", True),
    ("10.0.0.0/8", "http://10.1.2.3/", True),
    ("10.0.0.0/8", "http://11.1.2.3/", False),
    ("10.0.0.0/8", "http://ten.test/", False),  # names are never matched against a CIDR
    ("example.com", "http://[::1%25.example.com]/", False),
    ("example.com:8080", "http://example.com:8080/", True),
    ("example.com:8080", "http://example.com:9090/", False),
]


@pytest.mark.parametrize(("no_proxy", "url", "bypass"), NO_PROXY_TABLE)
def test_PRX_02_no_proxy_table(no_proxy: str, url: str, bypass: bool) -> None:
    try:
        parsed = URL(url)
    except ValueError:
        assert not bypass  # an unparsable zone-id host cannot be fetched at all
        return
    assert NoProxy(no_proxy).bypass(parsed) is bypass


async def test_PRX_02_no_proxy_end_to_end(
    fault_server: FaultServer, clean_env: pytest.MonkeyPatch
) -> None:
    proxy = await RecordingProxy().start()
    clean_env.setenv("HTTP_PROXY", proxy.url)
    clean_env.setenv("NO_PROXY", "example.com")
    names = LoopbackNames("example.com", "sub.example.com", "notexample.com")
    port = fault_server.port
    try:
        connector = TCPConnector(resolver=names)
        async with ClientSession(connector=connector, timeout=QUICK, trust_env=True) as session:
            for host in ("example.com", "sub.example.com", "example.com.", "notexample.com"):
                await fetch(session, f"http://{host}:{port}/")
    finally:
        await proxy.close()
    assert [h.target for h in proxy.heads] == [f"http://notexample.com:{port}/"]
    assert len(fault_server.requests) == 3


# -- PRX-03 ----------------------------------------------------------------------------------

BAD_CONNECT = {
    "200-content-length": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    "200-chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "200-nul-in-header": b"HTTP/1.1 200 OK\r\nX-Bad: a\x00b\r\n\r\n",
    "407-endless-body": b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n",
}


class _ReadConnect:
    async def run(self, conn: ScriptedConnection) -> None:
        conn.requests.append(await conn.reader.readuntil(b"\r\n\r\n"))


@pytest.mark.parametrize("case", BAD_CONNECT)
async def test_PRX_03_hostile_connect_answers(
    fault_server: FaultServer, tls_origin: FaultServer, case: str
) -> None:
    answer = BAD_CONNECT[case]
    if case == "407-endless-body":
        fault_server.faults([_ReadConnect(), Send(answer), StreamForever(b"x" * 65536)])
    else:
        fault_server.faults([_ReadConnect(), Send(answer), ExpectClose()])
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with ClientSession(timeout=QUICK) as session:
        with pytest.raises(ClientHttpProxyError) as info:
            await fetch(session, f"https://localhost:{tls_origin.port}/", proxy=fault_server.base)
    assert info.value.status == (407 if case == "407-endless-body" else 400)
    assert loop.time() - started < 2  # within limits: the 407 body is not read forever
    await fault_server.wait_closed_by_client(0)
    assert not fault_server.after_fault.get(0)  # not one byte (no ClientHello) tunnelled
    assert tls_origin.accepted == 0  # nothing reached the origin
