"""TLS end to end: verification failures, pins, pooling by TLS setting, old parameters.

Every server here is real (threaded stdlib TLS, asyncio TLS, httpbin behind a
TLS terminator) and every certificate comes from the session's trustme CA, or
is self-signed. security.md TLS-01..03 are the acceptance checks.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import ssl
import subprocess
import sys
import textwrap
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from servers import (
    CountingServer,
    Endpoint,
    ScriptedConnection,
    ScriptedServer,
    TinyTLSServer,
    TLSServerFactory,
    client_context,
    server_context,
)
from servers.names import LoopbackNames

from client import (
    ClientConnectionError,
    ClientConnectorCertificateError,
    ClientConnectorSSLError,
    ClientOSError,
    ClientSession,
    ClientSSLError,
    Fingerprint,
    FingerprintMismatch,
    ServerDisconnectedError,
    ServerFingerprintMismatch,
    TCPConnector,
)

MD5_LEN, SHA1_LEN = 16, 20


@dataclass
class CertServer:
    """A tiny HTTPS server (``200 ok``) presenting a certificate we issued ourselves."""

    server: TinyTLSServer
    leaf: trustme.LeafCert | None
    der: bytes

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def pin(self) -> Fingerprint:
        """A correct pin of this server's certificate."""
        return Fingerprint(hashlib.sha256(self.der).digest())

    def url(self, host: str = "127.0.0.1", path: str = "/") -> str:
        return f"https://{host}:{self.port}{path}"


CertServerFactory = Callable[..., CertServer]


def der_of(leaf: trustme.LeafCert) -> bytes:
    return ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())


@pytest.fixture
def cert_server(tls_ca: trustme.CA) -> Iterator[CertServerFactory]:
    """``cert_server(*names)``: a server whose certificate names exactly *names*."""
    started: list[TinyTLSServer] = []

    def start(*names: str) -> CertServer:
        leaf = tls_ca.issue_cert(*names)
        server = TinyTLSServer(server_context(leaf))
        server.start()
        started.append(server)
        return CertServer(server, leaf, der_of(leaf))

    yield start
    for server in started:
        server.close()


def names_connector(*names: str, ssl_setting: object = True) -> TCPConnector:
    """A connector resolving *names* (only) to 127.0.0.1."""
    return TCPConnector(resolver=LoopbackNames(*names), ssl=ssl_setting)


async def get_ok(session: ClientSession, url: str, **kwargs: object) -> None:
    async with session.get(url, **kwargs) as resp:  # type: ignore[arg-type]
        assert resp.status == 200
        assert await resp.read() == b"ok"


async def peer_digest(endpoint: Endpoint) -> bytes:
    """SHA-256 of the certificate a server presents (fetched without verification)."""
    pem = await asyncio.to_thread(ssl.get_server_certificate, (endpoint.host, endpoint.port))
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).digest()


# -- the default context: lazy, cached ------------------------------------------------


def test_import_builds_no_ssl_context() -> None:
    """``import client`` creates no SSLContext; the first use builds exactly one."""
    code = textwrap.dedent(
        """
        import ssl
        built = []
        original = ssl.SSLContext.__new__
        def counting_new(cls, *args, **kwargs):
            built.append(cls)
            return original(cls, *args, **kwargs)
        ssl.SSLContext.__new__ = counting_new
        import client, client.tls
        print(len(built))
        assert client.tls.verified_context() is client.tls.verified_context()
        print(len(built))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[1],  # the repository root: `client` is there
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert done.stdout.split() == ["0", "1"]


# -- TLS-01: bad certificates fail, every time -------------------------------------------


@pytest.mark.parametrize("kind", ["expired", "wrong_host", "self_signed"])
async def test_bad_certificates_fail_with_a_certificate_error_every_time(
    make_tls_server: TLSServerFactory, ssl_client_context: ssl.SSLContext, kind: str
) -> None:
    server = make_tls_server(kind)  # type: ignore[arg-type]
    connector = TCPConnector()
    async with ClientSession(connector=connector) as session:
        # The system trust store and a context trusting our CA both refuse it.
        for setting in (True, ssl_client_context, True, ssl_client_context):
            with pytest.raises(ClientConnectorCertificateError) as info:
                await session.get(server.url(), ssl=setting)
            error = info.value
            assert isinstance(error, ClientSSLError)
            assert isinstance(error, ssl.CertificateError)
            assert isinstance(error, ssl.SSLError)
            assert isinstance(error.certificate_error, ssl.SSLCertVerificationError)
            assert isinstance(error.__cause__, ssl.SSLCertVerificationError)
            assert "certificate verify failed" in str(error)
            assert (error.host, error.port) == ("127.0.0.1", server.port)
        assert connector.stats() == {"in_use": 0, "idle": 0, "waiting": 0}
    assert server.server.handshakes == 0
    assert server.server.requests == 0


async def test_ip_literal_needs_an_ip_san(
    cert_server: CertServerFactory, ssl_client_context: ssl.SSLContext
) -> None:
    server = cert_server("localhost")  # a DNS name only: no IP address SAN
    async with ClientSession(connector=names_connector("localhost")) as session:
        with pytest.raises(ClientConnectorCertificateError, match="IP address mismatch"):
            await session.get(server.url("127.0.0.1"), ssl=ssl_client_context)
        await get_ok(session, server.url("localhost"), ssl=ssl_client_context)


@pytest.mark.parametrize(
    ("pattern", "host", "valid"),
    [
        ("*.test", "a.b.test", False),  # a wildcard covers one label only
        ("*.test", "b.test", False),  # and never a whole top-level domain
        ("*.b.test", "a.b.test", True),
        ("*.b.test", "b.test", False),
        ("*.b.test", "x.a.b.test", False),
    ],
)
async def test_wildcard_certificates(
    cert_server: CertServerFactory,
    ssl_client_context: ssl.SSLContext,
    pattern: str,
    host: str,
    valid: bool,
) -> None:
    server = cert_server(pattern)
    async with ClientSession(connector=names_connector(host)) as session:
        if valid:
            await get_ok(session, server.url(host), ssl=ssl_client_context)
        else:
            with pytest.raises(ClientConnectorCertificateError, match="Hostname mismatch"):
                await session.get(server.url(host), ssl=ssl_client_context)
    assert server.server.requests == (1 if valid else 0)


async def test_server_hostname_is_what_gets_verified(
    cert_server: CertServerFactory, ssl_client_context: ssl.SSLContext
) -> None:
    server = cert_server("localhost")
    async with ClientSession(connector=TCPConnector(ssl=ssl_client_context)) as session:
        await get_ok(session, server.url("127.0.0.1"), server_hostname="localhost")
        with pytest.raises(ClientConnectorCertificateError, match="Hostname mismatch"):
            await session.get(server.url("127.0.0.1"), server_hostname="other.test")
        # TLS-02: the socket verified for "localhost" is not lent to a default request.
        with pytest.raises(ClientConnectorCertificateError, match="IP address mismatch"):
            await session.get(server.url("127.0.0.1"))
    assert server.server.handshakes == 1


# -- client certificates and handshake errors ---------------------------------------------


async def test_client_certificate_loaded_into_a_context(
    make_tls_server: TLSServerFactory, tls_ca: trustme.CA
) -> None:
    server = make_tls_server("client_cert_required")
    assert server.client_cert is not None
    with_cert = client_context(tls_ca)
    server.client_cert.configure_cert(with_cert)
    async with ClientSession() as session:
        await get_ok(session, server.url(), ssl=with_cert)
        await get_ok(session, server.url(), ssl=with_cert)  # pooled
    assert (server.server.handshakes, server.server.requests) == (1, 2)


async def test_missing_client_certificate_tls13(
    make_tls_server: TLSServerFactory, ssl_client_context: ssl.SSLContext
) -> None:
    """In TLS 1.3 the server refuses after our side of the handshake is done.

    The refusal (a ``certificate_required`` alert, or the reset after it when
    we are still writing) ends the exchange, not the connect.
    """
    server = make_tls_server("client_cert_required")
    async with ClientSession() as session:
        for _ in range(3):
            with pytest.raises(ClientConnectionError) as info:
                await session.get(server.url(), ssl=ssl_client_context)
            assert isinstance(info.value, ServerDisconnectedError | ClientOSError)
            assert isinstance(info.value.__cause__, OSError)  # ssl.SSLError is one
    assert (server.server.handshakes, server.server.requests) == (0, 0)


async def test_missing_client_certificate_tls12_is_a_connector_ssl_error(
    make_tls_server: TLSServerFactory, tls_ca: trustme.CA
) -> None:
    server = make_tls_server("client_cert_required")
    tls12 = client_context(tls_ca)
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    async with ClientSession() as session:
        with pytest.raises(ClientConnectorSSLError) as info:
            await session.get(server.url(), ssl=tls12)
    error = info.value
    assert isinstance(error, ssl.SSLError)
    assert isinstance(error, ClientSSLError)
    assert not isinstance(error, ssl.CertificateError)
    assert "HANDSHAKE_FAILURE" in str(error.__cause__)


async def test_https_to_a_plain_http_port_is_a_connector_ssl_error(
    counting_server: CountingServer,
) -> None:
    async with ClientSession() as session:
        with pytest.raises(ClientConnectorSSLError) as info:
            await session.get(f"https://127.0.0.1:{counting_server.port}/", ssl=False)
    assert isinstance(info.value, ssl.SSLError)
    assert isinstance(info.value.__cause__, ssl.SSLError)
    assert counting_server.stats.requests == 0


# -- TLS-02: different TLS settings never share a connection ---------------------------------


async def test_ssl_false_then_default_does_a_fresh_verified_handshake(
    make_tls_server: TLSServerFactory, ssl_client_context: ssl.SSLContext
) -> None:
    server = make_tls_server("self_signed")
    connector = TCPConnector(ssl=ssl_client_context)
    async with ClientSession(connector=connector) as session:
        await get_ok(session, server.url(), ssl=False)
        assert connector.stats()["idle"] == 1
        for _ in range(2):
            with pytest.raises(ClientConnectorCertificateError):
                await session.get(server.url())
        await get_ok(session, server.url(), ssl=False)  # its own socket, reused
    assert (server.server.handshakes, server.server.requests) == (1, 2)


async def test_client_cert_connection_is_not_lent_to_a_request_without_one(
    make_tls_server: TLSServerFactory, tls_ca: trustme.CA, ssl_client_context: ssl.SSLContext
) -> None:
    server = make_tls_server("client_cert_required")
    assert server.client_cert is not None
    with_cert = client_context(tls_ca)
    server.client_cert.configure_cert(with_cert)
    async with ClientSession(connector=TCPConnector(ssl=ssl_client_context)) as session:
        await get_ok(session, server.url(), ssl=with_cert)
        with pytest.raises(ClientConnectionError):  # own handshake, refused by the server
            await session.get(server.url())
    assert (server.server.handshakes, server.server.requests) == (1, 1)


async def test_pinned_and_default_requests_use_separate_connections(
    cert_server: CertServerFactory, ssl_client_context: ssl.SSLContext
) -> None:
    server = cert_server("127.0.0.1")
    connector = TCPConnector(ssl=ssl_client_context)
    async with ClientSession(connector=connector) as session:
        await get_ok(session, server.url(), ssl=server.pin)
        await get_ok(session, server.url())
        assert server.server.handshakes == 2
        await get_ok(session, server.url(), ssl=Fingerprint(server.pin.fingerprint))  # equal pin
        await get_ok(session, server.url())
        assert connector.stats()["idle"] == 2
    assert (server.server.handshakes, server.server.requests) == (2, 4)


# -- TLS-03: pins ---------------------------------------------------------------------------------


@dataclass
class RecordingTLSServer:
    """An asyncio TLS server keeping every byte each connection received."""

    server: ScriptedServer
    der: bytes
    received: list[bytes]

    async def wait_for_connections(self, count: int) -> None:
        while len(self.received) < count:
            await asyncio.sleep(0.005)


@pytest.fixture
async def recording_tls_server(tls_ca: trustme.CA) -> AsyncIterator[RecordingTLSServer]:
    leaf = tls_ca.issue_cert("127.0.0.1")
    server = ScriptedServer(ssl=server_context(leaf))
    recording = RecordingTLSServer(server, der_of(leaf), [])

    async def record(conn: ScriptedConnection) -> None:
        data = bytearray()
        try:  # until EOF or a reset: an aborting client resets
            while chunk := await conn.reader.read(65536):
                data += chunk
        finally:
            recording.received.append(bytes(data))

    server.serve(record)
    await server.start()
    yield recording
    await server.close()


async def test_pin_mismatch_fails_before_any_request_byte(
    recording_tls_server: RecordingTLSServer, ssl_client_context: ssl.SSLContext
) -> None:
    server = recording_tls_server.server
    wrong = bytes(32)
    async with ClientSession(connector=TCPConnector(ssl=ssl_client_context)) as session:
        with pytest.raises(FingerprintMismatch) as info:
            await session.post(server.url(), data=b"secret", ssl=Fingerprint(wrong))
    error = info.value
    assert isinstance(error, ServerFingerprintMismatch)
    assert error.expected == wrong
    assert error.got == hashlib.sha256(recording_tls_server.der).digest()
    assert (error.host, error.port) == ("127.0.0.1", server.port)
    await asyncio.wait_for(recording_tls_server.wait_for_connections(1), 5)
    assert recording_tls_server.received == [b""]


@pytest.mark.parametrize("length", [MD5_LEN, SHA1_LEN, 31, 33, 64])
def test_only_sha256_pins_are_accepted(length: int) -> None:
    with pytest.raises(ValueError, match="md5 and sha1" if length in (16, 20) else "length"):
        Fingerprint(b"\x00" * length)


async def test_sha1_pin_through_the_deprecated_parameter_is_refused(
    make_tls_server: TLSServerFactory,
) -> None:
    server = make_tls_server("valid")
    async with ClientSession() as session:
        with (
            pytest.warns(DeprecationWarning, match="fingerprint"),
            pytest.raises(ValueError, match="md5 and sha1"),
        ):
            await session.get(server.url(), fingerprint=b"\x00" * SHA1_LEN)
    with (
        pytest.warns(DeprecationWarning, match="fingerprint"),
        pytest.raises(ValueError, match="md5 and sha1"),
    ):
        TCPConnector(fingerprint=b"\x00" * MD5_LEN)
    assert server.server.handshakes == 0


async def test_pin_on_an_http_url_is_an_error_not_a_silent_pass(unused_port: int) -> None:
    pin = Fingerprint(bytes(32))
    url = f"http://127.0.0.1:{unused_port}/"
    async with ClientSession() as session:
        # A mismatch, not a connection error: nothing was dialled at all.
        with pytest.raises(ServerFingerprintMismatch) as info:
            await session.get(url, ssl=pin)
    assert (info.value.expected, info.value.got) == (pin.fingerprint, b"")
    async with ClientSession(connector=TCPConnector(ssl=pin)) as session:
        with pytest.raises(ServerFingerprintMismatch):
            await session.get(url)
        # On plain http a request's ssl=False changes nothing: the connector's pin holds.
        with pytest.raises(ServerFingerprintMismatch):
            await session.get(url, ssl=False)


async def test_pin_fails_an_https_to_http_redirect(
    httpbin_secure: Endpoint,
    counting_server: CountingServer,
    ssl_client_context: ssl.SSLContext,
) -> None:
    pin = Fingerprint(await peer_digest(httpbin_secure))
    target = counting_server.url("/landing")
    url = httpbin_secure.url(f"/redirect-to?url={target}&status_code=302")
    async with ClientSession(connector=TCPConnector(ssl=ssl_client_context)) as session:
        with pytest.raises(ServerFingerprintMismatch):
            await session.get(url, ssl=pin)
        # The same pin without the downgrade passes (and proves the pin is right).
        async with session.get(httpbin_secure.url("/get"), ssl=pin) as resp:
            assert resp.status == 200
    assert counting_server.stats.connections == 0


async def test_pin_does_not_switch_verification_off(
    cert_server: CertServerFactory,
    make_tls_server: TLSServerFactory,
    ssl_client_context: ssl.SSLContext,
) -> None:
    wrong_host = cert_server("wrong-host.test")  # from our CA, but for another name
    self_signed = make_tls_server("self_signed")
    self_signed_pin = Fingerprint(await peer_digest(self_signed.endpoint))
    async with ClientSession(connector=TCPConnector(ssl=ssl_client_context)) as session:
        with pytest.raises(ClientConnectorCertificateError, match="IP address mismatch"):
            await session.get(wrong_host.url(), ssl=wrong_host.pin)
        with pytest.raises(ClientConnectorCertificateError, match="self-signed"):
            await session.get(self_signed.url(), ssl=self_signed_pin)
        # On top of the connector's context: a correct pin to a host it verifies passes.
        good = cert_server("127.0.0.1")
        await get_ok(session, good.url(), ssl=good.pin)


async def test_pin_only_when_the_connector_says_ssl_false(
    make_tls_server: TLSServerFactory,
) -> None:
    """``TCPConnector(ssl=False)`` plus a pinned request: the pin alone decides (aiohttp's way)."""
    server = make_tls_server("self_signed")
    pin = Fingerprint(await peer_digest(server.endpoint))
    async with ClientSession(connector=TCPConnector(ssl=False)) as session:
        await get_ok(session, server.url(), ssl=pin)
        with pytest.raises(ServerFingerprintMismatch):
            await session.get(server.url(), ssl=Fingerprint(bytes(32)))
    async with ClientSession(connector=TCPConnector(ssl=pin)) as session:
        with pytest.raises(ClientConnectorCertificateError):  # a connector pin verifies
            await session.get(server.url())


# -- the old parameters ------------------------------------------------------------------------


async def test_deprecated_parameters_still_work(
    make_tls_server: TLSServerFactory, ssl_client_context: ssl.SSLContext
) -> None:
    self_signed = make_tls_server("self_signed")
    valid = make_tls_server("valid")
    digest = await peer_digest(valid.endpoint)
    async with ClientSession(connector=TCPConnector(ssl=ssl_client_context)) as session:
        with pytest.warns(DeprecationWarning, match="verify_ssl"):
            await get_ok(session, self_signed.url(), verify_ssl=False)
        with pytest.warns(DeprecationWarning, match="fingerprint"):
            await get_ok(session, valid.url(), fingerprint=digest)
        with pytest.warns(DeprecationWarning, match="fingerprint"):
            with pytest.raises(ServerFingerprintMismatch):
                await session.get(valid.url(), fingerprint=bytes(32))
    async with ClientSession() as session:
        with pytest.warns(DeprecationWarning, match="ssl_context"):
            await get_ok(session, valid.url(), ssl_context=ssl_client_context)
    with pytest.warns(DeprecationWarning, match="verify_ssl"):
        connector = TCPConnector(verify_ssl=False)
    assert connector.ssl is False
    async with ClientSession(connector=connector) as session:
        await get_ok(session, self_signed.url())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"verify_ssl": False, "ssl_context": ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)},
        {"verify_ssl": False, "fingerprint": bytes(32)},
        {"ssl_context": ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), "fingerprint": bytes(32)},
        {"ssl": False, "fingerprint": bytes(32)},
        {"ssl": Fingerprint(bytes(32)), "verify_ssl": True},
    ],
)
async def test_ssl_parameters_are_mutually_exclusive(
    kwargs: dict[str, object], counting_server: CountingServer
) -> None:
    with pytest.raises(ValueError, match="mutually exclusive"):
        TCPConnector(**kwargs)  # type: ignore[arg-type]
    async with ClientSession() as session:
        with pytest.raises(ValueError, match="mutually exclusive"):
            await session.get(counting_server.url(), **kwargs)  # type: ignore[arg-type]
    assert counting_server.stats.connections == 0


@pytest.mark.parametrize("bad", ["yes", 1, b"\x00" * 32])
async def test_ssl_must_be_bool_context_or_fingerprint(bad: object) -> None:
    with pytest.raises(TypeError, match="ssl should be"):
        TCPConnector(ssl=bad)
    async with ClientSession() as session:
        with pytest.raises(TypeError, match="ssl should be"):
            await session.get("https://127.0.0.1:1/", ssl=bad)


# -- graceful shutdown ---------------------------------------------------------------------------


def _program_without_sleep(urls: list[str], ctx: ssl.SSLContext) -> list[int]:
    """A script's life: its own loop, TLS requests, close, loop closed at once."""

    async def main() -> list[int]:
        statuses = []
        async with ClientSession(connector=TCPConnector(ssl=ctx)) as session:
            for url in urls:
                async with session.get(url) as resp:
                    statuses.append(resp.status)
                    await resp.read()
            # One more left busy: its body is never read.
            busy = await session.get(urls[0].replace("/get", "/bytes/100000"))
            statuses.append(busy.status)
        return statuses

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(main())  # no sleep of any length after this
    finally:
        loop.close()


async def test_closing_a_tls_session_needs_no_sleep(
    httpbin_secure: Endpoint,
    make_tls_server: TLSServerFactory,
    ssl_client_context: ssl.SSLContext,
) -> None:
    tiny = make_tls_server("valid")
    urls = [httpbin_secure.url("/get"), tiny.url("/get"), httpbin_secure.url("/get?x=1")]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        statuses = await asyncio.to_thread(_program_without_sleep, urls, ssl_client_context)
        gc.collect()
    assert statuses == [200, 200, 200, 200]
    assert [w.message for w in caught if issubclass(w.category, ResourceWarning)] == []
