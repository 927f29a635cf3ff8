"""Proxies end to end: a real proxy (proxy.py) and a recording fake one.

Forwarding (absolute-form) for http targets, CONNECT tunnels for https, ws and
wss, proxy credentials (``proxy_auth``, URL userinfo, ``proxy_headers``),
session-level proxies, https:// proxies (TLS in TLS), pooling per proxy
identity, and exactly where ``Proxy-Authorization`` is and is not (security.md
G1/G2, PRX-01). Hostile proxies are in test_proxy_hostile.py, the environment
and netrc in test_proxy_env.py.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Iterator

import pytest
from servers import (
    Endpoint,
    ReadRequest,
    ScriptedServer,
    Send,
    TLSCertificates,
    http_response,
)
from servers.proxy import Head, ProxyPy, RecordingProxy, parse_head, proxy_env_names
from servers.ws import WSServer

import client
from client import BasicAuth, ClientSession, encode_basic_auth

USER_PASS = encode_basic_auth("user", "pass")


@pytest.fixture(scope="module")
def proxypy() -> Iterator[ProxyPy]:
    """proxy.py without authentication."""
    proxy = ProxyPy().start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def proxypy_auth() -> Iterator[ProxyPy]:
    """proxy.py requiring ``user:pass``."""
    proxy = ProxyPy(basic_auth="user:pass").start()
    yield proxy
    proxy.stop()


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    """No proxy variable or netrc of the machine leaks into these tests."""
    for name in proxy_env_names():
        monkeypatch.delenv(name)
    monkeypatch.setenv("NETRC", f"{tmp_path}/absent-netrc")


@pytest.fixture
async def recording_proxy() -> AsyncIterator[RecordingProxy]:
    proxy = await RecordingProxy().start()
    yield proxy
    await proxy.close()


@pytest.fixture
async def tls_origin(tls_certificates: TLSCertificates) -> AsyncIterator[ScriptedServer]:
    """A TLS origin (trusted by ``ssl_client_context``) recording decrypted requests."""
    server = ScriptedServer(ssl=tls_certificates.server_context("valid"))
    await server.start()
    yield server
    await server.close()


def origin_heads(server: ScriptedServer) -> list[Head]:
    return [parse_head(raw[: raw.index(b"\r\n\r\n") + 4]) for raw in server.requests]


# -- proxy.py: forwarding and tunnels ------------------------------------------------


async def test_http_target_is_forwarded(proxypy: ProxyPy, httpbin: Endpoint) -> None:
    mark = proxypy.mark()
    async with (
        ClientSession() as session,
        session.get(httpbin.url("/get?a=1"), proxy=proxypy.url) as resp,
    ):
        assert resp.status == 200
        assert (await resp.json())["args"] == {"a": "1"}
    log = await proxypy.wait_for_log(f"GET 127.0.0.1:{httpbin.port}/get", since=mark)
    assert "CONNECT" not in log


async def test_https_target_is_tunneled(
    proxypy: ProxyPy, httpbin_secure: Endpoint, ssl_client_context: ssl.SSLContext
) -> None:
    mark = proxypy.mark()
    async with ClientSession() as session:
        for _ in range(2):
            async with session.get(
                httpbin_secure.url("/get"), proxy=proxypy.url, ssl=ssl_client_context
            ) as resp:
                assert resp.status == 200
                assert (await resp.json())["url"] == httpbin_secure.url("/get")
        connector = session.connector
        assert connector is not None
        assert connector.stats()["idle"] == 1  # one tunnel, reused
    log = await proxypy.wait_for_log(f"CONNECT 127.0.0.1:{httpbin_secure.port}", since=mark)
    assert log.count("CONNECT") == 1


async def test_auth_proxy_refuses_without_credentials(
    proxypy_auth: ProxyPy,
    httpbin: Endpoint,
    httpbin_secure: Endpoint,
    ssl_client_context: ssl.SSLContext,
) -> None:
    async with ClientSession() as session:
        async with session.get(httpbin.url("/get"), proxy=proxypy_auth.url) as resp:
            assert resp.status == 407  # forwarded: the proxy's answer is the response
        with pytest.raises(client.ClientHttpProxyError) as info:
            await session.get(
                httpbin_secure.url("/get"), proxy=proxypy_auth.url, ssl=ssl_client_context
            )
    assert info.value.status == 407
    assert info.value.headers is not None
    assert info.value.headers["Proxy-Authenticate"] == "Basic"
    assert info.value.request_info is not None
    assert info.value.request_info.method == "CONNECT"


@pytest.mark.parametrize("how", ["proxy_auth", "url", "proxy_headers", "session"])
async def test_auth_proxy_accepts_credentials(
    how: str,
    proxypy_auth: ProxyPy,
    httpbin: Endpoint,
    httpbin_secure: Endpoint,
    ssl_client_context: ssl.SSLContext,
) -> None:
    proxy = proxypy_auth.url
    kwargs: dict[str, object] = {}
    session_kwargs: dict[str, object] = {}
    if how == "proxy_auth":
        kwargs = {"proxy": proxy, "proxy_auth": BasicAuth("user", "pass")}
    elif how == "url":
        kwargs = {"proxy": proxy.replace("http://", "http://user:pass@")}
    elif how == "proxy_headers":
        kwargs = {"proxy": proxy, "proxy_headers": {"Proxy-Authorization": USER_PASS}}
    else:
        session_kwargs = {"proxy": proxy, "proxy_auth": BasicAuth("user", "pass")}
    async with ClientSession(**session_kwargs) as session:  # type: ignore[arg-type]
        async with session.get(httpbin.url("/headers"), **kwargs) as resp:
            assert resp.status == 200
            forwarded = (await resp.json())["headers"]
        async with session.get(
            httpbin_secure.url("/headers"), ssl=ssl_client_context, **kwargs
        ) as resp:
            assert resp.status == 200
            tunneled = (await resp.json())["headers"]
    # proxy.py consumes the forwarded request's Proxy-Authorization; the tunnel never had one.
    assert "Proxy-Authorization" not in forwarded
    assert "Proxy-Authorization" not in tunneled


async def test_proxy_unreachable(unused_port: int, httpbin: Endpoint) -> None:
    async with ClientSession() as session:
        with pytest.raises(client.ClientProxyConnectionError) as info:
            await session.get(httpbin.url("/get"), proxy=f"http://127.0.0.1:{unused_port}")
    assert info.value.port == unused_port  # the error names the proxy, not the target


# -- the recording proxy: exactly what goes where -----------------------------------


async def test_connect_carries_only_proxy_fields(
    recording_proxy: RecordingProxy,
    tls_origin: ScriptedServer,
    ssl_client_context: ssl.SSLContext,
) -> None:
    """PRX-01/G2: credentials in the CONNECT only; origin headers only in the tunnel."""
    proxy = recording_proxy.url.replace("http://", "http://u:p@")
    async with (
        ClientSession(headers={"X-Session": "s"}) as session,
        session.get(
            tls_origin.url("/inner"),
            proxy=proxy,
            proxy_headers={"X-Proxy-Only": "1"},
            headers={
                "X-Custom": "c",
                "Authorization": "Bearer origin-token",
                "Proxy-Authorization": "Basic c3RyYXk6Y3JlZA==",  # a stray one: dropped
            },
            cookies={"c": "1"},
            ssl=ssl_client_context,
        ) as resp,
    ):
        assert resp.status == 200
    (connect,) = recording_proxy.heads
    authority = f"127.0.0.1:{tls_origin.port}"
    assert connect.raw.startswith(f"CONNECT {authority} HTTP/1.1\r\n".encode())
    assert connect.headers == (
        ("Host", authority),
        ("X-Proxy-Only", "1"),
        ("Proxy-Authorization", encode_basic_auth("u", "p")),
    )
    (inner,) = origin_heads(tls_origin)
    assert inner.target == "/inner"
    assert inner.get_all("X-Custom") == ["c"]
    assert inner.get_all("X-Session") == ["s"]
    assert inner.get_all("Authorization") == ["Bearer origin-token"]
    assert inner.get_all("Proxy-Authorization") == []
    assert inner.get_all("X-Proxy-Only") == []


async def test_forwarded_request_is_absolute_form_with_proxy_fields(
    recording_proxy: RecordingProxy,
) -> None:
    async with (
        ClientSession() as session,
        session.get(
            "http://example.test:8080/p?q=1",
            proxy=recording_proxy.url,
            proxy_auth=BasicAuth("u", "p"),
            proxy_headers={"X-Proxy-Only": "1", "Host": "ignored"},
        ) as resp,
    ):
        assert await resp.text() == "proxied"
    (head,) = recording_proxy.heads
    assert head.raw.startswith(b"GET http://example.test:8080/p?q=1 HTTP/1.1\r\n")
    assert head.get_all("Host") == ["example.test:8080"]
    assert head.get_all("Proxy-Authorization") == [encode_basic_auth("u", "p")]
    assert head.get_all("X-Proxy-Only") == ["1"]


async def test_redirect_to_another_env_proxy_gets_no_credentials(
    monkeypatch: pytest.MonkeyPatch,
    recording_proxy: RecordingProxy,
    tls_origin: ScriptedServer,
    ssl_client_context: ssl.SSLContext,
) -> None:
    """PRX-01: http hop via proxy A (with credentials), https hop via proxy B (none)."""
    target = tls_origin.url("/final")
    recording_proxy.respond = lambda _: http_response(302, headers=[("Location", target)])
    second = await RecordingProxy().start()
    try:
        monkeypatch.setenv("HTTP_PROXY", recording_proxy.url.replace("http://", "http://a:pw@"))
        monkeypatch.setenv("https_proxy", second.url)
        async with (
            ClientSession(trust_env=True) as session,
            session.get("http://start.test/", ssl=ssl_client_context) as resp,
        ):
            assert resp.status == 200
            assert str(resp.url) == target
    finally:
        await second.close()
    (first_hop,) = recording_proxy.heads
    assert first_hop.target == "http://start.test/"
    assert first_hop.get_all("Proxy-Authorization") == [encode_basic_auth("a", "pw")]
    (connect,) = second.heads
    assert connect.method == "CONNECT"
    assert connect.get_all("Proxy-Authorization") == []
    (inner,) = origin_heads(tls_origin)
    assert inner.get_all("Proxy-Authorization") == []


async def test_session_proxy_auth_stays_with_its_proxy(recording_proxy: RecordingProxy) -> None:
    other = await RecordingProxy().start()
    try:
        async with ClientSession(proxy=recording_proxy.url, proxy_auth=BasicAuth("s", "1")) as s:
            await (await s.get("http://a.test/")).read()
            await (await s.get("http://a.test/", proxy=other.url)).read()
    finally:
        await other.close()
    assert recording_proxy.heads[0].get_all("Proxy-Authorization") == [encode_basic_auth("s", "1")]
    assert other.heads[0].get_all("Proxy-Authorization") == []


async def test_pool_is_keyed_by_proxy_identity(
    recording_proxy: RecordingProxy,
    tls_origin: ScriptedServer,
    ssl_client_context: ssl.SSLContext,
) -> None:
    tls_origin.script([ReadRequest(), Send(http_response(200, b"ok"))] * 4)
    url = tls_origin.url("/")
    async with ClientSession() as session:
        for auth in ("a", "a", "b", "a"):
            async with session.get(
                url, proxy=recording_proxy.url, proxy_auth=BasicAuth(auth), ssl=ssl_client_context
            ) as resp:
                await resp.read()
    # "a" twice on one tunnel, then "b" needs its own; "a" again reuses the first.
    assert recording_proxy.methods() == ["CONNECT", "CONNECT"]


async def test_https_proxy_tls_in_tls(
    tls_certificates: TLSCertificates,
    tls_origin: ScriptedServer,
    ssl_client_context: ssl.SSLContext,
) -> None:
    """An https:// proxy URL: TLS to the proxy, then TLS to the target inside it."""
    proxy = await RecordingProxy(ssl_context=tls_certificates.server_context("valid")).start()
    try:
        async with ClientSession() as session:
            async with session.get(
                tls_origin.url("/x"), proxy=proxy.url, ssl=ssl_client_context
            ) as resp:
                assert await resp.text() == "ok"
            async with session.get(
                "http://plain.test/", proxy=proxy.url, ssl=ssl_client_context
            ) as resp:
                assert await resp.text() == "proxied"
    finally:
        await proxy.close()
    assert proxy.methods() == ["CONNECT", "GET"]
    assert [h.target for h in origin_heads(tls_origin)] == ["/x"]


# -- websockets: CONNECT for ws:// too (RFC 6455 §4.1) ----------------------------------


@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
async def test_websocket_through_a_tunnel(
    secure: bool,
    recording_proxy: RecordingProxy,
    tls_certificates: TLSCertificates,
    ssl_client_context: ssl.SSLContext,
) -> None:
    context = tls_certificates.server_context("valid") if secure else None
    server = await WSServer(ssl_context=context).start()
    proxy = recording_proxy.url.replace("http://", "http://u:p@")
    try:
        async with (
            ClientSession() as session,
            session.ws_connect(server.url("/headers"), proxy=proxy, ssl=ssl_client_context) as ws,
        ):
            seen = json.loads(await ws.receive_str())
    finally:
        await server.close()
    (connect,) = recording_proxy.heads
    assert connect.method == "CONNECT"
    assert connect.target == f"127.0.0.1:{server.port}"
    assert connect.get_all("Proxy-Authorization") == [encode_basic_auth("u", "p")]
    assert seen["path"] == "/headers"  # origin-form inside the tunnel
    assert "Proxy-Authorization" not in seen
