"""Proxies under attack: hostile CONNECT answers, bad proxy settings, the tunnel's TLS.

security.md PRX-03 (a CONNECT answered by a 2xx with a body, NUL in a header,
an endless 407...: an error within limits, and not one byte into the tunnel),
TO-01 (a CONNECT that is never answered times out), and the target's
certificate and pin checked through the tunnel as for a direct connection.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import AsyncIterator, Callable

import pytest
from servers import ScriptedConnection, ScriptedServer, TLSServer
from servers.proxy import RecordingProxy

import client
from client import ClientSession


@pytest.fixture
async def recording_proxy() -> AsyncIterator[RecordingProxy]:
    proxy = await RecordingProxy().start()
    yield proxy
    await proxy.close()


async def test_tunnel_checks_the_target_certificate(
    make_tls_server: Callable[[str], TLSServer],
    recording_proxy: RecordingProxy,
    ssl_client_context: ssl.SSLContext,
) -> None:
    server = make_tls_server("wrong_host")
    async with ClientSession() as session:
        with pytest.raises(client.ClientConnectorCertificateError):
            await session.get(server.url("/"), proxy=recording_proxy.url, ssl=ssl_client_context)
    assert recording_proxy.methods() == ["CONNECT"]


async def test_pin_is_checked_inside_the_tunnel(
    make_tls_server: Callable[[str], TLSServer],
    recording_proxy: RecordingProxy,
    ssl_client_context: ssl.SSLContext,
) -> None:
    server = make_tls_server("valid")
    pem = await asyncio.to_thread(ssl.get_server_certificate, (server.host, server.port))
    good = client.Fingerprint(hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).digest())
    bad = client.Fingerprint(bytes(32))
    connector = client.TCPConnector(ssl=ssl_client_context)  # the pin adds to this CA
    async with ClientSession(connector=connector) as session:
        async with session.get(server.url("/"), proxy=recording_proxy.url, ssl=good) as resp:
            assert resp.status == 200
        with pytest.raises(client.ServerFingerprintMismatch):
            await session.get(server.url("/"), proxy=recording_proxy.url, ssl=bad)
    assert recording_proxy.methods() == ["CONNECT", "CONNECT"]


@pytest.mark.parametrize(
    "bad",
    ["not a url", "socks5://127.0.0.1:1080", "http:///nohost", "ftp://127.0.0.1/"],
)
async def test_invalid_proxy_url(bad: str) -> None:
    async with ClientSession() as session:
        with pytest.raises(client.InvalidUrlClientError):
            await session.get("http://a.test/", proxy=bad)


async def test_proxy_auth_must_be_basic_auth() -> None:
    with pytest.raises(ValueError, match="proxy_auth"):
        ClientSession(proxy="http://127.0.0.1:1", proxy_auth=("u", "p"))  # type: ignore[arg-type]


# -- PRX-03 / TO-01: hostile CONNECT answers ----------------------------------------


def _answering(answer: bytes, after: list[bytes]) -> object:
    async def handler(conn: ScriptedConnection) -> None:
        await conn.reader.readuntil(b"\r\n\r\n")
        await conn.send(answer)
        after.append(await conn.read_until_eof())

    return handler


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 400),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400),
        (b"HTTP/1.1 200 OK\r\nX-Bad: a\x00b\r\n\r\n", 400),
        (b"HTTP/1.1 200 OK\r\n\r\nearly bytes", 200),
        (b"HTTP/1.1 204 No Content\r\n\r\n", 204),
        (b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 20000 + b"\r\n\r\n", 400),
    ],
    ids=["content-length", "chunked", "nul", "early-data", "204", "long-header"],
)
async def test_bad_connect_answer(
    answer: bytes, status: int, scripted_server: ScriptedServer
) -> None:
    after: list[bytes] = []
    scripted_server.serve(_answering(answer, after))  # type: ignore[arg-type]
    async with ClientSession() as session:
        with pytest.raises(client.ClientHttpProxyError) as info:
            await session.get("https://origin.test/", proxy=scripted_server.base)
    assert info.value.status == status
    await asyncio.sleep(0.05)
    assert after == [b""]  # closed, and not one byte (no ClientHello) went into the tunnel


async def test_407_with_endless_body(scripted_server: ScriptedServer) -> None:
    sent = 0

    async def endless(conn: ScriptedConnection) -> None:
        nonlocal sent
        await conn.reader.readuntil(b"\r\n\r\n")
        await conn.send(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
        while sent < 64 << 20:  # bounded: the client must hang up long before
            await conn.send(b"x" * 65536)
            sent += 65536

    scripted_server.serve(endless)
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with ClientSession() as session:
        with pytest.raises(client.ClientHttpProxyError) as info:
            await session.get("https://origin.test/", proxy=scripted_server.base)
    assert info.value.status == 407
    assert loop.time() - start < 2
    await asyncio.sleep(0.1)
    assert sent < 64 << 20


async def test_connect_that_never_answers_times_out(scripted_server: ScriptedServer) -> None:
    async def silent(conn: ScriptedConnection) -> None:
        await conn.reader.readuntil(b"\r\n\r\n")
        await conn.hang()

    scripted_server.serve(silent)
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with ClientSession(timeout=client.ClientTimeout(sock_connect=0.3)) as session:
        with pytest.raises(client.ConnectionTimeoutError):
            await session.get("https://origin.test/", proxy=scripted_server.base)
    assert 0.25 < loop.time() - start < 1.0
