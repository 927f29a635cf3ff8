"""REQ-01..04: requests we send never carry injected lines.

"Wire" is what the fault server (or the recording proxy) received.  Every
refusal must happen before the request's bytes leave: the server sees no
request, and the session stays usable.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from servers import LOOPBACK
from servers.faults import FaultServer
from servers.names import LoopbackNames
from servers.proxy import RecordingProxy
from yarl import URL

from client import (
    BasicAuth,
    ClientSession,
    FormData,
    HttpVersion,
    InvalidURL,
    MultipartWriter,
    TCPConnector,
)

from .conftest import QUICK
from .support import assert_pool_healthy, fetch

# METHOD SP target SP HTTP/1.x, visible ASCII only (RFC 9112 §3).
REQUEST_LINE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [\x21-\x7e]+ HTTP/1\.[01]")
CTL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def assert_clean_wire(raw: bytes) -> None:
    """One request line of exactly three tokens; no CTL inside any line."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    lines = head.split(b"\r\n")
    assert REQUEST_LINE.fullmatch(lines[0]), lines[0]
    for line in lines:
        assert CTL.search(line) is None, line
        assert b"X-Inj" not in line, line
        assert b"Set-Cookie" not in line, line


@pytest.fixture
async def proxy() -> AsyncIterator[RecordingProxy]:
    server = await RecordingProxy().start()
    yield server
    await server.close()


# -- REQ-01 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "version"),
    [
        ("GET / HTTP/1.1\r\nX: y", HttpVersion(1, 1)),
        ("GE T", HttpVersion(1, 1)),
        ("GET\x00", HttpVersion(1, 1)),
        ("", HttpVersion(1, 1)),
        ("GET", HttpVersion(1, 2)),
        ("GET", HttpVersion(2, 0)),
        ("GET", HttpVersion(0, 9)),
        ("GET", HttpVersion("1\r\nX: y", 1)),  # type: ignore[arg-type]
    ],
    ids=["crlf", "space", "nul", "empty", "1.2", "2.0", "0.9", "crlf-version"],
)
async def test_REQ_01_method_and_version(
    fault_server: FaultServer, method: str, version: HttpVersion
) -> None:
    with pytest.raises(ValueError):  # the session or the request refuses
        async with ClientSession(version=version, timeout=QUICK) as session:
            await fetch(session, fault_server.url(), method)
    assert fault_server.accepted == 0  # refused before any connect
    async with ClientSession(timeout=QUICK) as session:
        await assert_pool_healthy(session, fault_server, closed=())


# -- REQ-02 ----------------------------------------------------------------------------------

URLS: dict[str, tuple[str, Any]] = {
    "crlf-in-query": ("/p?q=1 HTTP/1.1\r\nX-Inj: 1", None),
    "lf-in-path": ("/a\nX-Inj: 1", None),
    "nul-in-path": ("/a\x00b", None),
    "tab-in-path": ("/a\tb", None),
    "del-in-path": ("/a\x7fb", None),
    "ctl-01": ("/a\x01b", None),
    "space-in-path": ("/a b HTTP/1.1", None),
    "space-in-query": ("/?q=a b", None),
    "non-ascii": ("/é?q=ü", None),
    "params-crlf": ("/", {"a": "x\r\nX-Inj: 1"}),
    "params-key-crlf": ("/", {"a\r\nX-Inj: 1": "x"}),
    "params-nul": ("/", [("a", "x\x00y")]),
    "params-space": ("/", {"a": "x y HTTP/1.1"}),
    "params-str-crlf": ("/", "a=x\r\nX-Inj: 1"),
    "params-str-space": ("/", "a=x HTTP/1.1"),
}


async def send_url(session: ClientSession, base: str, case: str, **kwargs: Any) -> bool:
    """Request the case's URL; True if it was sent, False if refused up front."""
    path, params = URLS[case]
    try:
        await fetch(session, base + path, params=params, **kwargs)
    except (InvalidURL, ValueError):
        return False
    return True


@pytest.mark.parametrize("case", URLS)
async def test_REQ_02_url_and_params_injection(
    session: ClientSession, fault_server: FaultServer, proxy: RecordingProxy, case: str
) -> None:
    # Direct: origin-form.
    if await send_url(session, fault_server.base, case):
        [raw] = fault_server.requests
        assert_clean_wire(raw)
    else:
        assert fault_server.requests == []
    # Through a plain-HTTP proxy: absolute-form (curl CVE-2014-8150).
    if await send_url(session, "http://origin.test", case, proxy=proxy.url):
        [head] = proxy.heads
        assert_clean_wire(head.raw)
        assert head.target.startswith("http://origin.test/")
    else:
        assert proxy.heads == []
    await assert_pool_healthy(session, fault_server, closed=(), fresh=False)


async def test_REQ_02_raw_yarl_url_is_checked_again_at_send(
    session: ClientSession, fault_server: FaultServer
) -> None:
    # encoded=True: yarl keeps the bytes as given, so only the serializer can refuse them.
    url = URL.build(
        scheme="http", host=LOOPBACK, port=fault_server.port, path="/a HTTP/1.1\r\nX-Inj: 1",
        encoded=True,
    )  # fmt: skip
    with pytest.raises((InvalidURL, ValueError)):
        await fetch(session, url)  # type: ignore[arg-type]
    assert fault_server.requests == []
    await assert_pool_healthy(session, fault_server, closed=())


# -- REQ-03 ----------------------------------------------------------------------------------

BAD_NAMES = ["X Y", "X:Y", "X\r\nY", "", "Ünï", "X\x00"]
BAD_VALUES = ["a\r\nSet-Cookie: x", "a\nX-Inj: 1", "a\rX-Inj: 1", "a\x00b", "a\x01b", "a\x1fb",
              "a\x7fb"]  # fmt: skip


async def refused(session: ClientSession, url: str, **kwargs: Any) -> None:
    with pytest.raises(ValueError):
        await fetch(session, url, method="POST", **kwargs)


async def refused_form(session: ClientSession, url: str, **field: str) -> None:
    """A form file field with ``field`` options is refused, when built or at send."""
    form = FormData()
    try:
        form.add_field("f", b"data", **field)
    except ValueError:
        return
    await refused(session, url, data=form)


def multipart_with_part_header(value: str) -> MultipartWriter:
    writer = MultipartWriter("form-data")
    writer.append("x", {"X-Part": value})
    return writer


@pytest.mark.parametrize("value", BAD_VALUES)
async def test_REQ_03_header_injection(
    session: ClientSession, fault_server: FaultServer, value: str
) -> None:
    url = fault_server.url()
    # At build: names and values of headers, Host override, cookies, credentials, parts.
    for name in BAD_NAMES:
        await refused(session, url, headers={name: "v"})
    await refused(session, url, headers={"X-Ok": value})
    await refused(session, url, headers={"Host": "h" + value})
    await refused(session, url, headers={"Cookie": "a=" + value})
    with pytest.raises(ValueError):
        BasicAuth("u" + value, "p")
    with pytest.raises(ValueError):
        BasicAuth("u", "p" + value)
    await refused_form(session, url, filename='a"' + value, content_type="text/plain")
    await refused_form(session, url, filename="a.txt", content_type="text/plain" + value)
    try:
        writer = multipart_with_part_header(value)
    except ValueError:
        pass  # refused as the part was added
    else:
        await refused(session, url, data=writer)
    # Again at send: headers stay mutable after the session was built.
    session.headers["X-Late"] = value
    await refused(session, url)
    del session.headers["X-Late"]
    assert fault_server.requests == []
    # A request cookie with a CTL is dropped (one warning), never sent.
    await fetch(session, url, cookies={"a": value, "b": "ok"})
    [raw] = fault_server.requests
    assert_clean_wire(raw)
    assert b"\r\nCookie: b=ok\r\n" in raw
    await assert_pool_healthy(session, fault_server, closed=(), fresh=False)


async def test_REQ_03_htab_is_allowed(session: ClientSession, fault_server: FaultServer) -> None:
    await fetch(session, fault_server.url(), headers={"X-Tab": "a\tb"})
    [raw] = fault_server.requests
    assert b"\r\nX-Tab: a\tb\r\n" in raw


async def test_REQ_03_multipart_filename_is_quoted(
    session: ClientSession, fault_server: FaultServer
) -> None:
    form = FormData()
    form.add_field("f", b"data", filename='a"b\\c;d.txt', content_type="text/plain")
    await fetch(session, fault_server.url(), method="POST", data=form)
    [raw] = fault_server.requests
    dispositions = [line for line in raw.split(b"\r\n") if b"filename" in line]
    assert len(dispositions) == 1
    # The quote, backslash and ";" are percent-encoded, never closing the quoted-string.
    assert dispositions[0].endswith(b'; filename="a%22b%5Cc%3Bd.txt"')


# -- REQ-04 ----------------------------------------------------------------------------------


async def test_REQ_04_userinfo_credentials(fault_server: FaultServer) -> None:
    names = LoopbackNames("host.test")
    connector = TCPConnector(resolver=names)
    async with ClientSession(connector=connector, timeout=QUICK) as session:
        port = fault_server.port
        await fetch(session, f"http://u:p%40x@host.test:{port}/one")
        await fetch(session, f"http://u:p@ss@host.test:{port}/two")  # split on the last "@"
    heads = [raw.split(b"\r\n\r\n")[0].decode("latin-1") for raw in fault_server.requests]
    assert len(heads) == 2
    one, two = heads
    # Percent-decoded exactly once, then Basic-encoded (base64 of "u:p@x" / "u:p@ss").
    assert f"\r\nAuthorization: {BasicAuth('u', 'p@x').encode()}\r\n" in one
    assert f"\r\nAuthorization: {BasicAuth('u', 'p@ss').encode()}\r\n" in two
    for head in heads:
        assert f"\r\nHost: host.test:{port}\r\n" in head
        assert "p@" not in head.replace("Authorization", "")
    # No part of a password ever reached the resolver.
    assert set(names.queries) == {"host.test"}


async def test_REQ_04_colon_in_login_is_refused(
    session: ClientSession, fault_server: FaultServer
) -> None:
    # "u%3Ax:p" would decode to login "u:x": not representable in Basic (RFC 7617 §2).
    with pytest.raises(ValueError):
        await fetch(session, f"http://u%3Ax:p@{LOOPBACK}:{fault_server.port}/")
    assert fault_server.requests == []
