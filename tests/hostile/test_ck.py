"""CK-01..04: cookies - public suffixes, IP hosts, domain/path/Secure rules, floods.

Host names resolve to 127.0.0.1 through a test resolver, so the jar sees real
names (``x.co.uk``, ``ample.test``...) while every byte stays on loopback.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from servers import TLSCertificates, http_response
from servers.faults import FaultServer, request_path
from servers.names import LoopbackNames
from servers.proxy import parse_head
from yarl import URL

from client import ClientSession, CookieJar, TCPConnector
from client.cookie_parse import MAX_COOKIE_HEADER_OCTETS, MAX_COOKIES_PER_HEADER

from .conftest import QUICK
from .support import assert_protocol_error, fetch

NAMES = ("x.co.uk", "y.co.uk", "a.example.com", "b.example.org", "ample.test",
         "example.test", "localhost")  # fmt: skip


def set_cookies(*values: str) -> Callable[[bytes], bytes]:
    return lambda _: http_response(200, b"set", headers=[("Set-Cookie", v) for v in values])


def cookies_sent(server: FaultServer, path: str) -> list[str]:
    """The Cookie header values of the (last) request for ``path``."""
    raws = [r for r in server.requests if request_path(r) == path]
    return parse_head(raws[-1].split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n").get_all("Cookie")


@pytest.fixture
async def jar_session(ssl_client_context: ssl.SSLContext) -> AsyncIterator[ClientSession]:
    connector = TCPConnector(resolver=LoopbackNames(*NAMES), ssl=ssl_client_context)
    async with ClientSession(connector=connector, timeout=QUICK) as session:
        yield session


# -- CK-01 ----------------------------------------------------------------------------------


async def test_CK_01_public_suffix_cookies(
    jar_session: ClientSession, fault_server: FaultServer
) -> None:
    port = fault_server.port
    fault_server.routes(
        {
            "/set": set_cookies(
                "a=1; Domain=co.uk", "b=1; Domain=CO.UK", "c=1; Domain=co.uk.",
                "d=1; Domain=com", "e=1; Domain=uk", "own=1; Domain=x.co.uk",
            ),
            "/site": set_cookies("site=a; Domain=example.com"),
        }
    )  # fmt: skip
    await fetch(jar_session, f"http://x.co.uk:{port}/set")
    assert sorted(c.key for c in jar_session.cookie_jar) == ["own"]
    await fetch(jar_session, f"http://y.co.uk:{port}/next")
    assert cookies_sent(fault_server, "/next") == []
    await fetch(jar_session, f"http://x.co.uk:{port}/next")
    assert cookies_sent(fault_server, "/next") == ["own=1"]
    # One shared jar (as in a runner session): site A's cookie never goes to site B.
    await fetch(jar_session, f"http://a.example.com:{port}/site")
    await fetch(jar_session, f"http://b.example.org:{port}/other")
    assert cookies_sent(fault_server, "/other") == []


# -- CK-02 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("unsafe", [False, True], ids=["default-jar", "unsafe-jar"])
async def test_CK_02_ip_host_cookies(fault_server: FaultServer, unsafe: bool) -> None:
    fault_server.routes({"/set": set_cookies("dom=1; Domain=0.0.1", "host=1", "d2=1; Domain=.1")})
    jar = CookieJar(unsafe=unsafe)
    async with ClientSession(cookie_jar=jar, timeout=QUICK) as session:
        await fetch(session, fault_server.url("/set"))
        await fetch(session, fault_server.url("/next"))
    stored = sorted(c.key for c in jar)
    if not unsafe:
        assert stored == []  # the default jar ignores IP hosts altogether
        assert cookies_sent(fault_server, "/next") == []
        return
    assert stored == ["host"]  # Domain= on an IP host is refused; host-only stays
    assert cookies_sent(fault_server, "/next") == ["host=1"]
    assert len(jar.filter_cookies(URL("http://10.0.0.1/"))) == 0  # never domain-matched
    assert len(jar.filter_cookies(URL("http://127.0.0.2/"))) == 0


# -- CK-03 ----------------------------------------------------------------------------------


@pytest.fixture
async def tls_server(tls_certificates: TLSCertificates) -> AsyncIterator[FaultServer]:
    server = FaultServer(ssl=tls_certificates.server_context("valid"))
    await server.start()
    yield server
    await server.close()


async def test_CK_03_domain_path_and_secure_rules(
    jar_session: ClientSession, fault_server: FaultServer, tls_server: FaultServer
) -> None:
    port, tls = fault_server.port, tls_server.port
    fault_server.routes(
        {
            "/set": set_cookies("amp=1; Domain=ample.test", "p=1; Path=/foo"),
            "/foreign": set_cookies("evil=1; Domain=ample.test"),
            "/overwrite": set_cookies("s=evil", "s=evil2; Secure"),
        }
    )
    tls_server.routes({"/set": set_cookies("s=1; Secure; Path=/")})
    jar = jar_session.cookie_jar
    # Domain: a label-boundary match only.
    await fetch(jar_session, f"http://ample.test:{port}/set")
    await fetch(jar_session, f"http://example.test:{port}/foreign")  # not its domain
    await fetch(jar_session, f"http://example.test:{port}/x")
    assert cookies_sent(fault_server, "/x") == []
    assert "evil" not in {c.key for c in jar}
    # Path: "/foo" matches /foo and /foo/bar, never /foobar.
    for path, expected in (("/foo", ["p=1"]), ("/foo/bar", ["p=1"]), ("/foobar", [])):
        await fetch(jar_session, f"http://ample.test:{port}{path}")
        sent = cookies_sent(fault_server, path)
        assert [c for c in "; ".join(sent).split("; ") if c.startswith("p=")] == expected
    # Secure: set over https, never sent over http, never overwritten from http.
    await fetch(jar_session, f"https://localhost:{tls}/set")
    await fetch(jar_session, f"http://localhost:{port}/overwrite")
    await fetch(jar_session, f"http://localhost:{port}/plain")
    assert cookies_sent(fault_server, "/plain") == []
    await fetch(jar_session, f"https://localhost:{tls}/secure")
    assert cookies_sent(tls_server, "/secure") == ["s=1"]


# -- CK-04 ----------------------------------------------------------------------------------


def flood(request: bytes) -> bytes:
    """Answers ``/flood?i=N`` with 50 cookies named ``cN_0`` .. ``cN_49``."""
    i = int(parse_qs(urlsplit(request_path(request)).query)["i"][0])
    return set_cookies(*(f"c{i}_{k}=v{k}" for k in range(50)))(request)


async def test_CK_04_hostile_cookie_floods(
    jar_session: ClientSession, fault_server: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    port = fault_server.port
    backslashes = '"' + "\\" * 60_000 + '"'
    fault_server.routes(
        {
            "/ctl": set_cookies("a=b\x01", "c\x01=d", "ok=1", *[f"x{i}=\x7f" for i in range(20)]),
            "/quoted": set_cookies("q=" + backslashes),
            "/flood": flood,
        }
    )
    base = f"http://ample.test:{port}"
    # On the wire a CTL in a field fails the whole response before any cookie is read...
    await assert_protocol_error(jar_session, base + "/ctl")
    assert len(jar_session.cookie_jar) == 0
    # ...and the jar itself refuses CTL cookies, with one warning per response.
    bad = ["a=b\x01", "c\x01=d", "ok=1", *[f"x{i}=\x7f" for i in range(20)]]
    with caplog.at_level(logging.WARNING, logger="client.cookiejar"):
        jar_session.cookie_jar.update_cookies_from_headers(bad, URL(base))
    assert sorted(c.key for c in jar_session.cookie_jar) == ["ok"]
    assert len(caplog.records) == 1  # one line for 22 bad cookies
    caplog.clear()
    # A 60 KiB backslash-quoted value: linear parse, refused as over-long.
    started = time.perf_counter()
    await fetch(jar_session, base + "/quoted", max_field_size=65_000)
    assert time.perf_counter() - started < 0.5
    assert "q" not in {c.key for c in jar_session.cookie_jar}
    jar = CookieJar()
    started = time.perf_counter()
    jar.update_cookies_from_headers(["q=" + '"' + "\\" * 100_000 + '"'], URL("http://h.test/"))
    assert time.perf_counter() - started < 0.05
    assert len(jar) == 0
    caplog.clear()
    # 5,000 cookies from one site (100 responses x 50): jar and Cookie header capped.
    for i in range(100):
        await fetch(jar_session, f"{base}/flood?i={i}")
    assert len(jar_session.cookie_jar) <= 180
    await fetch(jar_session, base + "/after")
    [header] = cookies_sent(fault_server, "/after")
    assert len(header.encode()) <= MAX_COOKIE_HEADER_OCTETS
    assert header.count("; ") + 1 <= MAX_COOKIES_PER_HEADER
    assert len(caplog.records) <= 1
