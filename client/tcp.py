"""``TCPConnector`` and ``UnixConnector``: the only code that opens sockets.

Dialing is resolve (DNS cache, one lookup in flight per host) → the address
policy, if any, on each numeric address → connect to each allowed address in
turn under ``sock_connect`` → TLS inside ``create_connection`` → fingerprint
check. OS and TLS errors become aiohttp's connector errors here, once, with the
original as ``__cause__``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from ssl import SSLContext
from typing import TYPE_CHECKING, Any

from .address_policy import AddressCheck, permitted, refuse_proxy
from .connection import ConnectionKey
from .connector import BaseConnector, protocol_factory
from .exceptions import (
    ClientConnectorCertificateError,
    ClientConnectorDNSError,
    ClientConnectorError,
    ClientConnectorSSLError,
    ConnectionTimeoutError,
    ServerFingerprintMismatch,
    UnixClientConnectorError,
)
from .helpers import Fingerprint, is_ip_address
from .resolver import AbstractResolver, DefaultResolver, DNSCache, ResolveResult
from .timeouts import ClientTimeout, active
from .tls import context_for, merge_ssl_args
from .tunnel import dial_via_proxy

if TYPE_CHECKING:
    from .protocol import ResponseProtocol
    from .tracing import Trace

__all__ = ("TCPConnector", "UnixConnector")


class TCPConnector(BaseConnector):
    """Connections over TCP (and TLS), with aiohttp's options and defaults.

    ``address_policy`` is ours: ``(numeric address, port) -> allowed``, e.g.
    ``client.deny_private()``, checked on the exact address each socket connects
    to (see ``client.address_policy``); with a policy, proxies are refused.
    """

    def __init__(
        self,
        *,
        ssl: Any = True,
        verify_ssl: bool | None = None,
        fingerprint: bytes | None = None,
        ssl_context: Any = None,
        use_dns_cache: bool = True,
        ttl_dns_cache: float | None = 10,
        dns_cache_max_size: int = 1000,
        family: int = 0,
        local_addr: tuple[str, int] | None = None,
        resolver: AbstractResolver | None = None,
        keepalive_timeout: float | object | None = ...,
        force_close: bool = False,
        limit: int = 100,
        limit_per_host: int = 0,
        enable_cleanup_closed: bool = False,
        timeout_ceil_threshold: float = 5,
        happy_eyeballs_delay: float | None = 0.25,
        interleave: int | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        address_policy: AddressCheck | None = None,
    ) -> None:
        super().__init__(
            keepalive_timeout=keepalive_timeout,
            force_close=force_close,
            limit=limit,
            limit_per_host=limit_per_host,
            enable_cleanup_closed=enable_cleanup_closed,
            timeout_ceil_threshold=timeout_ceil_threshold,
            loop=loop,
        )
        self._ssl = merge_ssl_args(ssl, verify_ssl, ssl_context, fingerprint)
        self._use_dns_cache = use_dns_cache
        self._dns_cache = DNSCache(
            ttl=ttl_dns_cache if use_dns_cache else 0, max_size=dns_cache_max_size
        )
        self._resolver = resolver
        self._resolver_owner = resolver is None
        self._family = family
        self._local_addr = local_addr
        self._address_policy = address_policy

    @property
    def address_policy(self) -> AddressCheck | None:
        """The address policy every dial is checked against (``None``: any address)."""
        return self._address_policy

    @property
    def ssl(self) -> Any:
        """The connector-wide ``ssl=`` default (requests may override it)."""
        return self._ssl

    @property
    def family(self) -> int:
        return self._family

    @property
    def use_dns_cache(self) -> bool:
        return self._use_dns_cache

    def clear_dns_cache(self, host: str | None = None, port: int | None = None) -> None:
        self._dns_cache.clear(host, port)

    async def _close_resources(self) -> None:
        if self._resolver is not None and self._resolver_owner:
            await self._resolver.close()

    # -- dialing ---------------------------------------------------------------

    async def _dial(
        self, key: ConnectionKey, timeout: ClientTimeout, traces: list[Trace] | None
    ) -> ResponseProtocol:
        # A request's ssl=True means "the connector's setting" (aiohttp's _get_ssl_context).
        setting = self._ssl if key.ssl is True else key.ssl
        if not key.is_ssl and isinstance(setting, Fingerprint):
            # A pin on plain HTTP (or after an https->http redirect) fails closed,
            # before any byte is sent: there is no certificate to check (TLS-03).
            raise ServerFingerprintMismatch(setting.fingerprint, b"", key.host, key.port or 0)
        policy = self._address_policy
        if key.proxy is not None:
            if policy is not None:
                raise refuse_proxy(key)  # the proxy, not us, picks the address (SSRF-01)
            return await dial_via_proxy(self, key, timeout, traces)
        addresses = await self._resolve(key, traces)
        if policy is not None:
            # Checked here, on the numeric addresses create_connection gets (SSRF-03).
            addresses = permitted(policy, key, addresses)
        ssl_context = context_for(setting, self._ssl) if key.is_ssl else None
        sni = (key.server_hostname or key.host.rstrip(".")) if ssl_context is not None else None
        last_error: BaseException | None = None
        for address in addresses:
            try:
                protocol = await self._connect_one(address, ssl_context, sni, timeout)
            except ssl.SSLCertVerificationError as exc:
                raise ClientConnectorCertificateError(key, exc) from exc
            except ssl.CertificateError as exc:
                raise ClientConnectorCertificateError(key, exc) from exc
            except ssl.SSLError as exc:
                raise ClientConnectorSSLError(key, exc) from exc
            except (OSError, ConnectionTimeoutError) as exc:
                last_error = exc
                continue
            if isinstance(setting, Fingerprint):
                try:
                    assert protocol.transport is not None
                    setting.check(protocol.transport)
                except BaseException:
                    protocol.abort()
                    raise
            return protocol
        if isinstance(last_error, ConnectionTimeoutError):
            raise last_error
        os_error = last_error if isinstance(last_error, OSError) else OSError(0, "no address")
        raise ClientConnectorError(key, os_error) from last_error

    async def _connect_one(
        self,
        address: ResolveResult,
        ssl_context: SSLContext | None,
        sni: str | None,
        timeout: ClientTimeout,
    ) -> ResponseProtocol:
        loop = asyncio.get_running_loop()
        limit = active(timeout.sock_connect)
        try:
            async with asyncio.timeout(limit) as cm:
                _, protocol = await loop.create_connection(
                    protocol_factory(loop),
                    address["host"],
                    address["port"],
                    ssl=ssl_context,
                    server_hostname=sni,
                    family=address["family"],
                    proto=address["proto"],
                    flags=address["flags"],
                    local_addr=self._local_addr,
                    ssl_handshake_timeout=limit if ssl_context is not None else None,
                )
        except TimeoutError as exc:
            if cm.expired():
                raise ConnectionTimeoutError(
                    f"Connection timeout to host {address['hostname']}:{address['port']}"
                ) from exc
            raise
        return protocol

    async def _resolve(self, key: ConnectionKey, traces: list[Trace] | None) -> list[ResolveResult]:
        host = key.host
        port = key.port or 0
        if is_ip_address(host):
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            return [
                ResolveResult(
                    hostname=host,
                    host=host,
                    port=port,
                    family=family,
                    proto=0,
                    flags=socket.AI_NUMERICHOST,
                )
            ]
        if self._resolver is None:
            self._resolver = DefaultResolver()
        try:
            if traces:
                result = await self._traced_lookup(host, port, traces)
            else:
                result = await self._dns_cache.resolve(self._resolver, host, port, self._family)
        except OSError as exc:
            raise ClientConnectorDNSError(key, exc) from exc
        if not result:
            raise ClientConnectorDNSError(key, OSError(0, f"no address for {host}"))
        return result

    async def _traced_lookup(
        self, host: str, port: int, traces: list[Trace]
    ) -> list[ResolveResult]:
        """A cached lookup firing the DNS signals in aiohttp's order.

        Hit (or joining a lookup in flight): ``cache_hit`` only. Miss:
        ``cache_miss`` (not without a DNS cache), then ``resolvehost_start``
        and, once the resolver answered, ``resolvehost_end``.
        """
        assert self._resolver is not None
        missed = False

        async def on_hit() -> None:
            for trace in traces:
                await trace.send_dns_cache_hit(host)

        async def on_miss() -> None:
            nonlocal missed
            missed = True
            for trace in traces:
                if self._use_dns_cache:
                    await trace.send_dns_cache_miss(host)
                await trace.send_dns_resolvehost_start(host)

        result = await self._dns_cache.resolve(
            self._resolver, host, port, self._family, on_hit=on_hit, on_miss=on_miss
        )
        if missed:
            for trace in traces:
                await trace.send_dns_resolvehost_end(host)
        return result


class UnixConnector(BaseConnector):
    """HTTP over a Unix domain socket; the URL's host names only the Host header."""

    allowed_protocol_schema_set = frozenset({"http", "https", "ws", "wss", "unix"})

    def __init__(
        self,
        path: str,
        *,
        keepalive_timeout: float | object | None = ...,
        force_close: bool = False,
        limit: int = 100,
        limit_per_host: int = 0,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(
            keepalive_timeout=keepalive_timeout,
            force_close=force_close,
            limit=limit,
            limit_per_host=limit_per_host,
            loop=loop,
        )
        self._path = path

    @property
    def path(self) -> str:
        return self._path

    async def _dial(
        self, key: ConnectionKey, timeout: ClientTimeout, traces: list[Trace] | None
    ) -> ResponseProtocol:
        loop = asyncio.get_running_loop()
        limit = active(timeout.sock_connect)
        try:
            async with asyncio.timeout(limit) as cm:
                _, protocol = await loop.create_unix_connection(protocol_factory(loop), self._path)
        except TimeoutError as exc:
            if cm.expired():
                raise ConnectionTimeoutError(f"Connection timeout to {self._path}") from exc
            raise
        except OSError as exc:
            raise UnixClientConnectorError(self._path, key, exc) from exc
        return protocol
