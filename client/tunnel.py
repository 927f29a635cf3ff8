"""Dialing through an HTTP proxy: the proxy leg, ``CONNECT``, then TLS in the tunnel.

For an ``http://`` target the connection to the proxy is the connection: the
request goes out in absolute-form (``exchange``), with ``Proxy-Authorization``
on that request. For ``https://``/``wss://`` targets the proxy is asked to
``CONNECT host:port``; the answer is read with the same strict codec as any
response (a 2xx to CONNECT is a tunnel and must not declare a body), and on
``200`` TLS to the target is started on the same transport with the target's
SNI and verification. Nothing is written into the tunnel before the handshake,
so a bad answer never lets a byte reach the origin (security.md PRX-03).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING

from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .connection import ConnectionKey
from .connector import protocol_factory
from .exceptions import (
    ClientConnectorCertificateError,
    ClientConnectorDNSError,
    ClientConnectorError,
    ClientConnectorSSLError,
    ClientHttpProxyError,
    ClientProxyConnectionError,
    ClientSSLError,
    ConnectionTimeoutError,
    HttpProcessingError,
)
from .helpers import Fingerprint
from .proxy import connect_request
from .reqinfo import RequestInfo
from .timeouts import ClientTimeout, active
from .tls import context_for, verified_context

if TYPE_CHECKING:
    from .protocol import ResponseProtocol
    from .tcp import TCPConnector
    from .tracing import Trace

__all__ = ("dial_via_proxy",)

# The CONNECT answer is parsed with the default limits (line, field, count).
_LIMITS = (8190, 8190, 128)


async def dial_via_proxy(
    connector: TCPConnector,
    key: ConnectionKey,
    timeout: ClientTimeout,
    traces: list[Trace] | None,
) -> ResponseProtocol:
    """A protocol speaking to ``key``'s target through ``key.proxy``."""
    setting = connector.ssl if key.ssl is True else key.ssl
    protocol = await _dial_proxy(connector, key, setting, timeout, traces)
    if key.connect_headers is None:
        return protocol  # forwarding: requests go to the proxy in absolute-form
    try:
        limit = active(timeout.sock_connect)
        try:
            async with asyncio.timeout(limit) as cm:
                await _connect(protocol, key, timeout)
                if not key.is_ssl:
                    return _plain_tunnel(protocol)
                context = context_for(setting, connector.ssl)
                return await _start_tls(protocol, key, setting, context, limit)
        except TimeoutError as exc:
            if cm.expired():
                raise ConnectionTimeoutError(
                    f"Connection timeout to host {key.host}:{key.port} via proxy {key.proxy}"
                ) from exc
            raise
    except BaseException:
        protocol.abort()
        raise


async def _dial_proxy(
    connector: TCPConnector,
    key: ConnectionKey,
    setting: object,
    timeout: ClientTimeout,
    traces: list[Trace] | None,
) -> ResponseProtocol:
    """TCP (and TLS, for an ``https://`` proxy) to the proxy itself."""
    proxy: URL = key.proxy
    assert proxy.raw_host is not None
    # The proxy's certificate is checked like the target's would be, but a pin
    # is the target's: the proxy leg uses plain verification instead.
    proxy_ssl = verified_context() if isinstance(setting, Fingerprint) else setting
    proxy_key = ConnectionKey(
        proxy.raw_host, proxy.port, proxy.scheme == "https", proxy_ssl, None, None, None
    )
    try:
        return await connector._dial(proxy_key, timeout, traces)
    except (ClientConnectorDNSError, ClientSSLError):
        raise
    except ClientConnectorError as exc:
        raise ClientProxyConnectionError(proxy_key, exc.os_error) from exc


async def _connect(protocol: ResponseProtocol, key: ConnectionKey, timeout: ClientTimeout) -> None:
    """Send CONNECT and read the answer; anything but a clean ``200`` raises."""
    assert key.port is not None
    headers: CIMultiDict[str] | None = None
    if key.connect_headers:
        headers = CIMultiDict(key.connect_headers)
    request = connect_request(key.host, key.port, key.proxy_auth, headers)
    info = _request_info(key, headers)
    head_future = protocol.start_exchange(
        "CONNECT", read_bufsize=2**16, auto_decompress=False, limits=_LIMITS
    )
    try:
        protocol.write(request)
        protocol.start_read_timeout(active(timeout.sock_read))
        head, _ = await head_future
    except HttpProcessingError as exc:
        raise ClientHttpProxyError(
            info, (), status=exc.code, message=f"Invalid answer to CONNECT: {exc.message or exc}"
        ) from exc
    finally:
        if not head_future.done():
            head_future.cancel()
    if head.status != 200:
        raise ClientHttpProxyError(
            info,
            (),
            status=head.status,
            message=head.reason,
            headers=CIMultiDictProxy(head.headers),
        )
    if protocol.take_trailing():
        # The target speaks first in TLS only after our ClientHello: bytes now
        # are the proxy's, and would be taken for the handshake.
        raise ClientHttpProxyError(
            info, (), status=head.status, message="Proxy sent data after 200 to CONNECT"
        )


def _plain_tunnel(protocol: ResponseProtocol) -> ResponseProtocol:
    """A ``ws://`` tunnel: a fresh protocol on the same transport (the old one is spent)."""
    transport = protocol.transport
    assert transport is not None
    fresh = protocol_factory(asyncio.get_running_loop())()
    transport.set_protocol(fresh)
    fresh.connection_made(transport)
    return fresh


async def _start_tls(
    protocol: ResponseProtocol,
    key: ConnectionKey,
    setting: object,
    context: ssl.SSLContext,
    limit: float | None,
) -> ResponseProtocol:
    """TLS to the target over the tunnel; errors as for a direct TLS connection."""
    loop = asyncio.get_running_loop()
    transport = protocol.transport
    assert transport is not None
    tls_protocol = protocol_factory(loop)()
    try:
        tls_transport = await loop.start_tls(
            transport,
            tls_protocol,
            context,
            server_hostname=key.server_hostname or key.host.rstrip("."),
            ssl_handshake_timeout=limit,
        )
    except (ssl.SSLCertVerificationError, ssl.CertificateError) as exc:
        raise ClientConnectorCertificateError(key, exc) from exc
    except ssl.SSLError as exc:
        raise ClientConnectorSSLError(key, exc) from exc
    except ConnectionError as exc:
        raise ClientProxyConnectionError(key, exc) from exc
    assert isinstance(tls_transport, asyncio.Transport)
    tls_protocol.connection_made(tls_transport)  # start_tls does not call it
    if isinstance(setting, Fingerprint):
        try:
            setting.check(tls_transport)
        except BaseException:
            tls_protocol.abort()
            raise
    return tls_protocol


def _request_info(key: ConnectionKey, headers: CIMultiDict[str] | None) -> RequestInfo:
    """What an error about the CONNECT shows: the tunnel target, never credentials."""
    url = URL.build(scheme="https" if key.is_ssl else "http", host=key.host, port=key.port)
    shown: CIMultiDict[str] = CIMultiDict(headers or ())
    shown.popall("Proxy-Authorization", None)
    return RequestInfo(url, "CONNECT", CIMultiDictProxy(shown), url)
