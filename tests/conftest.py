"""Shared fixtures: real servers on 127.0.0.1 for every test (see tests/servers/)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trustme
from servers import (
    BackgroundLoop,
    CountingServer,
    Endpoint,
    ScriptedServer,
    SecureHttpbin,
    TLSCertificates,
    TLSServerFactory,
    WaitressThread,
    client_context,
    httpbin_app,
    unused_tcp_port,
)
from servers.docs_tree import DocsManifest, write_docs_tree
from servers.site import GeneratedSite


@pytest.fixture(scope="session")
def background_loop() -> Iterator[BackgroundLoop]:
    """An event loop in a daemon thread (it hosts httpbin_secure's TLS terminator)."""
    bg = BackgroundLoop()
    yield bg
    bg.close()


@pytest.fixture(scope="session")
def httpbin() -> Iterator[Endpoint]:
    """httpbin on waitress (32 threads): ``.host``, ``.port``, ``.base``, ``.url(path)``."""
    server = WaitressThread(httpbin_app())
    server.start()
    yield Endpoint(server.host, server.port, "http")
    server.stop()


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    """The session's certificate authority; every test server cert but self_signed."""
    return trustme.CA()


@pytest.fixture(scope="session")
def tls_certificates(tls_ca: trustme.CA) -> TLSCertificates:
    """Server contexts per TLS kind, and a client certificate, from ``tls_ca``."""
    return TLSCertificates(tls_ca)


@pytest.fixture(scope="session")
def httpbin_secure(tls_ca: trustme.CA, background_loop: BackgroundLoop) -> Iterator[Endpoint]:
    """httpbin over TLS (cert for 127.0.0.1 and localhost); ``.base`` is https://..."""
    server = SecureHttpbin(tls_ca, background_loop)
    yield server.start()
    server.stop()


@pytest.fixture(scope="session")
def ssl_client_context(tls_ca: trustme.CA) -> ssl.SSLContext:
    """A verifying client SSLContext trusting only ``tls_ca``. Shared: don't mutate it;
    build your own with ``tests.servers.client_context(tls_ca)``."""
    return client_context(tls_ca)


@pytest.fixture
def make_tls_server(tls_certificates: TLSCertificates) -> Iterator[TLSServerFactory]:
    """``make_tls_server(kind)`` -> TLSServer answering ``200 ok``; stopped after the test."""
    factory = TLSServerFactory(tls_certificates)
    yield factory
    factory.close()


@pytest.fixture
async def scripted_server() -> AsyncIterator[ScriptedServer]:
    """A started ScriptedServer in the test's loop; configure with .script()/.serve()."""
    server = ScriptedServer()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def counting_server() -> AsyncIterator[CountingServer]:
    """A started CountingServer (body b"ok") in the test's loop."""
    server = CountingServer()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
def unused_port() -> int:
    """A loopback TCP port with nothing listening on it (for connection-refused tests)."""
    return unused_tcp_port()


@pytest.fixture
def generated_site() -> Iterator[GeneratedSite]:
    """Issue 5: 5,000 computed pages plus an "external" companion server, on a background loop."""
    with GeneratedSite(5000) as site:
        yield site


@pytest.fixture
def docs_tree(tmp_path: Path, generated_site: GeneratedSite) -> DocsManifest:
    """31 Markdown/HTML files linking each other and generated_site, with their manifest."""
    return write_docs_tree(tmp_path / "docs-tree", generated_site)
