"""TLS-01..03: certificate failures, TLS settings never shared by pooling, pins.

The "bad" servers are trustme certificates from the session CA; the client
trusts that CA, so each failure is caused by the one defect under test (and
the system-store default fails on all of them as well).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import ssl
from collections.abc import Iterator

import pytest
import trustme
from servers import TinyTLSServer, TLSCertificates, client_context, http_response, server_context
from servers.faults import FaultServer
from servers.names import LoopbackNames

from client import (
    ClientConnectorCertificateError,
    ClientSession,
    Fingerprint,
    ServerFingerprintMismatch,
    TCPConnector,
)

from .conftest import QUICK
from .support import fetch


class Servers:
    """Tiny threaded HTTPS servers answering ``200 ok``; all closed after the test."""

    def __init__(self) -> None:
        self._started: list[TinyTLSServer] = []

    def start(self, ctx: ssl.SSLContext) -> TinyTLSServer:
        server = TinyTLSServer(ctx)
        server.start()
        self._started.append(server)
        return server

    def close(self) -> None:
        for server in self._started:
            server.close()


@pytest.fixture
def servers() -> Iterator[Servers]:
    started = Servers()
    yield started
    started.close()


async def der_of(port: int) -> bytes:
    """The DER certificate a server presents (read without verifying it)."""
    pem = await asyncio.to_thread(ssl.get_server_certificate, ("127.0.0.1", port))
    return ssl.PEM_cert_to_DER_cert(pem)


def names() -> LoopbackNames:
    return LoopbackNames("a.b.test", "x.a.b.test", "localhost")


# -- TLS-01 ----------------------------------------------------------------------------------


def bad_server(kind: str, ca: trustme.CA, certs: TLSCertificates) -> tuple[ssl.SSLContext, str]:
    """(server context, host to request) for each defect."""
    now = dt.datetime.now(dt.UTC)
    if kind == "self-signed":
        return certs.server_context("self_signed"), "127.0.0.1"
    if kind == "expired":
        leaf = ca.issue_cert("127.0.0.1", not_before=now - dt.timedelta(days=9),
                             not_after=now - dt.timedelta(days=1))  # fmt: skip
        return server_context(leaf), "127.0.0.1"
    if kind == "wrong-host":
        return server_context(ca.issue_cert("other.test")), "localhost"
    if kind == "ip-without-ip-san":
        return server_context(ca.issue_cert("localhost")), "127.0.0.1"
    if kind == "wildcard-deep":
        return server_context(ca.issue_cert("*.b.test")), "x.a.b.test"  # one label only
    return server_context(ca.issue_cert("*.test")), "a.b.test"


BAD_KINDS = ["self-signed", "expired", "wrong-host", "ip-without-ip-san",
             "wildcard-two-labels", "wildcard-deep"]  # fmt: skip


@pytest.mark.parametrize("kind", BAD_KINDS)
async def test_TLS_01_bad_certificates_always_fail(
    servers: Servers, tls_ca: trustme.CA, tls_certificates: TLSCertificates, kind: str
) -> None:
    ctx, host = bad_server(kind, tls_ca, tls_certificates)
    server = servers.start(ctx)
    url = f"https://{host}:{server.port}/"
    trusting = TCPConnector(resolver=names(), ssl=client_context(tls_ca))
    default = TCPConnector(resolver=names())  # the system store
    for connector in (trusting, default):
        async with ClientSession(connector=connector, timeout=QUICK) as session:
            for _ in range(2):  # every time: nothing cached makes the second one pass
                with pytest.raises(ClientConnectorCertificateError):
                    await fetch(session, url)
    assert server.requests == 0


async def test_TLS_01_wildcard_for_one_label_is_fine(servers: Servers, tls_ca: trustme.CA) -> None:
    # The positive control: the same trust, a name a wildcard covers (one label deep;
    # OpenSSL also refuses "*.test" for "a.test": too close to a public suffix).
    server = servers.start(server_context(tls_ca.issue_cert("*.b.test")))
    connector = TCPConnector(resolver=names(), ssl=client_context(tls_ca))
    async with ClientSession(connector=connector, timeout=QUICK) as session:
        assert await fetch(session, f"https://a.b.test:{server.port}/") == b"ok"


# -- TLS-02 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("setting", ["ssl-false", "custom-ca", "server-hostname", "pin"])
async def test_TLS_02_tls_settings_never_share_a_connection(
    servers: Servers, tls_ca: trustme.CA, setting: str
) -> None:
    # The origin's certificate chains to the test CA, which the default context
    # does not trust: a fresh, verified handshake for the default request fails.
    leaf = tls_ca.issue_cert("127.0.0.1", "localhost")
    server = servers.start(server_context(leaf))
    url = f"https://127.0.0.1:{server.port}/"
    trusting = client_context(tls_ca)
    special: dict[str, object] = {
        "ssl-false": {"ssl": False},
        "custom-ca": {"ssl": trusting},
        "server-hostname": {"ssl": trusting, "server_hostname": "localhost"},
        "pin": {"ssl": Fingerprint(await der_sha256(server.port))},
    }
    connector = TCPConnector(ssl=False) if setting == "pin" else TCPConnector()
    async with ClientSession(connector=connector, timeout=QUICK) as session:
        kwargs = special[setting]
        assert isinstance(kwargs, dict)
        assert await fetch(session, url, **kwargs) == b"ok"
        assert connector.stats()["idle"] == 1
        if setting == "pin":
            # The pin-only socket (connector ssl=False) is not lent to an unpinned request
            # on a verifying session either.
            async with ClientSession(timeout=QUICK) as verifying:
                with pytest.raises(ClientConnectorCertificateError):
                    await fetch(verifying, url)
            with pytest.raises(ServerFingerprintMismatch):
                await fetch(session, url, ssl=Fingerprint(b"\0" * 32))
        else:
            with pytest.raises(ClientConnectorCertificateError):
                await fetch(session, url)  # default: verified against the system store
        assert connector.stats()["idle"] == 1  # the special socket stayed apart, unused
    assert server.handshakes >= 2


async def der_sha256(port: int) -> bytes:
    return hashlib.sha256(await der_of(port)).digest()


# -- TLS-03 ----------------------------------------------------------------------------------


async def test_TLS_03_pins(servers: Servers, tls_ca: trustme.CA, fault_server: FaultServer) -> None:
    server = servers.start(server_context(tls_ca.issue_cert("127.0.0.1")))
    url = f"https://127.0.0.1:{server.port}/"
    pin = await der_sha256(server.port)
    connector = TCPConnector(ssl=client_context(tls_ca))
    async with ClientSession(connector=connector, timeout=QUICK) as session:
        assert await fetch(session, url, ssl=Fingerprint(pin)) == b"ok"
        # A mismatch fails after the handshake, before any request byte is written.
        with pytest.raises(ServerFingerprintMismatch):
            await fetch(session, url, ssl=Fingerprint(hashlib.sha256(b"other").digest()))
        assert server.requests == 1
        # md5 and sha1 pins are refused outright.
        for weak in (hashlib.md5(b"x").digest(), hashlib.sha1(b"x").digest()):
            with pytest.raises(ValueError, match="sha256"):
                Fingerprint(weak)
        # A pin on plain http, or across an https->http redirect, fails closed.
        with pytest.raises(ServerFingerprintMismatch):
            await fetch(session, fault_server.url(), ssl=Fingerprint(pin))
        assert fault_server.requests == []
    # A pin does not switch verification off: the right pin on an untrusted chain fails.
    untrusted = servers.start(server_context(trustme.CA().issue_cert("127.0.0.1")))
    untrusted_pin = await der_sha256(untrusted.port)
    async with ClientSession(connector=TCPConnector(ssl=client_context(tls_ca))) as session:
        with pytest.raises(ClientConnectorCertificateError):
            await fetch(
                session, f"https://127.0.0.1:{untrusted.port}/", ssl=Fingerprint(untrusted_pin)
            )
    assert untrusted.requests == 0


async def test_TLS_03_pin_across_https_to_http_redirect(
    tls_certificates: TLSCertificates, ssl_client_context: ssl.SSLContext, fault_server: FaultServer
) -> None:
    tls = FaultServer(ssl=tls_certificates.server_context("valid"))
    await tls.start()
    try:
        pin = await der_sha256(tls.port)
        target = fault_server.url("/landed")
        tls.routes({"/go": lambda _: http_response(302, headers=[("Location", target)])})
        connector = TCPConnector(ssl=ssl_client_context)
        async with ClientSession(connector=connector, timeout=QUICK) as session:
            with pytest.raises(ServerFingerprintMismatch):
                await fetch(session, tls.url("/go"), ssl=Fingerprint(pin))
        assert len(tls.requests) == 1
        assert fault_server.requests == []  # nothing sent in clear text
    finally:
        await tls.close()
