"""Cookies end to end: session and request cookies, redirects, jars, security.md CK-01..04.

Real servers only: httpbin (``/cookies``, ``/cookies/set``, ``/response-headers``),
httpbin over TLS, and a scripted server for hostile ``Set-Cookie`` fields. Host
names such as ``x.co.uk`` reach them through :class:`LoopbackNames`; the default
jar refuses cookies from IP hosts, so "localhost"-style names exercise the
normal domain rules.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from servers import Endpoint, ScriptedConnection, ScriptedServer, http_response
from servers.names import LoopbackNames
from yarl import URL

from client import ClientResponseError, ClientSession, CookieJar, DummyCookieJar, TCPConnector
from client.cookiejar import AbstractCookieJar


def on(endpoint: Endpoint, host: str, path: str) -> str:
    """*path* on *endpoint*'s server, addressed by another name for 127.0.0.1."""
    return f"{endpoint.scheme}://{host}:{endpoint.port}{path}"


def set_cookie_url(endpoint: Endpoint, host: str, *fields: str) -> str:
    """httpbin answering ``200`` with one ``Set-Cookie`` per field, as given."""
    query = "&".join(f"Set-Cookie={quote(field)}" for field in fields)
    return on(endpoint, host, f"/response-headers?{query}")


def session_for(*names: str, jar: AbstractCookieJar | None = None, **kwargs: Any) -> ClientSession:
    connector = TCPConnector(resolver=LoopbackNames(*names), ssl=kwargs.pop("ssl", True))
    return ClientSession(connector=connector, cookie_jar=jar, **kwargs)


async def sent_cookies(session: ClientSession, url: str, **kwargs: Any) -> dict[str, str]:
    """The cookies httpbin's ``/cookies`` received."""
    async with session.get(url, **kwargs) as resp:
        assert resp.status == 200
        cookies: dict[str, str] = (await resp.json())["cookies"]
        return cookies


async def fetch(session: ClientSession, url: str) -> None:
    async with session.get(url) as resp:
        assert resp.status == 200
        await resp.read()


# -- session, request and response cookies -------------------------------------------------


async def test_session_cookies_go_to_every_host(httpbin: Endpoint) -> None:
    async with session_for("localhost", cookies={"a": "1"}) as session:
        assert await sent_cookies(session, httpbin.url("/cookies")) == {"a": "1"}
        assert await sent_cookies(session, on(httpbin, "localhost", "/cookies")) == {"a": "1"}


async def test_request_cookies_are_sent_once_and_not_stored(httpbin: Endpoint) -> None:
    url = on(httpbin, "localhost", "/cookies")
    async with session_for("localhost", cookies={"a": "1", "b": "1"}) as session:
        got = await sent_cookies(session, url, cookies={"b": "2", "c": "3"})
        assert got == {"a": "1", "b": "2", "c": "3"}  # the request's value wins
        assert await sent_cookies(session, url) == {"a": "1", "b": "1"}
        assert sorted(m.key for m in session.cookie_jar) == ["a", "b"]


async def test_cookies_set_during_redirects_are_kept(httpbin: Endpoint) -> None:
    async with session_for("localhost") as session:
        async with session.get(on(httpbin, "localhost", "/cookies/set?a=1&b=2")) as resp:
            assert resp.status == 200
            # The redirected hop already carried them...
            assert await resp.json() == {"cookies": {"a": "1", "b": "2"}}
            # ...but resp.cookies is the last response's only.
            assert dict(resp.cookies) == {}
            (hop,) = resp.history
            assert hop.status == 302
            assert {k: m.value for k, m in hop.cookies.items()} == {"a": "1", "b": "2"}
        jar = session.cookie_jar.filter_cookies(URL(on(httpbin, "localhost", "/")))
        assert {k: m.value for k, m in jar.items()} == {"a": "1", "b": "2"}


async def test_response_cookies(httpbin: Endpoint) -> None:
    url = set_cookie_url(httpbin, "localhost", "x=1; Path=/; HttpOnly", 'y="two words"')
    async with session_for("localhost") as session, session.get(url) as resp:
        assert resp.cookies["x"].value == "1"
        assert resp.cookies["x"]["httponly"] is True
        assert resp.cookies["y"].value == "two words"


async def test_ip_hosts_get_no_cookies_unless_the_jar_is_unsafe(httpbin: Endpoint) -> None:
    async with ClientSession() as session:
        async with session.get(httpbin.url("/cookies/set?a=1")) as resp:
            assert await resp.json() == {"cookies": {}}
            assert resp.history[0].cookies["a"].value == "1"  # seen, just not stored
        assert len(session.cookie_jar) == 0
    async with session_for("localhost", jar=CookieJar(unsafe=True)) as session:
        async with session.get(httpbin.url("/cookies/set?a=1")) as resp:
            assert await resp.json() == {"cookies": {"a": "1"}}
        # Host-only: never sent to another name for the same machine.
        assert await sent_cookies(session, on(httpbin, "localhost", "/cookies")) == {}


async def test_dummy_cookie_jar_keeps_nothing(httpbin: Endpoint) -> None:
    jar = DummyCookieJar()
    async with session_for("localhost", jar=jar, cookies={"session": "x"}) as session:
        async with session.get(on(httpbin, "localhost", "/cookies/set?a=1")) as resp:
            assert await resp.json() == {"cookies": {}}
            assert resp.history[0].cookies["a"].value == "1"
        assert len(jar) == 0
        # Per-request cookies do not go through the jar: they are still sent.
        url = on(httpbin, "localhost", "/cookies")
        assert await sent_cookies(session, url, cookies={"r": "1"}) == {"r": "1"}


async def test_treat_as_secure_origin(httpbin: Endpoint) -> None:
    url = set_cookie_url(httpbin, "localhost", "s=1; Secure")
    cookies_url = on(httpbin, "localhost", "/cookies")
    async with session_for("localhost") as session:
        await fetch(session, url)
        assert await sent_cookies(session, cookies_url) == {}  # http may not set Secure
    jar = CookieJar(treat_as_secure_origin=[on(httpbin, "localhost", "/")])
    async with session_for("localhost", jar=jar) as session:
        await fetch(session, url)
        assert await sent_cookies(session, cookies_url) == {"s": "1"}
        # Only that origin (scheme, host and port) is trusted.
        assert await sent_cookies(session, httpbin.url("/cookies")) == {}


async def test_save_and_load_across_sessions(httpbin: Endpoint, tmp_path: Path) -> None:
    path = tmp_path / "cookies.json"
    async with session_for("localhost", jar=CookieJar(unsafe=True)) as session:
        await fetch(session, set_cookie_url(httpbin, "localhost", "a=1; Max-Age=3600"))
        await fetch(session, set_cookie_url(httpbin, "127.0.0.1", "ip=1"))
        assert len(session.cookie_jar) == 2
        session.cookie_jar.save(path)  # type: ignore[attr-defined]
    assert path.stat().st_mode & 0o077 == 0  # not readable by others
    safe = CookieJar()
    safe.load(path)
    async with session_for("localhost", jar=safe) as session:
        assert await sent_cookies(session, on(httpbin, "localhost", "/cookies")) == {"a": "1"}
    assert [m.key for m in safe] == ["a"]  # the IP-host cookie stays out of a safe jar
    unsafe = CookieJar(unsafe=True)
    unsafe.load(path)
    async with session_for("localhost", jar=unsafe) as session:
        assert await sent_cookies(session, httpbin.url("/cookies")) == {"ip": "1"}


# -- security.md CK-01..03 ----------------------------------------------------------------


@pytest.mark.parametrize("domain", ["co.uk", "CO.UK", "co.uk.", "com", ".co.uk", "uk"])
async def test_ck01_public_suffix_domains_are_refused(httpbin: Endpoint, domain: str) -> None:
    names = ("x.co.uk", "y.co.uk")
    async with session_for(*names) as session:
        await fetch(session, set_cookie_url(httpbin, "x.co.uk", f"super=1; Domain={domain}"))
        assert len(session.cookie_jar) == 0
        for host in names:
            assert await sent_cookies(session, on(httpbin, host, "/cookies")) == {}


async def test_ck01_own_domain_reaches_subdomains_only(httpbin: Endpoint) -> None:
    async with session_for("x.co.uk", "a.x.co.uk", "y.co.uk") as session:
        await fetch(session, set_cookie_url(httpbin, "x.co.uk", "d=1; Domain=X.CO.UK", "h=1"))
        assert await sent_cookies(session, on(httpbin, "x.co.uk", "/cookies")) == {
            "d": "1",
            "h": "1",
        }
        assert await sent_cookies(session, on(httpbin, "a.x.co.uk", "/cookies")) == {"d": "1"}
        assert await sent_cookies(session, on(httpbin, "y.co.uk", "/cookies")) == {}


async def test_ck02_ip_host_cookies_are_host_only(httpbin: Endpoint) -> None:
    async with session_for("localhost", jar=CookieJar(unsafe=True)) as session:
        url = set_cookie_url(
            httpbin, "127.0.0.1", "a=1; Domain=0.0.1", "b=1; Domain=127.0.0.1", "c=1"
        )
        await fetch(session, url)
        assert await sent_cookies(session, httpbin.url("/cookies")) == {"b": "1", "c": "1"}
        assert await sent_cookies(session, on(httpbin, "localhost", "/cookies")) == {}


async def test_ck03_domain_and_path_match_on_boundaries(httpbin: Endpoint) -> None:
    async with session_for("ample.test", "example.test") as session:
        url = set_cookie_url(
            httpbin,
            "ample.test",
            "host=1",
            "dom=1; Domain=ample.test",
            "short=1; Path=/cook",
            "exact=1; Path=/cookies",
        )
        await fetch(session, url)
        assert await sent_cookies(session, on(httpbin, "example.test", "/cookies")) == {}
        got = await sent_cookies(session, on(httpbin, "ample.test", "/cookies"))
        assert got == {"host": "1", "dom": "1", "exact": "1"}  # "/cook" is not "/cookies"'s


async def test_ck03_secure_cookies_stay_on_https(
    httpbin: Endpoint, httpbin_secure: Endpoint, ssl_client_context: ssl.SSLContext
) -> None:
    plain = on(httpbin, "localhost", "/cookies")
    secure = on(httpbin_secure, "localhost", "/cookies")
    async with session_for("localhost", ssl=ssl_client_context) as session:
        await fetch(session, set_cookie_url(httpbin_secure, "localhost", "s=1; Secure", "p=1"))
        assert await sent_cookies(session, secure) == {"s": "1", "p": "1"}
        assert await sent_cookies(session, plain) == {"p": "1"}  # ports don't isolate cookies
        # An http response can neither overwrite nor shadow the Secure cookie.
        await fetch(session, set_cookie_url(httpbin, "localhost", "s=evil", "p=2"))
        await fetch(session, set_cookie_url(httpbin, "localhost", "s=evil; Path=/cookies"))
        assert await sent_cookies(session, secure) == {"s": "1", "p": "2"}
        assert await sent_cookies(session, plain) == {"p": "2"}


# -- security.md CK-04: hostile Set-Cookie fields ----------------------------------------------


class CookieServer:
    """``GET /<n>`` gets *fields* plus n ``Set-Cookie: k<request>_<i>=v``; records Cookie."""

    def __init__(self, server: ScriptedServer, fields: Iterable[str] = ()) -> None:
        self.server = server
        self.fields = list(fields)
        self.cookie_headers: list[str] = []
        self.requests = 0
        server.serve(self._handle)

    def url(self, count: int = 0) -> str:
        return f"http://site.test:{self.server.port}/{count}"

    async def _handle(self, conn: ScriptedConnection) -> None:
        while True:
            head = (await conn.read_request()).decode("latin-1")
            self.requests += 1
            for line in head.split("\r\n"):
                if line.lower().startswith("cookie:"):
                    self.cookie_headers.append(line[7:].strip())
            count = int(head.split(" ", 2)[1].strip("/"))
            headers = [("Set-Cookie", field) for field in self.fields]
            headers += [("Set-Cookie", f"k{self.requests}_{i}=v") for i in range(count)]
            await conn.send(http_response(200, b"ok", headers=headers))


def warnings_logged(caplog: pytest.LogCaptureFixture) -> int:
    return sum(r.levelno >= logging.WARNING for r in caplog.records)


async def test_ck04_control_characters(scripted_server: ScriptedServer) -> None:
    """A raw CTL fails the whole response at the parser; HTAB (the one CTL HTTP lets
    through) gets as far as the jar, which refuses the cookie."""
    server = CookieServer(scripted_server, ["ctl=a\x01b", "ok=1"])
    async with session_for("site.test") as session:
        with pytest.raises(ClientResponseError, match="Invalid header value char"):
            await session.get(server.url())
        assert len(session.cookie_jar) == 0
        server.fields = ["tab=a\tb", "n\tm=1", "ok=1"]
        await fetch(session, server.url())  # on a fresh connection
        assert [m.key for m in session.cookie_jar] == ["ok"]
        await fetch(session, server.url())
    assert server.cookie_headers == ["ok=1"]
    assert scripted_server.accepted == 2


async def test_ck04_huge_backslash_quoted_values(
    scripted_server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = CookieServer(scripted_server)
    caplog.set_level(logging.WARNING, logger="client.cookiejar")
    async with session_for("site.test", max_field_size=128 * 1024) as session:
        server.fields = ['big="' + "\\a" * (30 * 1024) + '"', "ok=1"]  # 60 KiB
        start = time.perf_counter()
        await fetch(session, server.url())
        assert time.perf_counter() - start < 0.5
        assert [m.key for m in session.cookie_jar] == ["ok"]  # over the 4 KiB pair limit
        assert warnings_logged(caplog) == 1
        server.fields = ['big="' + "\\a" * (50 * 1024) + '"']  # 100 KiB: past the head limit
        with pytest.raises(ClientResponseError, match="longer than 65536"):
            await session.get(server.url())
    # The parser is linear: 100 KiB of escapes cost well under 50 ms.
    jar = CookieJar()
    start = time.perf_counter()
    jar.update_cookies_from_headers(server.fields, URL(server.url()))
    assert time.perf_counter() - start < 0.05
    assert len(jar) == 0


async def test_ck04_five_thousand_cookies_are_capped(
    scripted_server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = CookieServer(scripted_server)
    caplog.set_level(logging.WARNING, logger="client.cookiejar")
    async with session_for("site.test", max_headers=3000) as session:
        jar = session.cookie_jar
        for _ in range(2):  # 5,000 cookies from one site (in two 57 KiB heads)
            async with session.get(server.url(2500)) as resp:
                assert len(resp.headers.getall("Set-Cookie")) == 2500
        assert len(jar) == 100  # 50 per response
        for _ in range(3):
            await fetch(session, server.url(100))
        assert len(jar) <= 180  # per-site cap (evicts down to 150)
        await fetch(session, server.url(0))
    sent = server.cookie_headers[-1]
    assert len(sent.split("; ")) <= 150
    assert len(sent) <= 8190
    assert warnings_logged(caplog) == 5  # one per over-limit response
