"""RED-01..08: redirects, and the credentials that must not follow them.

Host names (``a.test``, ``b.test``...) all resolve to 127.0.0.1 through a test
resolver, so "another host" is a real origin change with real cookies.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import TLSCertificates, http_response
from servers.faults import FaultServer, request_path
from servers.names import LoopbackNames
from servers.proxy import RecordingProxy, parse_head
from yarl import URL

from client import (
    ClientConnectorError,
    ClientPayloadError,
    ClientResponseError,
    ClientSession,
    InvalidUrlRedirectClientError,
    NonHttpUrlRedirectClientError,
    TCPConnector,
    TooManyRedirects,
)
from jobs import SaveMode, iter_requests, job_from_urls
from runner.fetch import FetchSettings, fetch_attempt

from .conftest import QUICK
from .support import assert_pool_healthy, fetch, protocol_cause

NAMES = ("a.test", "b.test", "evil.test", "a.test.evil.test", "localhost", "example.com")
CREDENTIALS = [
    ("Authorization", "Bearer T1"),
    ("Authorization", "Bearer T2"),
    ("Cookie", "user=c1"),
    ("Cookie", "user=c2"),
    ("Proxy-Authorization", "Basic cHJveHk6cA=="),
    ("Proxy-Authorization", "Basic cHJveHk6cQ=="),
]
SECRETS = (b"Bearer", b"user=c", b"cHJveHk6")


def redirect_to(location: str, status: int = 302) -> Callable[[bytes], bytes]:
    return lambda _: http_response(status, headers=[("Location", location)])


def header_values(raw: bytes, name: str) -> list[str]:
    return parse_head(raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n").get_all(name)


def request_at(server: FaultServer, path: str) -> bytes:
    [raw] = [r for r in server.requests if request_path(r) == path]
    return raw


@pytest.fixture
def names() -> LoopbackNames:
    return LoopbackNames(*NAMES)


@pytest.fixture
async def named_session(
    names: LoopbackNames, ssl_client_context: ssl.SSLContext
) -> AsyncIterator[ClientSession]:
    """A session whose connector resolves :data:`NAMES` and trusts the test CA."""
    connector = TCPConnector(resolver=names, ssl=ssl_client_context)
    async with ClientSession(connector=connector, timeout=QUICK) as session:
        yield session


@pytest.fixture
async def tls_server(tls_certificates: TLSCertificates) -> AsyncIterator[FaultServer]:
    server = FaultServer(ssl=tls_certificates.server_context("valid"))  # 127.0.0.1, localhost
    await server.start()
    yield server
    await server.close()


# -- RED-01 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("change", ["host", "port", "https-to-http"])
async def test_RED_01_credentials_stripped_on_origin_change(
    named_session: ClientSession,
    fault_server: FaultServer,
    other_server: FaultServer,
    tls_server: FaultServer,
    change: str,
) -> None:
    a, b = fault_server.port, other_server.port
    start, target, landing = {
        "host": (f"http://a.test:{a}/go", f"http://b.test:{a}/landed", fault_server),
        "port": (f"http://a.test:{a}/go", f"http://a.test:{b}/landed", other_server),
        "https-to-http": (
            f"https://localhost:{tls_server.port}/go", f"http://localhost:{a}/landed", fault_server
        ),
    }[change]  # fmt: skip
    first = tls_server if change == "https-to-http" else fault_server
    first.routes({"/go": redirect_to(target)})
    jar = named_session.cookie_jar
    jar.update_cookies({"jar_new": "1"}, URL(target))  # the new origin's own cookie
    async with named_session.get(start, headers=CREDENTIALS) as resp:
        assert resp.status == 200
    landed = request_at(landing, "/landed")
    for secret in SECRETS:
        assert secret not in landed
    assert header_values(landed, "Cookie") == ["jar_new=1"]  # re-derived from the jar
    # The first hop carried every instance.
    hop = request_at(first, "/go")
    assert header_values(hop, "Authorization") == ["Bearer T1", "Bearer T2"]


async def test_RED_01_same_origin_redirect_keeps_credentials(
    named_session: ClientSession, fault_server: FaultServer
) -> None:
    fault_server.routes({"/go": redirect_to("/landed")})
    await fetch(named_session, f"http://a.test:{fault_server.port}/go", headers=CREDENTIALS)
    landed = request_at(fault_server, "/landed")
    assert header_values(landed, "Authorization") == ["Bearer T1", "Bearer T2"]
    assert header_values(landed, "Proxy-Authorization") == [v for n, v in CREDENTIALS[4:]]


# -- RED-02 ----------------------------------------------------------------------------------


async def test_RED_02_stripped_for_the_rest_of_the_chain(
    named_session: ClientSession, fault_server: FaultServer
) -> None:
    port = fault_server.port
    fault_server.routes({"/a": redirect_to(f"http://b.test:{port}/1"), "/1": redirect_to("/2")})
    auth = [("Authorization", "Bearer T1")]
    await fetch(named_session, f"http://a.test:{port}/a", headers=auth)
    assert header_values(request_at(fault_server, "/a"), "Authorization") == ["Bearer T1"]
    for path in ("/1", "/2"):
        assert b"Bearer" not in request_at(fault_server, path)
        assert header_values(request_at(fault_server, path), "Host") == [f"b.test:{port}"]


# -- RED-03 ----------------------------------------------------------------------------------

CONFUSING = [
    "https://a.test.evil.test:{port}/",
    "http://[::1%25.a.test]:{port}/",
    "http://a.test@evil.test:{port}/",
    "http://evil.test:{port}/#@a.test",
    "http://a.test%2F@evil.test:{port}/",
]


@pytest.mark.parametrize("location", CONFUSING)
async def test_RED_03_origin_confusion_in_location(
    named_session: ClientSession,
    names: LoopbackNames,
    fault_server: FaultServer,
    tls_server: FaultServer,
    location: str,
) -> None:
    port = tls_server.port if location.startswith("https") else fault_server.port
    fault_server.routes({"/go": redirect_to(location.format(port=port))})
    auth = [("Authorization", "Bearer T1")]
    with contextlib.suppress(InvalidUrlRedirectClientError, ClientConnectorError):
        # Followed (to the parsed host), refused, or unreachable (a zone-id literal).
        await fetch(named_session, f"http://a.test:{fault_server.port}/go", headers=auth)
    landed = [*fault_server.requests[1:], *tls_server.requests]
    for raw in landed:  # whatever was reached is another origin: no credentials
        assert b"Bearer" not in raw
        host = header_values(raw, "Host")[0]
        assert not host.startswith("a.test:")
    assert names.queries[0] == "a.test"
    assert set(names.queries) <= {"a.test", "evil.test", "a.test.evil.test"}


# -- RED-04 ----------------------------------------------------------------------------------


@pytest.fixture
def netrc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "netrc"
    path.write_text(
        "machine example.com login ex-user password ex-secret\n"
        "machine 127.0.0.1 login lo-user password lo-secret\n"
    )
    path.chmod(0o600)
    monkeypatch.setenv("NETRC", str(path))
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    return path


@pytest.fixture
async def proxy() -> AsyncIterator[RecordingProxy]:
    server = await RecordingProxy().start()
    yield server
    await server.close()


@pytest.mark.usefixtures("netrc")
async def test_RED_04_netrc_keyed_by_the_parsed_host(
    fault_server: FaultServer, proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = fault_server.port
    confusing = f"http://example.com:@127.0.0.1:{port}/confusing"
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    # Without trust_env: neither netrc nor the env proxy.
    async with ClientSession(timeout=QUICK) as session:
        await fetch(session, f"http://127.0.0.1:{port}/plain")
    assert proxy.heads == []
    assert header_values(request_at(fault_server, "/plain"), "Authorization") == []
    # With it (and the proxy bypassed): the loopback entry, never example.com's.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    async with ClientSession(timeout=QUICK, trust_env=True) as session:
        await fetch(session, f"http://127.0.0.1:{port}/trusted")
        await fetch(session, confusing)
    assert proxy.heads == []
    [trusted] = header_values(request_at(fault_server, "/trusted"), "Authorization")
    assert base64.b64decode(trusted.split()[1]) == b"lo-user:lo-secret"
    [own] = header_values(request_at(fault_server, "/confusing"), "Authorization")
    assert base64.b64decode(own.split()[1]) == b"example.com:"  # the URL's own userinfo
    wire = b"".join(fault_server.requests)
    assert b"ex-secret" not in wire
    assert base64.b64encode(b"ex-user:ex-secret") not in wire


# -- RED-05 ----------------------------------------------------------------------------------

_opened: list[str] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _opened is not None and event == "open" and args and str(args[0]) == "/etc/passwd":
        _opened.append(str(args[0]))


sys.addaudithook(_audit)


@pytest.fixture
def opened() -> Iterator[list[str]]:
    """Paths of interest opened while the test runs (an audit hook)."""
    global _opened
    _opened = []
    yield _opened
    _opened = None


@pytest.mark.parametrize(
    "location",
    ["file:///etc/passwd", "data:text/plain,x", "ftp://h/", "gopher://h/", "ws://h/",
     "javascript:x", "FILE:///etc/passwd"],
)  # fmt: skip
async def test_RED_05_redirect_to_non_http_scheme(
    session: ClientSession, fault_server: FaultServer, opened: list[str], location: str
) -> None:
    fault_server.routes({"/go": redirect_to(location)})
    with pytest.raises(NonHttpUrlRedirectClientError):
        await fetch(session, fault_server.url("/go"))
    assert opened == []
    assert len(fault_server.requests) == 1
    await assert_pool_healthy(session, fault_server, closed=(), fresh=False)


# -- RED-06 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["a-b-a-loop", "1000-hops"])
async def test_RED_06_loops_and_long_chains(
    session: ClientSession, fault_server: FaultServer, shape: str
) -> None:
    if shape == "a-b-a-loop":
        routes = {"/a": redirect_to("/b"), "/b": redirect_to("/a")}
    else:
        routes = {f"/h{n}": redirect_to(f"/h{n + 1}") for n in range(1000)}
    start = "/a" if shape == "a-b-a-loop" else "/h0"
    fault_server.routes(routes)
    with pytest.raises(TooManyRedirects) as info:
        await fetch(session, fault_server.url(start))
    history = info.value.history
    assert len(history) == 11  # 10 redirects followed, the 11th refused
    assert all(resp.status == 302 for resp in history)
    assert len(fault_server.requests) == 11
    # The runner records the whole chain.
    spec = next(iter_requests(job_from_urls([fault_server.url(start)])))
    attempt = await fetch_attempt(session, spec, FetchSettings(None, SaveMode.NEVER, None))
    assert attempt.error is not None
    assert attempt.error.kind == "too_many_redirects"
    assert [url for _, url in attempt.redirects] == [str(r.url) for r in history]
    await assert_pool_healthy(session, fault_server, closed=(), fresh=False)


# -- RED-07 ----------------------------------------------------------------------------------


async def test_RED_07_method_and_body_on_redirect(
    session: ClientSession, fault_server: FaultServer
) -> None:
    fault_server.routes(
        {"/303": redirect_to("/after303", 303), "/307": redirect_to("/after307", 307)}
    )
    body = b'{"k": "v"}'
    headers = {"Content-Type": "application/json"}
    await fetch(session, fault_server.url("/303"), "POST", data=body, headers=headers)
    after = request_at(fault_server, "/after303")
    assert after.startswith(b"GET /after303 ")
    for name in ("Content-Length", "Content-Type", "Transfer-Encoding"):
        assert header_values(after, name) == []
    assert after.endswith(b"\r\n\r\n")  # no body
    await fetch(session, fault_server.url("/307"), "POST", data=body, headers=headers)
    after = request_at(fault_server, "/after307")
    assert after.startswith(b"POST /after307 ")
    assert after.endswith(b"\r\n\r\n" + body)

    async def stream() -> AsyncIterator[bytes]:
        yield b"once"

    sent = len(fault_server.requests)
    with pytest.raises(ClientPayloadError, match="consumed"):
        await fetch(session, fault_server.url("/307"), "POST", data=stream())
    assert len(fault_server.requests) == sent + 1  # no second, empty-bodied request
    assert fault_server.requests[-1].endswith(b"4\r\nonce\r\n0\r\n\r\n")


# -- RED-08 ----------------------------------------------------------------------------------

BAD_LOCATIONS = {
    "two-different": [("Location", "/one"), ("Location", "/two")],
    "space": [("Location", "/a b c")],
    "space-in-host": [("Location", "http://a .test/")],
    "invalid-idna-c1": [("Location", "http://\x80.test/")],
    "invalid-idna-replacement": [("Location", "http://x\ufffd.test/")],
    "invalid-idna-zwj": [("Location", "http://ab\u200d.test/")],
}


def redirect_with(headers: list[tuple[str, str]]) -> Callable[[bytes], bytes]:
    lines = "".join(f"{n}: {v}\r\n" for n, v in headers)
    raw = ("HTTP/1.1 302 Found\r\n" + lines + "Content-Length: 0\r\n\r\n").encode()
    return lambda _: raw


@pytest.mark.parametrize("headers", BAD_LOCATIONS.values(), ids=BAD_LOCATIONS.keys())
async def test_RED_08_malformed_location(
    session: ClientSession, fault_server: FaultServer, headers: list[tuple[str, str]]
) -> None:
    fault_server.routes({"/go": redirect_with(headers)})
    with pytest.raises(InvalidUrlRedirectClientError):
        await fetch(session, fault_server.url("/go"))
    assert len(fault_server.requests) == 1
    await assert_pool_healthy(session, fault_server, closed=(), fresh=False)


@pytest.mark.parametrize("raw", [b"/a\rX-Inj: 1", b"/a\x00b"], ids=["bare-cr", "nul"])
async def test_RED_08_control_bytes_in_location(
    session: ClientSession, fault_server: FaultServer, raw: bytes
) -> None:
    # Such a field never parses: a protocol error, before any redirect logic.
    wire = b"HTTP/1.1 302 Found\r\nLocation: " + raw + b"\r\nContent-Length: 0\r\n\r\n"
    fault_server.routes({"/go": lambda _: wire})
    with pytest.raises(ClientResponseError) as info:
        await fetch(session, fault_server.url("/go"))
    protocol_cause(info.value)
    assert len(fault_server.requests) == 1
    await asyncio.sleep(0)
    await assert_pool_healthy(session, fault_server, closed=(), fresh=False)
