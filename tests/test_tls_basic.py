"""TLS basics: verification against the test CA, ssl=False, per-setting pooling, shutdown."""

from __future__ import annotations

import asyncio
import gc
import ssl
import warnings
from collections.abc import AsyncIterator

import pytest
from servers import CountingServer, Endpoint, TLSCertificates, TLSServerFactory

from client import (
    ClientConnectorCertificateError,
    ClientSession,
    ClientSSLError,
    TCPConnector,
)


async def fetch(session: ClientSession, url: str, ssl_setting: object) -> bytes:
    async with session.get(url, ssl=ssl_setting) as resp:
        assert resp.status == 200
        return await resp.read()


@pytest.fixture
async def tls_counting_server(tls_certificates: TLSCertificates) -> AsyncIterator[CountingServer]:
    """A CountingServer over TLS (certificate from the test CA) in the test's loop."""
    server = CountingServer(ssl=tls_certificates.server_context("valid"))
    await server.start()
    yield server
    await server.close()


async def test_https_get_with_the_test_ca(
    httpbin_secure: Endpoint, ssl_client_context: ssl.SSLContext
) -> None:
    async with (
        ClientSession() as session,
        session.get(httpbin_secure.url("/get?x=1"), ssl=ssl_client_context) as resp,
    ):
        assert resp.status == 200
        data = await resp.json()
    assert data["url"] == httpbin_secure.url("/get?x=1")
    assert data["args"] == {"x": "1"}


async def test_default_context_rejects_an_unknown_ca(make_tls_server: TLSServerFactory) -> None:
    server = make_tls_server("valid")
    connector = TCPConnector()
    async with ClientSession(connector=connector) as session:
        with pytest.raises(ClientConnectorCertificateError) as info:
            await session.get(server.url())
        assert connector.stats() == {"in_use": 0, "idle": 0, "waiting": 0}
    error = info.value
    assert isinstance(error, ClientSSLError)
    assert isinstance(error, ssl.CertificateError)
    assert isinstance(error.certificate_error, ssl.SSLCertVerificationError)
    assert (error.host, error.port) == ("127.0.0.1", server.port)
    assert server.server.requests == 0


async def test_ssl_false_accepts_a_self_signed_certificate(
    make_tls_server: TLSServerFactory, ssl_client_context: ssl.SSLContext
) -> None:
    server = make_tls_server("self_signed")
    async with ClientSession() as session:
        with pytest.raises(ClientConnectorCertificateError):
            await session.get(server.url(), ssl=ssl_client_context)
        assert await fetch(session, server.url(), False) == b"ok"


async def test_connector_ssl_setting_is_the_request_default(
    make_tls_server: TLSServerFactory, ssl_client_context: ssl.SSLContext
) -> None:
    self_signed = make_tls_server("self_signed")
    async with ClientSession(connector=TCPConnector(ssl=False)) as session:
        assert await fetch(session, self_signed.url(), True) == b"ok"
    valid = make_tls_server("valid")
    async with ClientSession(connector=TCPConnector(ssl=ssl_client_context)) as session:
        assert await fetch(session, valid.url(), True) == b"ok"
        with pytest.raises(ClientConnectorCertificateError):  # a request may still override
            await session.get(self_signed.url(), ssl=ssl_client_context)


async def test_connections_with_different_ssl_settings_are_not_shared(
    make_tls_server: TLSServerFactory, ssl_client_context: ssl.SSLContext
) -> None:
    server = make_tls_server("valid")
    connector = TCPConnector()
    async with ClientSession(connector=connector) as session:
        for _ in range(2):
            assert await fetch(session, server.url(), ssl_client_context) == b"ok"
        assert server.server.handshakes == 1
        assert await fetch(session, server.url(), False) == b"ok"
        assert server.server.handshakes == 2  # ssl=False did not borrow the verified socket
        assert await fetch(session, server.url(), ssl_client_context) == b"ok"
        assert await fetch(session, server.url(), False) == b"ok"
        assert server.server.handshakes == 2  # each setting reuses its own
        assert connector.stats()["idle"] == 2
    assert server.server.requests == 5


async def test_session_close_with_open_tls_connections(
    tls_counting_server: CountingServer, ssl_client_context: ssl.SSLContext
) -> None:
    server = tls_counting_server
    connector = TCPConnector(ssl=ssl_client_context)
    session = ClientSession(connector=connector)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        urls = [server.url("/?delay=0.02")] * 3
        await asyncio.gather(*(fetch(session, url, True) for url in urls))
        assert connector.stats()["idle"] == 3
        # One more connection, busy: its 1 MiB body is left unread.
        resp = await session.get(server.url("/?size=1048576"))
        assert connector.stats()["in_use"] == 1
        loop = asyncio.get_running_loop()
        start = loop.time()
        await session.close()
        assert loop.time() - start < 1
        assert session.closed
        assert connector.closed
        assert connector.stats() == {"in_use": 0, "idle": 0, "waiting": 0}
        assert resp.connection is None or resp.connection.closed
        resp.release()
        del resp
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    await asyncio.wait_for(_all_closed(server), 1)  # the server saw every socket go


async def _all_closed(server: CountingServer) -> None:
    while server.stats.open:
        await asyncio.sleep(0.002)
