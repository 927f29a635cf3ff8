"""Seed 004's cookie, SSL, Unix-socket and graceful-shutdown examples, run on ``client``.

Same method as tests/test_seed_examples.py: each example is embedded verbatim
(RST indent dropped) and run by :class:`seed_support.SeedRunner`, which swaps
the import and maps public hosts to loopback servers. httpbin.org becomes
httpbin at ``localhost`` (the default jar refuses cookies from IP hosts, which
is the point of 004's "Cookie safety"), the badssl hosts become the
``make_tls_server`` kinds, and the seeds' file paths become files written
here. For the SSL examples the session's *default* context must trust the test
CA, as a system store would trust a public one: ``SSL_CERT_FILE`` points at it.

004's custom-cookies, response-headers and response-history examples run in
tests/test_seed_examples.py.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import ssl
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from seed_support import SeedRunner
from servers import Endpoint, TLSServer, TLSServerFactory

import client
import client.tls

# -- Keep-Alive, connection pooling and cookie sharing --------------------------------------------

S004_COOKIE_SHARING = r"""
async with aiohttp.ClientSession() as session:
    await session.get(
        'http://httpbin.org/cookies/set?my_cookie=my_value')
    filtered = session.cookie_jar.filter_cookies('http://httpbin.org')
    assert filtered['my_cookie'].value == 'my_value'
    async with session.get('http://httpbin.org/cookies') as r:
        json_body = await r.json()
        assert json_body['cookies']['my_cookie'] == 'my_value'
"""

# -- Cookie safety / Dummy Cookie Jar -------------------------------------------------------------

S004_UNSAFE_JAR = r"""
jar = aiohttp.CookieJar(unsafe=True)
session = aiohttp.ClientSession(cookie_jar=jar)
"""
S004_DUMMY_JAR = r"""
jar = aiohttp.DummyCookieJar()
session = aiohttp.ClientSession(cookie_jar=jar)
"""

# -- Response Cookies -----------------------------------------------------------------------------

S004_RESPONSE_COOKIES = r"""
url = 'http://example.com/some/cookie/setting/url'
async with session.get(url) as resp:
    print(resp.cookies['example_cookie_name'])
"""

# -- SSL control for TCP sockets ------------------------------------------------------------------

S004_VERIFY_SSL_FALSE = r"""
r = await session.get('https://example.com', verify_ssl=False)
"""
S004_SSL_CONTEXT_CAFILE = r"""
sslcontext = ssl.create_default_context(
   cafile='/path/to/ca-bundle.crt')
r = await session.get('https://example.com', ssl_context=sslcontext)
"""
S004_SSL_CONTEXT_CLIENT_CERT = r"""
sslcontext = ssl.create_default_context(
   cafile='/path/to/ca-bundle.crt')
sslcontext.load_cert_chain('/path/to/client/public/device.pem',
                           '/path/to/client/private/device.jey')
r = await session.get('https://example.com', ssl_context=sslcontext)
"""
S004_SSL_ERROR_EXPIRED = r"""
try:
    await session.get('https://expired.badssl.com/')
except aiohttp.ClientConnectorSSLError as e:
    assert isinstance(e, ssl.SSLError)
"""
S004_CERT_ERROR_WRONG_HOST = r"""
try:
    await session.get('https://wrong.host.badssl.com/')
except aiohttp.ClientConnectorCertificateError as e:
    assert isinstance(e, ssl.CertificateError)
"""
S004_CLIENT_SSL_ERROR = r"""
try:
    await session.get('https://expired.badssl.com/')
except aiohttp.ClientSSLError as e:
    assert isinstance(e, ssl.SSLError)

try:
    await session.get('https://wrong.host.badssl.com/')
except aiohttp.ClientSSLError as e:
    assert isinstance(e, ssl.CertificateError)
"""
S004_FINGERPRINT = r"""
# Attempt to connect to https://www.python.org
# with a pin to a bogus certificate:
bad_fingerprint = b'0'*64
exc = None
try:
    r = await session.get('https://www.python.org',
                          fingerprint=bad_fingerprint)
except aiohttp.FingerprintMismatch as e:
    exc = e
assert exc is not None
assert exc.expected == bad_fingerprint

# www.python.org cert's actual fingerprint
assert exc.got == b'...'
"""
# Repaired: a SHA-256 digest is 32 bytes (64 is a hex string's length, and hex
# would need binascii.unhexlify, as the doc's tip says); `b'...'` is a placeholder.
S004_FINGERPRINT_REPAIRED = S004_FINGERPRINT.replace("b'0'*64", "b'0'*32").replace(
    "exc.got == b'...'", "exc.got == actual_fingerprint"
)

# -- Unix domain sockets --------------------------------------------------------------------------

S004_UNIX = r"""
conn = aiohttp.UnixConnector(path='/path/to/socket')
session = aiohttp.ClientSession(connector=conn)
"""

# -- Graceful Shutdown ----------------------------------------------------------------------------

S004_SHUTDOWN_READ = r"""
async def read_website():
    async with aiohttp.ClientSession() as session:
        async with session.get('http://example.org/') as response:
            await response.read()

loop = asyncio.get_event_loop()
loop.run_until_complete(read_website())
"""
S004_SHUTDOWN_SSL_TAIL = r"""
# Wait 250 ms for the underlying SSL connections to close
loop.run_until_complete(asyncio.sleep(0.250))
loop.close()
"""


# == fixtures =====================================================================================


@pytest.fixture
def seed(httpbin: Endpoint, capsys: pytest.CaptureFixture[str]) -> SeedRunner:
    """httpbin.org at ``localhost``; further hosts are mapped per test."""
    local = f"http://localhost:{httpbin.port}"
    return SeedRunner({"http://httpbin.org": local, "https://httpbin.org": local})


@pytest.fixture
def default_trust(
    tls_ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """The default SSL context trusts the test CA (as a system store trusts public CAs)."""
    path = tmp_path / "ca-bundle.crt"
    tls_ca.cert_pem.write_to_path(str(path))
    monkeypatch.setenv("SSL_CERT_FILE", str(path))
    client.tls.verified_context.cache_clear()  # built on first use, from SSL_CERT_FILE
    yield path
    client.tls.verified_context.cache_clear()


def ssl_seed(seed: SeedRunner, **hosts: TLSServer) -> SeedRunner:
    """*seed* with badssl-style hosts mapped: ``expired=server`` maps https://expired.badssl.com."""
    names = {
        "expired": "https://expired.badssl.com",
        "wrong_host": "https://wrong.host.badssl.com",
        "example": "https://example.com",
        "python_org": "https://www.python.org",
    }
    return seed.with_urls({names[key]: server.base for key, server in hosts.items()})


async def peer_digest(server: TLSServer) -> bytes:
    pem = await asyncio.to_thread(ssl.get_server_certificate, (server.host, server.port))
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).digest()


# == cookies ======================================================================================


async def test_cookie_sharing(seed: SeedRunner) -> None:
    await seed.fragment(S004_COOKIE_SHARING, aiohttp=client)


async def test_cookie_sharing_on_an_ip_host_needs_the_unsafe_jar(
    seed: SeedRunner, httpbin: Endpoint
) -> None:
    """What 004's "Cookie safety" warns about: at 127.0.0.1 the strict jar keeps nothing."""
    on_ip = seed.with_urls({"http://httpbin.org": httpbin.base})
    with pytest.raises(KeyError, match="my_cookie"):
        await on_ip.fragment(S004_COOKIE_SHARING, aiohttp=client)


async def test_unsafe_cookie_jar(seed: SeedRunner, httpbin: Endpoint) -> None:
    ns = await seed.fragment(S004_UNSAFE_JAR, aiohttp=client)
    async with ns["session"] as session:
        assert session.cookie_jar is ns["jar"]
        async with session.get(httpbin.url("/cookies/set?ip=1")) as resp:
            assert await resp.json() == {"cookies": {"ip": "1"}}
    assert [m.key for m in ns["jar"]] == ["ip"]


async def test_dummy_cookie_jar(seed: SeedRunner, httpbin: Endpoint) -> None:
    ns = await seed.fragment(S004_DUMMY_JAR, aiohttp=client)
    async with ns["session"] as session:
        url = f"http://localhost:{httpbin.port}/cookies/set?a=1"
        async with session.get(url) as resp:
            assert await resp.json() == {"cookies": {}}
    assert len(ns["jar"]) == 0


async def test_response_cookies(
    seed: SeedRunner, httpbin: Endpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    setting = f"{httpbin.base}/response-headers?Set-Cookie=example_cookie_name%3Dexample_value"
    runner = seed.with_urls({"http://example.com/some/cookie/setting/url": setting})
    async with client.ClientSession() as session:
        await runner.fragment(S004_RESPONSE_COOKIES, session=session)
    assert capsys.readouterr().out == "Set-Cookie: example_cookie_name=example_value\n"


async def test_response_cookies_are_the_last_hops_only(seed: SeedRunner, httpbin: Endpoint) -> None:
    """004's note: after a redirect the cookie is in the session's jar, not resp.cookies."""
    local = f"http://localhost:{httpbin.port}"
    runner = seed.with_urls(
        {"http://example.com/some/cookie/setting/url": f"{local}/cookies/set?example_cookie_name=v"}
    )
    async with client.ClientSession() as session:
        with pytest.raises(KeyError, match="example_cookie_name"):
            await runner.fragment(S004_RESPONSE_COOKIES, session=session)
        assert session.cookie_jar.filter_cookies(local)["example_cookie_name"].value == "v"


# == SSL control ==================================================================================


async def test_verify_ssl_false(seed: SeedRunner, make_tls_server: TLSServerFactory) -> None:
    runner = ssl_seed(seed, example=make_tls_server("self_signed"))
    async with client.ClientSession() as session:
        with pytest.warns(DeprecationWarning, match="verify_ssl"):
            ns = await runner.fragment(S004_VERIFY_SSL_FALSE, session=session)
        async with ns["r"] as r:
            assert r.status == 200


async def test_ssl_context_with_a_ca_file(
    seed: SeedRunner, make_tls_server: TLSServerFactory, tls_ca: trustme.CA, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca-bundle.crt"
    tls_ca.cert_pem.write_to_path(str(bundle))
    runner = ssl_seed(seed, example=make_tls_server("valid")).with_urls(
        {"/path/to/ca-bundle.crt": str(bundle)}
    )
    async with client.ClientSession() as session:
        with pytest.warns(DeprecationWarning, match="ssl_context"):
            ns = await runner.fragment(
                S004_SSL_CONTEXT_CAFILE, session=session, ssl=ssl, aiohttp=client
            )
        async with ns["r"] as r:
            assert r.status == 200


async def test_ssl_context_with_a_client_certificate(
    seed: SeedRunner, make_tls_server: TLSServerFactory, tls_ca: trustme.CA, tmp_path: Path
) -> None:
    server = make_tls_server("client_cert_required")
    assert server.client_cert is not None
    bundle, public, private = tmp_path / "ca.crt", tmp_path / "device.pem", tmp_path / "device.key"
    tls_ca.cert_pem.write_to_path(str(bundle))
    for blob in server.client_cert.cert_chain_pems:
        blob.write_to_path(str(public), append=True)
    server.client_cert.private_key_pem.write_to_path(str(private))
    runner = ssl_seed(seed, example=server).with_urls(
        {
            "/path/to/ca-bundle.crt": str(bundle),
            "/path/to/client/public/device.pem": str(public),
            "/path/to/client/private/device.jey": str(private),
        }
    )
    async with client.ClientSession() as session:
        with pytest.warns(DeprecationWarning, match="ssl_context"):
            ns = await runner.fragment(
                S004_SSL_CONTEXT_CLIENT_CERT, session=session, ssl=ssl, aiohttp=client
            )
        async with ns["r"] as r:
            assert r.status == 200
    assert server.server.requests == 1


@pytest.mark.xfail(
    strict=True,
    raises=client.ClientConnectorCertificateError,
    reason="stale doc: an expired certificate is a certificate error on aiohttp 3.14 too, "
    "so `except ClientConnectorSSLError` does not catch it",
)
async def test_ssl_error_for_an_expired_certificate(
    seed: SeedRunner, make_tls_server: TLSServerFactory, default_trust: Path
) -> None:
    runner = ssl_seed(seed, expired=make_tls_server("expired"))
    async with client.ClientSession() as session:
        await runner.fragment(S004_SSL_ERROR_EXPIRED, session=session, ssl=ssl, aiohttp=client)


async def test_certificate_error_for_a_wrong_host(
    seed: SeedRunner, make_tls_server: TLSServerFactory, default_trust: Path
) -> None:
    server = make_tls_server("wrong_host")
    async with client.ClientSession() as session:
        await ssl_seed(seed, wrong_host=server).fragment(
            S004_CERT_ERROR_WRONG_HOST, session=session, ssl=ssl, aiohttp=client
        )
    assert server.server.requests == 0


async def test_client_ssl_error_catches_both(
    seed: SeedRunner, make_tls_server: TLSServerFactory, default_trust: Path
) -> None:
    runner = ssl_seed(
        seed, expired=make_tls_server("expired"), wrong_host=make_tls_server("wrong_host")
    )
    async with client.ClientSession() as session:
        await runner.fragment(S004_CLIENT_SSL_ERROR, session=session, ssl=ssl, aiohttp=client)


@pytest.mark.xfail(
    strict=True,
    raises=ValueError,
    reason="stale doc: b'0'*64 is not a SHA-256 digest; aiohttp 3.14 raises "
    "ValueError('fingerprint has invalid length') too",
)
async def test_fingerprint_verbatim(
    seed: SeedRunner, make_tls_server: TLSServerFactory, default_trust: Path
) -> None:
    runner = ssl_seed(seed, python_org=make_tls_server("valid"))
    async with client.ClientSession() as session:
        with pytest.warns(DeprecationWarning, match="fingerprint"):
            await runner.fragment(S004_FINGERPRINT, session=session, aiohttp=client)


async def test_fingerprint_repaired(
    seed: SeedRunner, make_tls_server: TLSServerFactory, default_trust: Path
) -> None:
    server = make_tls_server("valid")
    runner = ssl_seed(seed, python_org=server)
    actual = await peer_digest(server)
    async with client.ClientSession() as session:
        with pytest.warns(DeprecationWarning, match="fingerprint"):
            ns = await runner.fragment(
                S004_FINGERPRINT_REPAIRED,
                session=session,
                actual_fingerprint=actual,
                aiohttp=client,
            )
    assert isinstance(ns["exc"], client.ServerFingerprintMismatch)
    assert (ns["exc"].host, ns["exc"].port) == ("127.0.0.1", server.port)
    assert server.server.requests == 0  # refused before any request byte


# == Unix domain sockets ==========================================================================


async def test_unix_connector(seed: SeedRunner, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = str(tmp_path_factory.mktemp("seed-unix") / "web.sock")
    seen: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_unix_server(answer, path)
    try:
        ns = await seed.with_urls({"/path/to/socket": path}).fragment(S004_UNIX, aiohttp=client)
        assert ns["conn"].path == path
        async with ns["session"] as session, session.get("http://localhost/") as resp:
            assert await resp.read() == b"hello"
    finally:
        server.close()
        await server.wait_closed()
    assert seen[0].startswith(b"GET / HTTP/1.1\r\n")
    assert b"\r\nHost: localhost\r\n" in seen[0]


# == Graceful shutdown with SSL ===================================================================


def _shutdown_program(server: TLSServer, tail: str) -> str:
    # The doc's "..." is the zero-sleep example above it; its URL goes to a TLS server.
    return (S004_SHUTDOWN_READ + tail).replace("http://example.org/", server.url("/"))


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(S004_SHUTDOWN_SSL_TAIL, id="verbatim-250ms"),
        pytest.param("loop.close()\n", id="no-sleep-at-all"),
    ],
)
async def test_graceful_shutdown_with_ssl(
    seed: SeedRunner, make_tls_server: TLSServerFactory, default_trust: Path, tail: str
) -> None:
    server = make_tls_server("valid")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ns: dict[str, Any] = await seed.program(
            _shutdown_program(server, tail), aiohttp=client, asyncio=asyncio
        )
        gc.collect()
    assert ns["loop"].is_closed()
    assert server.server.requests == 1
    assert [w.message for w in caught if issubclass(w.category, ResourceWarning)] == []
