"""``trust_env``: proxy variables, ``NO_PROXY`` and netrc (security.md G3, PRX-02, RED-04).

Unit tables for the policy in ``client.proxy``, then end-to-end checks with
monkeypatched variables against a recording proxy and scripted origins.
"""

from __future__ import annotations

import base64
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from multidict import CIMultiDict
from servers import ReadRequest, ScriptedServer, Send, TLSCertificates, http_response
from servers.proxy import Head, RecordingProxy, parse_head, proxy_env_names
from yarl import URL

from client import BasicAuth, ClientSession
from client.proxy import NoProxy, TrustedEnv, env_proxy_urls, load_netrc
from client.request import ClientRequest

NETRC = """\
machine example.com login ex-user password ex-secret
machine 127.0.0.1 login lo-user password lo-secret
default login any-user password default-secret
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only what a test sets: no proxy variable, netrc or CGI marker of the machine."""
    for name in proxy_env_names():
        monkeypatch.delenv(name)
    monkeypatch.setenv("NETRC", str(tmp_path / "absent-netrc"))


@pytest.fixture
def netrc_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    path = tmp_path / "netrc"
    path.write_text(NETRC)
    path.chmod(0o600)
    monkeypatch.setenv("NETRC", str(path))
    return path


@pytest.fixture
async def recording_proxy() -> AsyncIterator[RecordingProxy]:
    proxy = await RecordingProxy().start()
    yield proxy
    await proxy.close()


def heads(server: ScriptedServer) -> list[Head]:
    return [parse_head(raw[: raw.index(b"\r\n\r\n") + 4]) for raw in server.requests]


def basic(value: str) -> tuple[str, str]:
    login, _, password = base64.b64decode(value.removeprefix("Basic ")).decode().partition(":")
    return login, password


# -- NO_PROXY (PRX-02) -------------------------------------------------------------------

NO_PROXY_TABLE = [
    ("example.com", "http://example.com/", True),
    ("example.com", "https://sub.example.com/", True),
    ("example.com", "http://a.b.example.com/", True),
    ("example.com", "http://example.com./", True),
    ("example.com", "http://EXAMPLE.COM/", True),
    ("example.com", "http://notexample.com/", False),
    ("example.com", "http://example.com.evil.test/", False),
    ("example.com", "http://[::1%25.example.com]/", False),
    ("example.com.", "http://example.com/", True),
    (".example.com", "http://example.com/", True),
    (".example.com", "http://sub.example.com/", True),
    ("*.example.com", "http://sub.example.com/", True),
    ("*", "http://anything.test/", True),
    ("a.test,*", "http://[::1]/", True),
    ("10.0.0.0/8", "http://10.1.2.3/", True),
    ("10.0.0.0/8", "http://11.1.2.3/", False),
    ("10.0.0.0/8", "http://ten.test/", False),
    ("10.1.2.3", "http://10.1.2.3:8080/", True),
    ("127.0.0.1", "http://localhost/", False),
    ("localhost", "http://127.0.0.1/", False),
    ("example.com", "http://93.184.216.34/", False),
    ("::1", "http://[::1]:8080/", True),
    ("[::1]", "http://[::1]/", True),
    ("fe80::/10", "http://[fe80::1%25eth0]/", True),
    ("::1", "http://[::2]/", False),
    ("example.com:8080", "http://example.com:8080/", True),
    ("example.com:8080", "http://example.com/", False),
    ("example.com:443", "https://example.com/", True),
    ("[::1]:8080", "http://[::1]:8080/", True),
    ("[::1]:8080", "http://[::1]:9090/", False),
    ("10.0.0.0/8:80", "http://10.0.0.1/", True),
    ("example.com:junk", "http://example.com/", False),
    (" a.test , b.test ", "http://b.test/", True),
    ("a.test b.test", "http://b.test/", True),
    ("bücher.de", "http://bücher.de/", True),
    ("", "http://example.com/", False),
]


@pytest.mark.parametrize(("no_proxy", "url", "bypass"), NO_PROXY_TABLE)
def test_no_proxy_table(no_proxy: str, url: str, bypass: bool) -> None:
    assert NoProxy(no_proxy).bypass(URL(url)) is bypass


# -- proxy variables -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"HTTP_PROXY": "http://a:1"}, {"http": "http://a:1"}),
        ({"Http_Proxy": "http://a:1"}, {"http": "http://a:1"}),
        ({"HTTP_PROXY": "http://a:1", "http_proxy": "http://b:2"}, {"http": "http://b:2"}),
        ({"HTTPS_PROXY": "http://a:1", "https_proxy": ""}, {}),
        ({"HTTP_PROXY": "http://a:1", "REQUEST_METHOD": "GET"}, {}),  # httpoxy
        ({"http_proxy": "http://a:1", "REQUEST_METHOD": "GET"}, {"http": "http://a:1"}),
        ({"WSS_PROXY": "http://w:3", "NO_PROXY": "x"}, {"wss": "http://w:3"}),
    ],
)
def test_env_proxy_precedence(environ: dict[str, str], expected: dict[str, str]) -> None:
    assert env_proxy_urls(environ) == expected


def test_trusted_env_routes() -> None:
    env = TrustedEnv(
        {
            "http": "http://u:p@proxy.test:3128/ignored/path",
            "https": "https://tls-proxy.test",
            "ftp": "http://ftp-proxy.test",
        },
        "internal.test",
        {"tls-proxy.test": BasicAuth("n", "r")},
    )
    http = env.route_for(URL("http://a.test/"))
    assert http is not None
    assert http.url == URL("http://proxy.test:3128")
    assert http.auth == BasicAuth("u", "p")
    assert http.headers is None
    https = env.route_for(URL("https://a.test/"))
    assert https is not None
    assert https.url == URL("https://tls-proxy.test")
    assert https.auth == BasicAuth("n", "r")  # netrc, for the proxy host
    # ws/wss fall back to the http/https proxies; NO_PROXY applies to all.
    assert env.route_for(URL("ws://a.test/")) == http
    assert env.route_for(URL("wss://a.test/")) == https
    assert env.route_for(URL("http://internal.test/")) is None
    assert env.proxies == {"http": URL("http://proxy.test:3128"), "https": https.url}


def test_trusted_env_bad_proxy_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="client.proxy"):
        env = TrustedEnv({"http": "socks5://s.test:1080", "https": "proxy.test:3128"})
    assert env.route_for(URL("http://a.test/")) is None
    https = env.route_for(URL("https://a.test/"))
    assert https is not None
    assert https.url == URL("http://proxy.test:3128")  # no scheme means http://
    assert "socks5" in caplog.text


def test_no_proxy_lower_case_wins() -> None:
    env = TrustedEnv.load({"HTTP_PROXY": "http://p.test", "NO_PROXY": "a.test", "no_proxy": "b"})
    assert env.route_for(URL("http://a.test/")) is not None
    assert env.route_for(URL("http://b/")) is None


# -- netrc -------------------------------------------------------------------------------


def test_netrc_exact_host_only(netrc_file: Path) -> None:
    creds = load_netrc(netrc_file)
    assert creds == {
        "example.com": BasicAuth("ex-user", "ex-secret"),
        "127.0.0.1": BasicAuth("lo-user", "lo-secret"),
    }  # no "default": credentials never go to a host that was not named
    env = TrustedEnv({}, "", creds)
    assert env.netrc_auth("EXAMPLE.com.") == BasicAuth("ex-user", "ex-secret")
    assert env.netrc_auth("sub.example.com") is None
    assert env.netrc_auth("other.test") is None


def test_netrc_malformed_is_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "bad"
    path.write_text("machine a.test login u password p\nnonsense here\n")
    with caplog.at_level(logging.WARNING, logger="client.proxy"):
        assert load_netrc(path) == {}
    assert "netrc" in caplog.text
    assert load_netrc(tmp_path / "missing") == {}


def test_tunnel_keys_for_websockets() -> None:
    """ws and wss go through CONNECT (RFC 6455 §4.1); http is forwarded."""
    proxy = URL("http://proxy.test:3128")
    keys = {}
    for scheme in ("http", "https", "ws", "wss"):
        req = ClientRequest(
            "GET",
            URL(f"{scheme}://a.test/"),
            headers=_headers(),
            proxy=proxy,
            proxy_headers=_headers(("X-P", "1")),
        )
        keys[scheme] = req.connection_key()
    assert keys["http"].connect_headers is None
    for scheme in ("https", "ws", "wss"):
        assert keys[scheme].connect_headers == (("X-P", "1"),)
    assert keys["http"].proxy_headers_hash == hash((("X-P", "1"),))


def _headers(*items: tuple[str, str]) -> CIMultiDict[str]:
    return CIMultiDict(items)


# -- end to end ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["HTTP_PROXY", "http_proxy", "Http_Proxy"])
async def test_env_proxy_used_with_trust_env(
    name: str, monkeypatch: pytest.MonkeyPatch, recording_proxy: RecordingProxy
) -> None:
    monkeypatch.setenv(name, recording_proxy.url)
    async with ClientSession(trust_env=True) as session:
        async with session.get("http://env.test/x") as resp:
            assert await resp.text() == "proxied"
    assert [h.target for h in recording_proxy.heads] == ["http://env.test/x"]


async def test_env_ignored_without_trust_env(
    monkeypatch: pytest.MonkeyPatch,
    recording_proxy: RecordingProxy,
    scripted_server: ScriptedServer,
    netrc_file: Path,
) -> None:
    """RED-04: neither env proxies nor netrc without trust_env=True."""
    monkeypatch.setenv("HTTP_PROXY", recording_proxy.url)
    async with ClientSession() as session, session.get(scripted_server.url("/")) as resp:
        assert await resp.text() == "ok"
    assert recording_proxy.heads == []
    (head,) = heads(scripted_server)
    assert head.get_all("Authorization") == []


@pytest.mark.parametrize(("no_proxy", "proxied"), [("127.0.0.1", False), ("other.test", True)])
async def test_no_proxy_end_to_end(
    no_proxy: str,
    proxied: bool,
    monkeypatch: pytest.MonkeyPatch,
    recording_proxy: RecordingProxy,
    scripted_server: ScriptedServer,
) -> None:
    monkeypatch.setenv("http_proxy", recording_proxy.url)
    monkeypatch.setenv("no_proxy", no_proxy)
    async with ClientSession(trust_env=True) as session:
        await (await session.get(scripted_server.url("/"))).read()
    assert len(recording_proxy.heads) == int(proxied)
    assert len(scripted_server.requests) == int(not proxied)


async def test_env_https_proxy_with_netrc_credentials(
    monkeypatch: pytest.MonkeyPatch,
    recording_proxy: RecordingProxy,
    tls_certificates: TLSCertificates,
    ssl_client_context: ssl.SSLContext,
    netrc_file: Path,
) -> None:
    origin = ScriptedServer(ssl=tls_certificates.server_context("valid"))
    await origin.start()
    monkeypatch.setenv("HTTPS_PROXY", recording_proxy.url)  # 127.0.0.1: netrc has it
    try:
        async with ClientSession(trust_env=True) as session:
            async with session.get(
                f"https://localhost:{origin.port}/", ssl=ssl_client_context
            ) as resp:
                assert await resp.text() == "ok"
    finally:
        await origin.close()
    (connect,) = recording_proxy.heads
    assert connect.method == "CONNECT"
    assert [basic(v) for v in connect.get_all("Proxy-Authorization")] == [("lo-user", "lo-secret")]
    (inner,) = heads(origin)
    assert inner.get_all("Proxy-Authorization") == []
    assert inner.get_all("Authorization") == []  # "localhost" has no netrc entry


async def test_netrc_credentials_for_the_parsed_host_only(
    scripted_server: ScriptedServer, netrc_file: Path
) -> None:
    """RED-04: ``http://example.com:@127.0.0.1/`` never gets example.com's secret."""
    scripted_server.script([ReadRequest(), Send(http_response(200, b"ok"))] * 5)
    port = scripted_server.port
    async with ClientSession(trust_env=True) as session:
        for url in (
            f"http://127.0.0.1:{port}/plain",
            f"http://example.com:@127.0.0.1:{port}/confusing",
            f"http://example.com@127.0.0.1:{port}/confusing-too",
        ):
            await (await session.get(url)).read()
        await (await session.get(f"http://127.0.0.1:{port}/", auth=BasicAuth("mine"))).read()
        headers = {"Authorization": "Bearer t"}
        await (await session.get(f"http://127.0.0.1:{port}/", headers=headers)).read()
    sent = [h.get_all("Authorization") for h in heads(scripted_server)]
    assert [basic(v) for v in sent[0]] == [("lo-user", "lo-secret")]
    # Userinfo is the user's own credential for this URL: it is sent, netrc is not consulted.
    assert [basic(v) for v in sent[1]] == [("example.com", "")]
    assert [basic(v) for v in sent[2]] == [("example.com", "")]
    assert [basic(v) for v in sent[3]] == [("mine", "")]
    assert sent[4] == ["Bearer t"]
    assert b"ex-secret" not in b"".join(scripted_server.requests)
    assert base64.b64encode(b"ex-user:ex-secret") not in b"".join(scripted_server.requests)


async def test_env_read_once_per_session(
    monkeypatch: pytest.MonkeyPatch, recording_proxy: RecordingProxy
) -> None:
    calls = []
    real_load = TrustedEnv.load

    def counting_load(environ: object = None) -> TrustedEnv:
        calls.append(1)
        return real_load()

    monkeypatch.setattr(TrustedEnv, "load", staticmethod(counting_load))
    monkeypatch.setenv("HTTP_PROXY", recording_proxy.url)
    async with ClientSession(trust_env=True) as session:
        for _ in range(3):
            await (await session.get("http://once.test/")).read()
        monkeypatch.delenv("HTTP_PROXY")  # the session keeps what it read
        await (await session.get("http://once.test/")).read()
    assert len(calls) == 1
    assert len(recording_proxy.heads) == 4
