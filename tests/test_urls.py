"""URLs on the wire: params, encoding, canonicalization, injection, invalid URLs.

The assertions are on the raw request line the scripted server received:
that is the only place where "not re-encoded" can be checked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from multidict import MultiDict
from servers import Endpoint, ScriptedServer
from yarl import URL

import client as aiohttp


async def request_line(server: ScriptedServer, url: Any, **kwargs: Any) -> str:
    """Send one GET and return the request line the server received."""
    async with aiohttp.ClientSession() as session:
        async with session.get(url, **kwargs) as resp:
            assert resp.status == 200
            await resp.read()
    return server.requests[-1].split(b"\r\n", 1)[0].decode("ascii")


# -- params --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "target"),
    [
        ({"a": "1", "b": "x y"}, "/p?a=1&b=x+y"),
        ({"n": 5, "f": 1.5}, "/p?n=5&f=1.5"),
        ([("a", "1"), ("a", "2"), ("b", "3")], "/p?a=1&a=2&b=3"),
        (MultiDict([("k", "v1"), ("k", "v2")]), "/p?k=v1&k=v2"),
        ({"plus": "1+2", "odd": " c/&=", "u": "é"}, "/p?plus=1%2B2&odd=+c/%26%3D&u=%C3%A9"),
    ],
)
async def test_params_encoded(scripted_server: ScriptedServer, params: Any, target: str) -> None:
    line = await request_line(scripted_server, scripted_server.url("/p"), params=params)
    assert line == f"GET {target} HTTP/1.1"


async def test_params_dict_seen_by_httpbin(httpbin: Endpoint) -> None:
    async with aiohttp.ClientSession() as session:
        params = MultiDict([("a", "1"), ("a", "2"), ("b", "x y&z")])
        async with session.get(httpbin.url("/get"), params=params) as resp:
            args = (await resp.json())["args"]
    assert args == {"a": ["1", "2"], "b": "x y&z"}


async def test_params_str_is_sent_as_is(scripted_server: ScriptedServer) -> None:
    # aiohttp 3.14 would send b=%2520c; a str is taken as an encoded query.
    line = await request_line(scripted_server, scripted_server.url("/p"), params="a=1+2&b=%20c")
    assert line == "GET /p?a=1+2&b=%20c HTTP/1.1"


async def test_params_appended_to_existing_query(scripted_server: ScriptedServer) -> None:
    url = scripted_server.url("/p?x=1")
    assert await request_line(scripted_server, url, params={"y": "2"}) == "GET /p?x=1&y=2 HTTP/1.1"
    assert await request_line(scripted_server, url, params="y=a+b") == "GET /p?x=1&y=a+b HTTP/1.1"


async def test_params_keep_fragment_off_the_wire(scripted_server: ScriptedServer) -> None:
    url = scripted_server.url("/p?x=1#frag")
    async with aiohttp.ClientSession() as session:
        async with session.get(url, params="y=2") as resp:
            await resp.read()
    assert scripted_server.requests[0].startswith(b"GET /p?x=1&y=2 HTTP/1.1\r\n")
    assert resp.real_url.fragment == "frag"
    assert resp.url == URL(scripted_server.url("/p?x=1&y=2"))


async def test_encoded_url_is_not_touched(scripted_server: ScriptedServer) -> None:
    url = URL(scripted_server.url("/p%2Fq/%7Euser?x=%7E+&y=%2b"), encoded=True)
    line = await request_line(scripted_server, url)
    assert line == "GET /p%2Fq/%7Euser?x=%7E+&y=%2b HTTP/1.1"


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("/pä th?q=a b&r=ü~%7E", "/p%C3%A4%20th?q=a+b&r=%C3%BC~~"),  # quoted, %7E normalised
        ("/a/../b/./c", "/b/c"),  # dot segments removed
        ("", "/"),  # empty path is "/"
        ("?only=query", "/?only=query"),
        ("/caf%c3%a9", "/caf%C3%A9"),  # percent-encodings upper-cased
    ],
)
async def test_str_urls_are_canonicalized(
    scripted_server: ScriptedServer, path: str, target: str
) -> None:
    line = await request_line(scripted_server, scripted_server.base + path)
    assert line == f"GET {target} HTTP/1.1"


async def test_request_info_holds_the_request_url(scripted_server: ScriptedServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(scripted_server.url("/a b"), params={"q": "1"}) as resp:
            info = resp.request_info
    assert info.url == URL(scripted_server.url("/a%20b?q=1"))
    assert info.method == "GET"
    assert info.headers["Host"] == f"127.0.0.1:{scripted_server.port}"


# -- injection: refused before any connection ----------------------------------------

Call = Callable[[aiohttp.ClientSession, str], Awaitable[Any]]


def _url_suffix(suffix: str) -> Call:
    return lambda s, base: s.get(base + suffix)


def _params(params: Any) -> Call:
    return lambda s, base: s.get(base + "/", params=params)


def _method(method: str) -> Call:
    return lambda s, base: s.request(method, base + "/")


def _headers(headers: Any) -> Call:
    return lambda s, base: s.get(base + "/", headers=headers)


INJECTIONS: dict[str, Call] = {
    "url-crlf-path": _url_suffix("/a\r\nX-Injected: 1"),
    "url-lf-query": _url_suffix("/a?q=1\nX-Injected: 1"),
    "url-nul": _url_suffix("/a\x00b"),
    "url-cr-only": _url_suffix("/a\rb"),
    "url-crlf-host": lambda s, base: s.get("http://127.0.0.1\r\nX: y/"),
    "params-value-crlf": _params({"q": "1\r\nX-Injected: 1"}),
    "params-name-lf": _params([("q\n", "1")]),
    "params-nul": _params(MultiDict([("q", "a\x00")])),
    "params-str-crlf": _params("q=1\r\nX-Injected: 1"),
    "method-crlf": _method("GET / HTTP/1.1\r\nX-Injected: 1\r\n\r\nGET"),
    "method-space": _method("GE T"),
    "method-nul": _method("GET\x00"),
    "method-empty": _method(""),
    "header-value-crlf": _headers({"X-A": "v\r\nX-Injected: 1"}),
    "header-value-lf": _headers({"X-A": "v\nX-Injected: 1"}),
    "header-value-nul": _headers({"X-A": "v\x00"}),
    "header-value-ctl": _headers({"X-A": "v\x7f"}),
    "header-name-crlf": _headers({"X-A\r\nX-Injected": "1"}),
    "header-name-colon": _headers({"X-A:": "1"}),
    "header-name-space": _headers({"X A": "1"}),
    "header-name-empty": _headers({"": "1"}),
    "host-override-crlf": _headers({"Host": "a.test\r\nX-Injected: 1"}),
    "cookie-header-crlf": _headers({"Cookie": "a=1\r\nX-Injected: 1"}),
    "url-userinfo-crlf": lambda s, base: s.get(base.replace("//", "//u%0d%0aX:p@") + "/"),
    "basic-auth-crlf": lambda s, base: s.get(base + "/", auth=aiohttp.BasicAuth("u\r\nX: y")),
}


@pytest.mark.parametrize("name", sorted(INJECTIONS))
async def test_injection_refused_before_connecting(
    scripted_server: ScriptedServer, name: str
) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ValueError):  # InvalidURL is a ValueError too
            await INJECTIONS[name](session, scripted_server.base)
    assert scripted_server.accepted == 0


@pytest.mark.parametrize(
    ("login", "password"),
    [("u\r\nX: y", ""), ("u", "p\nX: y"), ("u\x00", "p"), ("a:b", "p")],
)
def test_basic_auth_refuses_unsafe_credentials(login: str, password: str) -> None:
    with pytest.raises(ValueError):
        aiohttp.BasicAuth(login, password)


def test_session_headers_checked_at_construction() -> None:
    with pytest.raises(ValueError, match="header"):
        aiohttp.ClientSession(headers={"X-A": "1\r\nX-Injected: 1"})


async def test_header_mutated_after_build_still_checked_at_send(
    scripted_server: ScriptedServer,
) -> None:
    # Defaults stay mutable: a bad value added later is caught when serialized.
    async with aiohttp.ClientSession() as session:
        session.headers["X-Late"] = "v\r\nX-Injected: 1"
        with pytest.raises(ValueError):
            await session.get(scripted_server.url("/"))
    assert all(b"X-Injected" not in raw for raw in scripted_server.requests)


# -- invalid and non-HTTP URLs ---------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["/relative", "relative/path", "http://", "http:///path", "", "//127.0.0.1:9/x"]
)
async def test_invalid_url(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.InvalidURL) as info:
            await session.get(url)
    assert isinstance(info.value, aiohttp.InvalidUrlClientError)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/file",
        "file:///etc/passwd",
        "gopher://127.0.0.1/",
        "mailto:a@b.test",
        "data:text/plain,x",
        "javascript:alert(1)",
    ],
)
async def test_non_http_scheme(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.NonHttpUrlClientError) as info:
            await session.get(url)
    assert str(info.value.url) == url
    assert not isinstance(info.value, aiohttp.RedirectClientError)


async def test_relative_url_ok_with_base_url(scripted_server: ScriptedServer) -> None:
    async with aiohttp.ClientSession(base_url=scripted_server.url("/api/")) as session:
        async with session.get("items?id=3") as resp:
            await resp.read()
    assert scripted_server.requests[0].startswith(b"GET /api/items?id=3 HTTP/1.1\r\n")


@pytest.mark.parametrize("host", ["2130706433", "127.1", "0x7f.0.0.1", "0177.0.0.1"])
async def test_non_canonical_ipv4_hosts_refused(host: str) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.InvalidURL):
            await session.get(f"http://{host}:9/")
