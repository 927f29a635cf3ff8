"""ClientSession end to end against real loopback servers: options, verbs, lifecycle.

What the server received is read from the raw bytes the scripted server
recorded (or what httpbin echoes back); what the client returned is checked
on the response objects.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import gzip
import json
import re
import time
from typing import Any

import pytest
from multidict import CIMultiDict
from servers import (
    CountingServer,
    Endpoint,
    Hang,
    ReadRequest,
    ScriptedConnection,
    ScriptedServer,
    Send,
    http_response,
    parse_wire,
)
from yarl import URL

import client as aiohttp
from client.request import ClientRequest

UA = re.compile(r"Python/3\.\d+ fetchrun/\d+\.\d+\.\d+")


async def wait_until(predicate: Any, timeout: float = 2.0) -> None:
    """Poll ``predicate`` (a loopback server's counters settle within a few ticks)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


# -- constructor options ---------------------------------------------------------


async def test_base_url_joins_relative_paths(httpbin: Endpoint) -> None:
    async with aiohttp.ClientSession(base_url=httpbin.url("/")) as session:
        async with session.get("get", params={"q": "1"}) as resp:
            data = await resp.json()
        assert resp.url == URL(httpbin.url("/get?q=1"))
        assert data["args"] == {"q": "1"}
        async with session.get("/anything/x") as resp:
            assert (await resp.json())["url"] == httpbin.url("/anything/x")


async def test_base_url_with_path_prefix(httpbin: Endpoint) -> None:
    async with aiohttp.ClientSession(base_url=httpbin.url("/anything/api/")) as session:
        async with session.get("v1/items") as resp:
            assert (await resp.json())["url"] == httpbin.url("/anything/api/v1/items")


async def test_base_url_absolute_request_url_wins(
    httpbin: Endpoint, scripted_server: ScriptedServer
) -> None:
    async with aiohttp.ClientSession(base_url=httpbin.url("/")) as session:
        async with session.get(scripted_server.url("/other")) as resp:
            assert await resp.read() == b"ok"
    line, _, _ = parse_wire(scripted_server.requests[0])
    assert line == "GET /other HTTP/1.1"


@pytest.mark.parametrize("base", ["http://h.test/api", "/relative/", "api/"])
def test_base_url_must_be_absolute_with_trailing_slash(base: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        aiohttp.ClientSession(base_url=base)


async def test_session_headers_sent_and_overridden_per_request(
    scripted_server: ScriptedServer,
) -> None:
    headers = {"X-Session": "s", "User-Agent": "probe/1", "X-Both": "session"}
    async with aiohttp.ClientSession(headers=headers) as session:
        assert session.headers["x-session"] == "s"
        async with session.get(scripted_server.url("/"), headers={"X-Both": "request"}) as resp:
            await resp.read()
        async with session.get(scripted_server.url("/")) as resp:
            await resp.read()
    _, first, _ = parse_wire(scripted_server.requests[0])
    _, second, _ = parse_wire(scripted_server.requests[1])
    assert first["X-Session"] == "s"
    assert first.getall("User-Agent") == ["probe/1"]
    assert first.getall("X-Both") == ["request"]
    assert second.getall("X-Both") == ["session"]


async def test_repeated_header_names_in_one_mapping_are_all_sent(
    scripted_server: ScriptedServer,
) -> None:
    async with aiohttp.ClientSession() as session:
        pairs = [("X-Multi", "1"), ("X-Multi", "2")]
        async with session.get(scripted_server.url("/"), headers=pairs) as resp:
            await resp.read()
    _, headers, _ = parse_wire(scripted_server.requests[0])
    assert headers.getall("X-Multi") == ["1", "2"]


async def test_session_cookies_sent_and_merged_with_request_cookies(httpbin: Endpoint) -> None:
    async with aiohttp.ClientSession(cookies={"session_c": "1"}) as session:
        async with session.get(httpbin.url("/cookies"), cookies={"req_c": "2"}) as resp:
            merged = (await resp.json())["cookies"]
        async with session.get(httpbin.url("/cookies")) as resp:
            later = (await resp.json())["cookies"]
    assert merged == {"session_c": "1", "req_c": "2"}
    assert later == {"session_c": "1"}  # per-request cookies are not stored


async def test_cookies_set_by_server_are_sent_back(httpbin: Endpoint) -> None:
    jar = aiohttp.CookieJar(unsafe=True)  # the server is an IP address
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        async with session.get(httpbin.url("/cookies/set?k=v")) as resp:
            assert (await resp.json())["cookies"] == {"k": "v"}
        assert resp.history[0].cookies["k"].value == "v"
        async with session.get(httpbin.url("/cookies")) as resp:
            assert (await resp.json())["cookies"] == {"k": "v"}


async def test_session_timeout_total(scripted_server: ScriptedServer) -> None:
    scripted_server.script([ReadRequest(), Hang()])
    timeout = aiohttp.ClientTimeout(total=0.2)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        assert session.timeout is timeout
        start = time.monotonic()
        with pytest.raises(aiohttp.TotalTimeoutError) as info:
            await session.get(scripted_server.url("/"))
    assert time.monotonic() - start < 2
    assert isinstance(info.value, asyncio.TimeoutError)
    assert isinstance(info.value, aiohttp.ServerTimeoutError)


async def test_request_timeout_overrides_session(scripted_server: ScriptedServer) -> None:
    scripted_server.script([ReadRequest(), Hang()])
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        start = time.monotonic()
        with pytest.raises(aiohttp.SocketTimeoutError):
            await session.get(
                scripted_server.url("/"), timeout=aiohttp.ClientTimeout(sock_read=0.2)
            )
    assert time.monotonic() - start < 2


def test_session_timeout_must_be_client_timeout() -> None:
    with pytest.raises(ValueError, match="ClientTimeout"):
        aiohttp.ClientSession(timeout=5)


async def test_shared_connector_not_owned_survives_session(
    counting_server: CountingServer,
) -> None:
    connector = aiohttp.TCPConnector()
    try:
        for _ in range(2):
            session = aiohttp.ClientSession(connector=connector, connector_owner=False)
            assert session.connector is connector
            assert session.connector_owner is False
            async with session.get(counting_server.url("/")) as resp:
                assert await resp.read() == b"ok"
            await session.close()
            assert session.closed
            assert not connector.closed
        # The second session reused the first session's pooled socket.
        assert counting_server.stats.connections == 1
        assert connector.stats() == {"in_use": 0, "idle": 1, "waiting": 0}
    finally:
        await connector.close()
    await wait_until(lambda: counting_server.stats.open == 0)


async def test_owned_connector_closed_with_session(counting_server: CountingServer) -> None:
    connector = aiohttp.TCPConnector()
    session = aiohttp.ClientSession(connector=connector)
    async with session.get(counting_server.url("/")) as resp:
        await resp.read()
    await session.close()
    assert connector.closed
    await wait_until(lambda: counting_server.stats.open == 0)


async def test_json_serialize_used_for_json_bodies(httpbin: Endpoint) -> None:
    def dumps(obj: Any) -> str:
        return json.dumps(obj, separators=(",", ":"), sort_keys=True)

    async with aiohttp.ClientSession(json_serialize=dumps) as session:
        assert session.json_serialize is dumps
        async with session.post(httpbin.url("/post"), json={"b": 2, "a": [1, 2]}) as resp:
            echoed = await resp.json()
    assert echoed["data"] == '{"a":[1,2],"b":2}'
    assert echoed["headers"]["Content-Type"] == "application/json"


async def test_raise_for_status_true_on_session(httpbin: Endpoint) -> None:
    async with aiohttp.ClientSession(raise_for_status=True) as session:
        with pytest.raises(aiohttp.ClientResponseError) as info:
            await session.get(httpbin.url("/status/404"))
        assert info.value.status == 404
        assert info.value.request_info is not None
        assert info.value.request_info.url == URL(httpbin.url("/status/404"))
        # Per request it can be turned off again.
        async with session.get(httpbin.url("/status/404"), raise_for_status=False) as resp:
            assert resp.status == 404
        async with session.get(httpbin.url("/status/200")) as resp:
            assert resp.status == 200


async def test_raise_for_status_per_request(httpbin: Endpoint) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(httpbin.url("/status/500")) as resp:
            assert resp.status == 500
        with pytest.raises(aiohttp.ClientResponseError) as info:
            await session.get(httpbin.url("/status/503"), raise_for_status=True)
    assert info.value.status == 503


class StatusRejected(Exception):
    pass


async def test_raise_for_status_async_callable(httpbin: Endpoint) -> None:
    seen: list[tuple[str, int]] = []

    async def session_check(resp: aiohttp.ClientResponse) -> None:
        seen.append(("session", resp.status))
        if resp.status == 418:
            raise StatusRejected(resp.status)

    async def request_check(resp: aiohttp.ClientResponse) -> None:
        seen.append(("request", resp.status))

    async with aiohttp.ClientSession(raise_for_status=session_check) as session:
        async with session.get(httpbin.url("/status/201")) as resp:
            assert resp.status == 201
        with pytest.raises(StatusRejected):
            await session.get(httpbin.url("/status/418"))
        async with session.get(httpbin.url("/status/418"), raise_for_status=request_check) as resp:
            assert resp.status == 418
    assert seen == [("session", 201), ("session", 418), ("request", 418)]


async def test_session_basic_auth(httpbin: Endpoint) -> None:
    auth = aiohttp.BasicAuth("user", "passwd")
    async with aiohttp.ClientSession(auth=auth) as session:
        assert session.auth == auth
        async with session.get(httpbin.url("/basic-auth/user/passwd")) as resp:
            assert resp.status == 200
            assert await resp.json() == {"authenticated": True, "user": "user"}
        # A per-request auth replaces the session's.
        bad = aiohttp.BasicAuth("user", "wrong")
        async with session.get(httpbin.url("/basic-auth/user/passwd"), auth=bad) as resp:
            assert resp.status == 401


async def test_credentials_in_url_become_basic_auth(httpbin: Endpoint) -> None:
    url = URL(httpbin.url("/basic-auth/us%40er/p%3Ass")).with_user("us@er").with_password("p:ss")
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as resp:
            assert resp.status == 200
            assert (await resp.json())["user"] == "us@er"
        assert resp.url.user is None  # userinfo is not kept in the URL
        assert resp.request_info.url.user is None


async def test_auth_and_authorization_header_together_refused(
    scripted_server: ScriptedServer,
) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ValueError, match="AUTHORIZATION"):
            await session.get(
                scripted_server.url("/"),
                auth=aiohttp.BasicAuth("u", "p"),
                headers={"Authorization": "Bearer x"},
            )
    assert scripted_server.accepted == 0


async def test_session_auth_only_sent_to_base_url_origin(
    httpbin: Endpoint, scripted_server: ScriptedServer
) -> None:
    auth = aiohttp.BasicAuth("user", "passwd")
    async with aiohttp.ClientSession(base_url=httpbin.url("/"), auth=auth) as session:
        async with session.get("basic-auth/user/passwd") as resp:
            assert resp.status == 200
        async with session.get(scripted_server.url("/elsewhere")) as resp:
            await resp.read()
    _, headers, _ = parse_wire(scripted_server.requests[0])
    assert "Authorization" not in headers


async def test_auto_decompress_false_keeps_body_compressed(httpbin: Endpoint) -> None:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        assert session.auto_decompress is False
        async with session.get(httpbin.url("/gzip")) as resp:
            raw = await resp.read()
            assert resp.headers["Content-Encoding"] == "gzip"
        assert raw[:2] == b"\x1f\x8b"
        assert json.loads(gzip.decompress(raw))["gzipped"] is True
        # Per request decoding can be turned back on.
        async with session.get(httpbin.url("/gzip"), auto_decompress=True) as resp:
            assert (await resp.json())["gzipped"] is True


async def test_skip_auto_headers_session_and_request(scripted_server: ScriptedServer) -> None:
    async with aiohttp.ClientSession(skip_auto_headers=["User-Agent"]) as session:
        assert session.skip_auto_headers == frozenset({"user-agent"})
        async with session.post(
            scripted_server.url("/"), skip_auto_headers=["accept-encoding", "Content-Type"]
        ) as resp:
            await resp.read()
    _, headers, _ = parse_wire(scripted_server.requests[0])
    assert set(headers) == {"Host", "Accept", "Content-Length"}
    assert headers["Accept"] == "*/*"


async def test_explicit_header_beats_skip_auto_headers(scripted_server: ScriptedServer) -> None:
    async with aiohttp.ClientSession(skip_auto_headers=["User-Agent"]) as session:
        async with session.get(scripted_server.url("/"), headers={"User-Agent": "mine"}) as resp:
            await resp.read()
    _, headers, _ = parse_wire(scripted_server.requests[0])
    assert headers.getall("User-Agent") == ["mine"]


BIG = 4 * 1024 * 1024


async def _serve_big(conn: ScriptedConnection) -> None:
    await conn.read_request()
    await conn.send(http_response(200, b"z" * BIG))


@pytest.mark.parametrize("where", ["session", "request"])
async def test_read_bufsize_bounds_what_is_buffered(
    scripted_server: ScriptedServer, where: str
) -> None:
    scripted_server.serve(_serve_big)
    small = 16 * 1024
    session_kw: dict[str, Any] = {"read_bufsize": small} if where == "session" else {}
    request_kw: dict[str, Any] = {"read_bufsize": small} if where == "request" else {}
    async with aiohttp.ClientSession(**session_kw) as session:
        async with session.get(scripted_server.url("/"), **request_kw) as resp:
            await asyncio.sleep(0.1)  # plenty for 4 MiB on loopback were it not paused
            buffered = resp.content.total_raw_bytes
            body = await resp.read()
    # Paused past 2 x read_bufsize; one socket read (<= 256 KiB) may overshoot.
    assert buffered <= 2 * small + 256 * 1024
    assert len(body) == BIG


async def test_default_read_bufsize_is_larger(scripted_server: ScriptedServer) -> None:
    scripted_server.serve(_serve_big)
    async with aiohttp.ClientSession() as session:
        async with session.get(scripted_server.url("/")) as resp:
            await wait_until(lambda: resp.content.total_raw_bytes >= 2 * 2**18)
            assert len(await resp.read()) == BIG


def _long_reason_response() -> bytes:
    return http_response(200, b"ok", reason="R" * 300)


def _long_header_response() -> bytes:
    return http_response(200, b"ok", headers=[("X-Long", "v" * 300)])


@pytest.mark.parametrize(
    ("option", "response"),
    [("max_line_size", _long_reason_response()), ("max_field_size", _long_header_response())],
)
@pytest.mark.parametrize("where", ["session", "request"])
async def test_parser_limits(
    scripted_server: ScriptedServer, option: str, response: bytes, where: str
) -> None:
    scripted_server.script([ReadRequest(), Send(response)])
    kw: dict[str, Any] = {option: 100}
    async with aiohttp.ClientSession(**(kw if where == "session" else {})) as session:
        with pytest.raises(aiohttp.ClientResponseError) as info:
            await session.get(scripted_server.url("/"), **(kw if where == "request" else {}))
        assert info.value.status == 400
        # The default limit (8190) accepts the same response.
        async with aiohttp.ClientSession() as default_session:
            async with default_session.get(scripted_server.url("/")) as resp:
                assert await resp.read() == b"ok"


# -- verbs -------------------------------------------------------------------------

VERBS = ["get", "post", "put", "patch", "delete", "head", "options"]


@pytest.mark.parametrize("verb", VERBS)
async def test_verb_awaited(counting_server: CountingServer, verb: str) -> None:
    async with aiohttp.ClientSession() as session:
        resp = await getattr(session, verb)(counting_server.url("/v"))
        assert isinstance(resp, aiohttp.ClientResponse)
        assert resp.status == 200
        assert resp.method == verb.upper()
        body = await resp.read()
        resp.release()
    assert body == (b"" if verb == "head" else b"ok")
    assert [r.method for r in counting_server.requests] == [verb.upper()]
    assert counting_server.requests[0].target == "/v"


@pytest.mark.parametrize("verb", VERBS)
async def test_verb_as_context_manager(counting_server: CountingServer, verb: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with getattr(session, verb)(counting_server.url("/c")) as resp:
            assert resp.status == 200
            body = await resp.read()
    assert body == (b"" if verb == "head" else b"ok")
    assert [r.method for r in counting_server.requests] == [verb.upper()]


async def test_request_with_any_method(counting_server: CountingServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.request("propfind", counting_server.url("/")) as resp:
            assert resp.status == 200
        resp2 = await session.request("TRACE", counting_server.url("/"))
        await resp2.read()
    assert [r.method for r in counting_server.requests] == ["PROPFIND", "TRACE"]


# -- lifecycle ---------------------------------------------------------------------


async def test_close_and_closed() -> None:
    session = aiohttp.ClientSession()
    assert not session.closed
    await session.close()
    assert session.closed
    await session.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        await session.get("http://127.0.0.1:9/")


async def test_async_with_returns_session_and_closes_it() -> None:
    session = aiohttp.ClientSession()
    async with session as entered:
        assert entered is session
    assert session.closed
    assert session.connector is None


async def test_close_leaves_nothing_open(counting_server: CountingServer) -> None:
    session = aiohttp.ClientSession()
    connector = session.connector
    assert connector is not None
    async with session.get(counting_server.url("/")) as resp:
        await resp.read()
    first = await session.get(counting_server.url("/"))  # read, never released
    await first.read()
    dropped = await session.get(counting_server.url("/?size=4000000"))  # body not read
    partial = await session.get(counting_server.url("/?size=4000000"))
    await partial.content.read(10)
    assert connector.stats()["in_use"] == 2  # dropped and partial hold their sockets
    dropped.release()
    assert connector.stats()["in_use"] == 1
    await session.close()
    assert connector.stats() == {"in_use": 0, "idle": 0, "waiting": 0}
    assert connector.closed
    await wait_until(lambda: counting_server.stats.open == 0)
    assert partial.connection is None or partial.connection.closed
    del first, dropped, partial
    gc.collect()  # an unclosed transport or session would warn here (warnings are errors)


def _drop_open_session() -> None:
    session = aiohttp.ClientSession()
    del session
    gc.collect()


async def test_unclosed_session_warns() -> None:
    with pytest.warns(ResourceWarning, match="Unclosed client session"):
        _drop_open_session()


# -- default headers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "extra"),
    [
        ("GET", {}),
        ("HEAD", {}),
        ("OPTIONS", {}),
        ("POST", {"Content-Type": "application/octet-stream", "Content-Length": "0"}),
        ("PUT", {"Content-Type": "application/octet-stream", "Content-Length": "0"}),
        ("PATCH", {"Content-Type": "application/octet-stream", "Content-Length": "0"}),
        ("DELETE", {"Content-Length": "0"}),
    ],
)
async def test_default_headers_as_aiohttp_sends_them(
    scripted_server: ScriptedServer, method: str, extra: dict[str, str]
) -> None:
    if method == "HEAD":
        scripted_server.script([ReadRequest(), Send(http_response(200, b""))])
    async with aiohttp.ClientSession() as session:
        async with session.request(method, scripted_server.url("/h")) as resp:
            await resp.read()
    line, headers, body = parse_wire(scripted_server.requests[0])
    assert line == f"{method} /h HTTP/1.1"
    assert body == b""
    names = [name.lower() for name in headers]
    assert len(names) == len(set(names)), "no header is sent twice"
    user_agent = headers.pop("User-Agent")
    assert UA.fullmatch(user_agent)
    assert dict(headers) == {
        "Host": f"127.0.0.1:{scripted_server.port}",
        "Accept": "*/*",
        "Accept-Encoding": "gzip, deflate, br, zstd",
        **extra,
    }


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://example.test/", "example.test"),
        ("http://example.test:80/", "example.test"),
        ("https://example.test:443/", "example.test"),
        ("http://example.test:443/", "example.test:443"),
        ("https://example.test:8443/x", "example.test:8443"),
        ("http://[::1]:8080/", "[::1]:8080"),
    ],
)
def test_host_header_omits_default_port(url: str, host: str) -> None:
    req = ClientRequest("GET", URL(url), headers=CIMultiDict())
    assert req.headers["Host"] == host


async def test_host_header_override(scripted_server: ScriptedServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(scripted_server.url("/"), headers={"Host": "virtual.test"}) as r:
            await r.read()
    _, headers, _ = parse_wire(scripted_server.requests[0])
    assert headers.getall("Host") == ["virtual.test"]


async def test_force_close_connector_sends_connection_close(
    scripted_server: ScriptedServer,
) -> None:
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(2):
            async with session.get(scripted_server.url("/")) as resp:
                await resp.read()
    assert scripted_server.accepted == 2
    _, headers, _ = parse_wire(scripted_server.requests[0])
    assert headers["Connection"] == "close"


# -- connection errors -----------------------------------------------------------------


async def test_closed_port_gives_client_connector_error(unused_port: int) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectorError) as info:
            await session.get(f"http://127.0.0.1:{unused_port}/")
    exc = info.value
    assert exc.host == "127.0.0.1"
    assert exc.port == unused_port
    assert isinstance(exc.os_error, ConnectionRefusedError)
    assert exc.errno == errno.ECONNREFUSED
    assert isinstance(exc, aiohttp.ClientOSError)
    assert isinstance(exc, OSError)
    assert not isinstance(exc, aiohttp.ClientConnectorDNSError)
    assert f"127.0.0.1:{unused_port}" in str(exc)


async def test_unresolvable_host_gives_dns_error(unused_port: int) -> None:
    # A resolver whose only nameserver is a closed loopback port: no query leaves the box.
    resolver = aiohttp.AsyncResolver(nameservers=[f"127.0.0.1:{unused_port}"])
    connector = aiohttp.TCPConnector(resolver=resolver)
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            start = time.monotonic()
            with pytest.raises(aiohttp.ClientConnectorDNSError) as info:
                await session.get("http://nonexistent.invalid/")
            assert time.monotonic() - start < 5
    finally:
        await resolver.close()
    assert info.value.host == "nonexistent.invalid"
    assert info.value.port == 80
    assert isinstance(info.value, aiohttp.ClientConnectorError)
    assert isinstance(info.value, OSError)
