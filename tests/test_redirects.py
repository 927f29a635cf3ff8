"""Redirects end to end: method rules, history, limits, credentials across origins.

Two scripted servers on different ports are two origins (RFC 6454: scheme,
host and port); each records the raw requests it got, so "dropped" and
"kept" are checked on the wire.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from multidict import CIMultiDict
from servers import Endpoint, ScriptedConnection, ScriptedServer, http_response, parse_wire
from yarl import URL

import client as aiohttp
from client.urls import resolve_location

HTTP = frozenset(("http", "https"))


def redirect(location: str, status: int = 302, *extra: tuple[str, str]) -> bytes:
    return http_response(status, headers=[("Location", location), *extra])


def route(server: ScriptedServer, routes: Mapping[str, bytes]) -> None:
    """Serve ``routes`` (request target -> raw response) on keep-alive connections;
    any other target gets 200 "ok"."""

    async def handle(conn: ScriptedConnection) -> None:
        while True:
            raw = await conn.read_request()
            target = raw.split(b" ", 2)[1].decode()
            await conn.send(routes.get(target, http_response(200, b"ok")))

    server.serve(handle)


def received(server: ScriptedServer) -> list[tuple[str, CIMultiDict[str], bytes]]:
    return [parse_wire(raw) for raw in server.requests]


@pytest.fixture
async def other_server() -> AsyncIterator[ScriptedServer]:
    """A second scripted server: same host, other port, so another origin."""
    server = ScriptedServer()
    await server.start()
    yield server
    await server.close()


# -- method rules (RFC 9110 §15.4, aiohttp's choices) ----------------------------------

# (status, method) -> method of the next hop; a rewritten request loses its body.
METHOD_RULES = [
    (301, "POST", "GET"),
    (301, "PUT", "PUT"),
    (301, "PATCH", "PATCH"),
    (301, "DELETE", "DELETE"),
    (302, "POST", "GET"),
    (302, "PUT", "PUT"),
    (302, "DELETE", "DELETE"),
    (303, "POST", "GET"),
    (303, "PUT", "GET"),
    (303, "PATCH", "GET"),
    (303, "DELETE", "GET"),
    (307, "POST", "POST"),
    (307, "PUT", "PUT"),
    (307, "PATCH", "PATCH"),
    (308, "POST", "POST"),
    (308, "PUT", "PUT"),
    (308, "DELETE", "DELETE"),
]


@pytest.mark.parametrize(("status", "method", "expected"), METHOD_RULES)
async def test_method_rules(httpbin: Endpoint, status: int, method: str, expected: str) -> None:
    params = {"url": "/anything/landed", "status_code": str(status)}
    async with aiohttp.ClientSession() as session:
        async with session.request(
            method, httpbin.url("/redirect-to"), params=params, data=b"payload"
        ) as resp:
            seen = await resp.json()
    assert resp.status == 200
    assert resp.url == URL(httpbin.url("/anything/landed"))
    assert [(r.status, r.method) for r in resp.history] == [(status, method)]
    assert resp.method == expected
    assert seen["method"] == expected
    if expected == method:
        assert seen["data"] == "payload"
        assert seen["headers"]["Content-Length"] == "7"
        assert seen["headers"]["Content-Type"] == "application/octet-stream"
    else:
        assert seen["data"] == ""
        assert "Content-Length" not in seen["headers"]
        assert "Content-Type" not in seen["headers"]


async def test_get_stays_get_for_every_status(httpbin: Endpoint) -> None:
    async with aiohttp.ClientSession() as session:
        for status in (301, 302, 303, 307, 308):
            params = {"url": "/get", "status_code": str(status)}
            async with session.get(httpbin.url("/redirect-to"), params=params) as resp:
                assert resp.status == 200
                assert resp.method == "GET"


async def test_303_keeps_head(httpbin: Endpoint) -> None:
    params = {"url": "/get", "status_code": "303"}
    async with aiohttp.ClientSession() as session:
        async with session.head(
            httpbin.url("/redirect-to"), params=params, allow_redirects=True
        ) as resp:
            assert resp.status == 200
            assert resp.method == "HEAD"
            assert resp.url == URL(httpbin.url("/get"))


async def test_303_drops_streamed_body(scripted_server: ScriptedServer) -> None:
    route(scripted_server, {"/form": redirect("/result", 303)})

    async def body() -> AsyncIterator[bytes]:
        yield b"chunk"

    async with aiohttp.ClientSession() as session:
        async with session.post(scripted_server.url("/form"), data=body()) as resp:
            assert await resp.read() == b"ok"
    (line1, h1, _), (line2, h2, body2) = received(scripted_server)
    assert line1 == "POST /form HTTP/1.1"
    assert h1["Transfer-Encoding"] == "chunked"
    assert line2 == "GET /result HTTP/1.1"
    assert body2 == b""
    assert not {"Content-Length", "Content-Type", "Transfer-Encoding"} & set(h2)


async def test_307_with_consumed_async_generator(scripted_server: ScriptedServer) -> None:
    route(scripted_server, {"/upload": redirect("/again", 307)})

    async def body() -> AsyncIterator[bytes]:
        yield b"once"

    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientPayloadError, match="redirect"):
            await session.post(scripted_server.url("/upload"), data=body())
    requests = received(scripted_server)
    assert [line for line, _, _ in requests] == ["POST /upload HTTP/1.1"]  # /again never sent


async def test_307_resends_file_body(tmp_path: Any, scripted_server: ScriptedServer) -> None:
    route(scripted_server, {"/upload": redirect("/again", 307)})
    path = tmp_path / "f.bin"
    path.write_bytes(b"file-bytes")
    async with aiohttp.ClientSession() as session:
        with path.open("rb") as fh:
            async with session.put(scripted_server.url("/upload"), data=fh) as resp:
                assert resp.status == 200
    (_, _, body1), (line2, h2, body2) = received(scripted_server)
    assert line2 == "PUT /again HTTP/1.1"
    assert body1 == body2 == b"file-bytes"
    assert h2["Content-Length"] == "10"


# -- history and limits ---------------------------------------------------------------------


async def test_history_contents(httpbin: Endpoint) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(httpbin.url("/redirect/3")) as resp:
            assert resp.status == 200
            assert (await resp.json())["url"] == httpbin.url("/get")
    assert [r.status for r in resp.history] == [302, 302, 302]
    assert [r.url.path for r in resp.history] == [
        "/redirect/3",
        "/relative-redirect/2",
        "/relative-redirect/1",
    ]
    assert all(r.connection is None for r in resp.history)  # released
    assert resp.history[1].request_info.url == resp.history[0].url.join(
        URL(resp.history[0].headers["Location"])
    )
    assert resp.history[0].history == ()
    assert len(resp.history[2].history) == 2  # each hop knows the hops before it


async def test_max_redirects_follows_exactly_n(httpbin: Endpoint) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(httpbin.url("/redirect/3"), max_redirects=3) as resp:
            assert resp.status == 200
            assert len(resp.history) == 3
        with pytest.raises(aiohttp.TooManyRedirects) as info:
            await session.get(httpbin.url("/redirect/4"), max_redirects=3)
    exc = info.value
    assert len(exc.history) == 4  # the (N+1)th redirect raised, every hop kept
    assert [r.status for r in exc.history] == [302] * 4
    assert exc.request_info is not None
    assert exc.request_info.url == URL(httpbin.url("/redirect/4"))
    assert isinstance(exc, aiohttp.ClientResponseError)


async def test_default_max_redirects_is_ten(httpbin: Endpoint) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(httpbin.url("/redirect/10")) as resp:
            assert len(resp.history) == 10
        with pytest.raises(aiohttp.TooManyRedirects) as info:
            await session.get(httpbin.url("/redirect/11"))
    assert len(info.value.history) == 11


async def test_redirect_loop(scripted_server: ScriptedServer) -> None:
    route(scripted_server, {"/loop": redirect("/loop")})
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.TooManyRedirects) as info:
            await session.get(scripted_server.url("/loop"))
    assert len(info.value.history) == 11
    assert len(scripted_server.requests) == 11
    assert scripted_server.accepted == 1  # every hop reused the keep-alive socket


async def test_redirect_loop_across_origins(
    scripted_server: ScriptedServer, other_server: ScriptedServer
) -> None:
    route(scripted_server, {"/a": redirect(other_server.url("/b"))})
    route(other_server, {"/b": redirect(scripted_server.url("/a"))})
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.TooManyRedirects) as info:
            await session.get(scripted_server.url("/a"), max_redirects=4)
    assert [r.url.port for r in info.value.history] == [
        scripted_server.port,
        other_server.port,
    ] * 2 + [scripted_server.port]


async def test_allow_redirects_false(httpbin: Endpoint) -> None:
    params = {"url": "/get", "status_code": "302"}
    async with aiohttp.ClientSession() as session:
        async with session.get(
            httpbin.url("/redirect-to"), params=params, allow_redirects=False
        ) as resp:
            assert resp.status == 302
            assert resp.headers["Location"] == "/get"
            assert resp.history == ()


async def test_head_does_not_follow_by_default(httpbin: Endpoint) -> None:
    params = {"url": "/get", "status_code": "302"}
    async with aiohttp.ClientSession() as session:
        async with session.head(httpbin.url("/redirect-to"), params=params) as resp:
            assert resp.status == 302
            assert resp.history == ()
        async with session.head(
            httpbin.url("/redirect-to"), params=params, allow_redirects=True
        ) as resp:
            assert resp.status == 200


async def test_3xx_without_location_is_final(scripted_server: ScriptedServer) -> None:
    route(scripted_server, {"/": http_response(302, b"no location")})
    async with aiohttp.ClientSession() as session:
        async with session.get(scripted_server.url("/")) as resp:
            assert resp.status == 302
            assert await resp.read() == b"no location"
    assert len(scripted_server.requests) == 1


# -- Location resolution ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "location", "target"),
    [
        ("/a/b", "c", "/a/c"),
        ("/a/b", "../c?x=1", "/c?x=1"),
        ("/a/b", "/abs", "/abs"),
        ("/a/b", "?q=1", "/a/b?q=1"),
        ("/a/b", "http:other", "/a/other"),  # browser-style relative, as aiohttp
    ],
)
async def test_relative_location(
    scripted_server: ScriptedServer, start: str, location: str, target: str
) -> None:
    route(scripted_server, {start: redirect(location)})
    async with aiohttp.ClientSession() as session:
        async with session.get(scripted_server.url(start)) as resp:
            assert resp.status == 200
    assert received(scripted_server)[1][0] == f"GET {target} HTTP/1.1"
    assert resp.url == URL(scripted_server.url(target))


async def test_scheme_relative_location(
    scripted_server: ScriptedServer, other_server: ScriptedServer
) -> None:
    route(scripted_server, {"/": redirect(f"//127.0.0.1:{other_server.port}/there")})
    async with aiohttp.ClientSession() as session:
        async with session.get(scripted_server.url("/")) as resp:
            assert resp.url == URL(other_server.url("/there"))
    assert received(other_server)[0][0] == "GET /there HTTP/1.1"


async def test_fragment_carried_over(scripted_server: ScriptedServer) -> None:
    route(scripted_server, {"/a": redirect("/b"), "/c": redirect("/d#own")})
    async with aiohttp.ClientSession() as session:
        async with session.get(scripted_server.url("/a#keep")) as resp:
            assert resp.real_url == URL(scripted_server.url("/b#keep"))
            assert resp.url == URL(scripted_server.url("/b"))
        async with session.get(scripted_server.url("/c#old")) as resp:
            assert resp.real_url.fragment == "own"
    assert all(b"#" not in raw.split(b"\r\n", 1)[0] for raw in scripted_server.requests)


@pytest.mark.parametrize(
    ("requote", "target"), [(True, "/p~q/a%2Fb?x=A"), (False, "/p%7Eq/a%2fb?x=%41")]
)
async def test_requote_redirect_url(
    scripted_server: ScriptedServer, requote: bool, target: str
) -> None:
    route(scripted_server, {"/": redirect("/p%7Eq/a%2fb?x=%41")})
    async with aiohttp.ClientSession(requote_redirect_url=requote) as session:
        assert session.requote_redirect_url is requote
        async with session.get(scripted_server.url("/")) as resp:
            assert resp.status == 200
    assert received(scripted_server)[1][0] == f"GET {target} HTTP/1.1"


@pytest.mark.parametrize(
    "location",
    [
        "file:///etc/passwd",
        "data:text/plain,x",
        "ftp://127.0.0.1/x",
        "javascript:alert(1)",
        "gopher://127.0.0.1/",
        "ws://127.0.0.1/",
    ],
)
async def test_non_http_redirect(httpbin: Endpoint, location: str) -> None:
    params = {"url": location}
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.NonHttpUrlRedirectClientError) as info:
            await session.get(httpbin.url("/redirect-to"), params=params)
    assert isinstance(info.value, aiohttp.NonHttpUrlClientError)
    assert isinstance(info.value, aiohttp.RedirectClientError)
    assert location in str(info.value)


async def test_two_different_locations_refused(scripted_server: ScriptedServer) -> None:
    two = http_response(302, headers=[("Location", "/a"), ("Location", "/b")])
    route(scripted_server, {"/": two})
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.InvalidUrlRedirectClientError):
            await session.get(scripted_server.url("/"))
    assert len(scripted_server.requests) == 1


async def test_repeated_identical_location_followed(scripted_server: ScriptedServer) -> None:
    same = http_response(302, headers=[("Location", "/a"), ("Location", "/a")])
    route(scripted_server, {"/": same})
    async with aiohttp.ClientSession() as session:
        async with session.get(scripted_server.url("/")) as resp:
            assert resp.url.path == "/a"


@pytest.mark.parametrize("location", ["/a\tb", "/a b", "http://127.0.0.1:1 /x"])
async def test_location_with_invalid_characters(
    scripted_server: ScriptedServer, location: str
) -> None:
    route(scripted_server, {"/": redirect(location)})
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.InvalidUrlRedirectClientError) as info:
            await session.get(scripted_server.url("/"))
    assert isinstance(info.value, aiohttp.InvalidURL)
    assert len(scripted_server.requests) == 1


async def test_location_with_raw_cr_rejected_by_parser(scripted_server: ScriptedServer) -> None:
    # llhttp refuses a bare CR in a field value: the response itself is invalid.
    raw = b"HTTP/1.1 302 Found\r\nLocation: /a\rX-Injected: 1\r\nContent-Length: 0\r\n\r\n"
    route(scripted_server, {"/": raw})
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientResponseError) as info:
            await session.get(scripted_server.url("/"))
    assert info.value.status == 400
    assert len(scripted_server.requests) == 1


@pytest.mark.parametrize("location", ["/a\rb", "/a\nb", "/a\x00b", "/a\r\nX: y"])
def test_resolve_location_refuses_control_characters(location: str) -> None:
    with pytest.raises(aiohttp.InvalidUrlRedirectClientError):
        resolve_location(URL("http://h.test/"), [location], requote=True, allowed_schemes=HTTP)


# -- credentials and origins (security.md RED-01/02) -------------------------------------------

CREDENTIALS = [
    ("Authorization", "Bearer one"),
    ("Authorization", "Bearer two"),
    ("Cookie", "c=1"),
    ("Cookie", "c=2"),
    ("Proxy-Authorization", "Basic p1"),
    ("Proxy-Authorization", "Basic p2"),
    ("X-Custom", "kept"),
]


async def test_credentials_dropped_cross_origin(
    scripted_server: ScriptedServer, other_server: ScriptedServer
) -> None:
    route(scripted_server, {"/start": redirect(other_server.url("/landing"))})
    async with aiohttp.ClientSession() as session:
        async with session.get(scripted_server.url("/start"), headers=CREDENTIALS) as resp:
            assert resp.url == URL(other_server.url("/landing"))
    _, first, _ = received(scripted_server)[0]
    assert first.getall("Authorization") == ["Bearer one", "Bearer two"]
    assert first.getall("Cookie") == ["c=1", "c=2"]
    assert first.getall("Proxy-Authorization") == ["Basic p1", "Basic p2"]
    _, landed, _ = received(other_server)[0]
    for name in ("Authorization", "Cookie", "Proxy-Authorization"):
        assert name not in landed
    assert landed["X-Custom"] == "kept"  # other headers follow, as aiohttp


async def test_credentials_kept_same_origin(scripted_server: ScriptedServer) -> None:
    route(scripted_server, {"/start": redirect(scripted_server.url("/next"))})
    async with aiohttp.ClientSession() as session:
        async with session.get(scripted_server.url("/start"), headers=CREDENTIALS) as resp:
            assert resp.url.path == "/next"
    (_, first, _), (_, second, _) = received(scripted_server)
    for name in ("Authorization", "Cookie", "Proxy-Authorization", "X-Custom"):
        assert second.getall(name) == first.getall(name)
    assert len(second.getall("Authorization")) == 2


async def test_credentials_absent_on_every_later_hop(
    scripted_server: ScriptedServer, other_server: ScriptedServer
) -> None:
    route(scripted_server, {"/a": redirect(other_server.url("/b1"))})
    route(other_server, {"/b1": redirect("/b2")})
    auth = aiohttp.BasicAuth("user", "secret")
    async with aiohttp.ClientSession() as session:
        async with session.get(
            scripted_server.url("/a"), headers=CREDENTIALS, auth=None, cookies={"req": "1"}
        ) as resp:
            assert resp.url.path == "/b2"
        async with session.get(scripted_server.url("/a"), auth=auth) as resp:
            assert resp.url.path == "/b2"
    start = received(scripted_server)
    assert start[1][1]["Authorization"].startswith("Basic ")
    hops = received(other_server)
    assert [line for line, _, _ in hops] == ["GET /b1 HTTP/1.1", "GET /b2 HTTP/1.1"] * 2
    for _, headers, _ in hops:
        assert not {"Authorization", "Cookie", "Proxy-Authorization"} & set(headers)


async def test_jar_cookies_still_sent_to_new_origin(
    scripted_server: ScriptedServer, other_server: ScriptedServer
) -> None:
    route(scripted_server, {"/start": redirect(other_server.url("/landing"))})
    async with aiohttp.ClientSession(cookies={"jar": "1"}) as session:
        async with session.get(
            scripted_server.url("/start"), cookies={"req": "2"}, headers={"Cookie": "h=3"}
        ) as resp:
            assert resp.status == 200
    _, first, _ = received(scripted_server)[0]
    assert set(first["Cookie"].split("; ")) == {"h=3", "jar=1", "req=2"}
    _, landed, _ = received(other_server)[0]
    assert landed.getall("Cookie") == ["jar=1"]  # the jar is filtered for the new URL


async def test_https_to_http_downgrade_is_cross_origin(
    httpbin_secure: Endpoint, ssl_client_context: ssl.SSLContext, scripted_server: ScriptedServer
) -> None:
    params = {"url": scripted_server.url("/plain")}
    async with aiohttp.ClientSession() as session:
        async with session.get(
            httpbin_secure.url("/redirect-to"),
            params=params,
            headers={"Authorization": "Bearer s"},
            ssl=ssl_client_context,
        ) as resp:
            assert resp.url == URL(scripted_server.url("/plain"))
            assert resp.history[0].url.scheme == "https"
    _, headers, _ = received(scripted_server)[0]
    assert "Authorization" not in headers


async def test_session_auth_only_to_base_url_origin(
    scripted_server: ScriptedServer, other_server: ScriptedServer
) -> None:
    route(scripted_server, {"/api/start": redirect(other_server.url("/landing"))})
    auth = aiohttp.BasicAuth("user", "secret")
    async with aiohttp.ClientSession(base_url=scripted_server.url("/api/"), auth=auth) as session:
        async with session.get("start") as resp:
            assert resp.url == URL(other_server.url("/landing"))
        async with session.get(other_server.url("/direct")) as resp:
            assert resp.status == 200
    _, at_base, _ = received(scripted_server)[0]
    assert at_base["Authorization"] == auth.encode()
    for _, headers, _ in received(other_server):
        assert "Authorization" not in headers


async def test_session_auth_dropped_on_cross_origin_redirect(
    scripted_server: ScriptedServer, other_server: ScriptedServer
) -> None:
    route(scripted_server, {"/start": redirect(other_server.url("/landing"))})
    auth = aiohttp.BasicAuth("user", "secret")
    async with aiohttp.ClientSession(auth=auth) as session:
        async with session.get(scripted_server.url("/start")) as resp:
            assert resp.status == 200
    assert received(scripted_server)[0][1]["Authorization"] == auth.encode()
    assert "Authorization" not in received(other_server)[0][1]
