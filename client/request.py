"""``ClientRequest``: one HTTP request, ready to write to a connection.

It settles the final headers (auto headers, Host, framing, content type) and
writes head and body. The head is coalesced with the first body chunk so a
small request is one ``transport.write``. Body framing: ``Content-Length``
when the payload's size is known, chunked otherwise (or when asked, or when
compressing), and never both.
"""

from __future__ import annotations

import sys
import zlib
from typing import TYPE_CHECKING, Any

from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .connection import ConnectionKey
from .decoders import ACCEPT_ENCODING
from .helpers import Fingerprint
from .payload import Payload
from .reqinfo import RequestInfo
from .serialize import LAST_CHUNK, encode_chunk, encode_request_head, request_target

if TYPE_CHECKING:
    from .protocol import ResponseProtocol
    from .tracing import Trace

__version__ = "0.1.0"
USER_AGENT = f"Python/{sys.version_info[0]}.{sys.version_info[1]} fetchrun/{__version__}"

# aiohttp sends Content-Length: 0 on body-less requests of every other method.
_NO_BODY_METHODS = frozenset(("GET", "HEAD", "OPTIONS", "TRACE", "CONNECT"))
# ...and a default Content-Type on these even without a body.
_DEFAULT_CT_METHODS = frozenset(("POST", "PUT", "PATCH"))
# (name, lowercased name for skip_auto_headers, value): lowercased once, not per request.
_AUTO_HEADERS: tuple[tuple[str, str, str], ...] = (
    ("Accept", "accept", "*/*"),
    ("Accept-Encoding", "accept-encoding", ACCEPT_ENCODING),
    ("User-Agent", "user-agent", USER_AGENT),
)
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
SSL_SCHEMES = frozenset(("https", "wss"))
# Through a proxy these go in a CONNECT tunnel (RFC 6455 §4.1 for ws); http is forwarded.
TUNNEL_SCHEMES = frozenset(("https", "wss", "ws"))


class ClientRequest:
    """An outgoing request: method, URL, final headers and body payload."""

    __slots__ = (
        "_plain",
        "body",
        "chunked",
        "compress",
        "expect100",
        "headers",
        "method",
        "original_url",
        "proxy",
        "proxy_auth",
        "proxy_headers",
        "server_hostname",
        "ssl",
        "traces",
        "url",
        "version",
    )

    def __init__(
        self,
        method: str,
        url: URL,
        *,
        headers: CIMultiDict[str],
        skip_auto_headers: frozenset[str] = frozenset(),
        body: Payload | None = None,
        version: tuple[int, int] = (1, 1),
        compress: str | bool | None = None,
        chunked: bool | None = None,
        expect100: bool = False,
        ssl: Any = True,
        server_hostname: str | None = None,
        proxy: URL | None = None,
        proxy_auth: Any = None,
        proxy_headers: CIMultiDict[str] | None = None,
        force_close: bool = False,
        traces: list[Trace] | None = None,
    ) -> None:
        self.method = method
        self.original_url = url
        self.url = url.with_fragment(None)
        self.version = version
        self.body = body
        self.ssl = ssl
        self.server_hostname = server_hostname
        self.proxy = proxy
        self.proxy_auth = proxy_auth
        self.proxy_headers = proxy_headers
        self.traces = traces
        self.expect100 = expect100
        self.compress = _compress_coding(compress, headers) if compress else None
        self.headers = headers
        # No user header, no proxy: nothing private in the head (its block may be cached).
        self._plain = self._auto_headers(skip_auto_headers) and proxy is None
        if proxy is not None:
            self._proxy_fields()
        if self._plain and body is None and not chunked:
            # Only our auto headers: no Transfer-Encoding or Content-Length to reconcile.
            if method not in _NO_BODY_METHODS:
                headers["Content-Length"] = "0"
            self.chunked = False
        else:
            self.chunked = self._framing(chunked)
        if expect100:
            headers["Expect"] = "100-continue"
        if force_close and version == (1, 1):
            headers["Connection"] = "close"
        elif version == (1, 0) and "Connection" not in headers:
            headers["Connection"] = "keep-alive"

    def __repr__(self) -> str:
        return f"<ClientRequest {self.method} {self.url}>"

    # -- header assembly ---------------------------------------------------------

    def _auto_headers(self, skip: frozenset[str]) -> bool:
        """Add Host, Accept... unless given or skipped; True if no header was given."""
        headers = self.headers
        fresh = not headers and not skip  # the common case: no lookups needed
        if fresh:
            headers["Host"] = host_header(self.url)
            for name, _, value in _AUTO_HEADERS:
                headers[name] = value
        else:
            if "Host" not in headers and "host" not in skip:
                headers["Host"] = host_header(self.url)
            for name, lower, value in _AUTO_HEADERS:
                if name not in headers and lower not in skip:
                    headers[name] = value
        body = self.body
        if fresh or ("Content-Type" not in headers and "content-type" not in skip):
            if body is not None:
                headers["Content-Type"] = body.content_type
            elif self.method in _DEFAULT_CT_METHODS:
                headers["Content-Type"] = "application/octet-stream"
        if body is not None:
            for name, value in body.headers.items():
                if name not in headers and name.lower() != "content-type":
                    headers[name] = value
        return fresh

    def _proxy_fields(self) -> None:
        """``Proxy-*`` fields go on a request the proxy reads, never into a tunnel."""
        headers = self.headers
        if self.tunneled:
            # The proxy reads only the CONNECT (tunnel.py); this is the origin's.
            headers.popall("Proxy-Authorization", None)
            return
        if self.proxy_headers:
            headers.update((k, v) for k, v in self.proxy_headers.items() if k.lower() != "host")
        if self.proxy_auth is not None:
            headers["Proxy-Authorization"] = self.proxy_auth.encode()

    def _framing(self, chunked: bool | None) -> bool:
        headers = self.headers
        te = headers.get("Transfer-Encoding", "")
        if chunked and "Content-Length" in headers:
            raise ValueError("chunked can not be set if Content-Length header is set")
        if "chunked" in te.lower():
            if chunked is False or "Content-Length" in headers:
                raise ValueError("Transfer-Encoding: chunked conflicts with Content-Length")
            return True
        body = self.body
        if body is None:
            if self.method not in _NO_BODY_METHODS and "Content-Length" not in headers:
                headers["Content-Length"] = "0"
            return False
        if chunked or self.compress or body.size is None:
            headers.popall("Content-Length", None)
            headers["Transfer-Encoding"] = "chunked"
            return True
        if "Content-Length" not in headers:
            headers["Content-Length"] = str(body.size)
        return False

    # -- identity ----------------------------------------------------------------

    @property
    def is_ssl(self) -> bool:
        return self.url.scheme in SSL_SCHEMES

    @property
    def tunneled(self) -> bool:
        """Sent through a CONNECT tunnel (a proxy and an https/ws/wss target)."""
        return self.proxy is not None and self.url.scheme in TUNNEL_SCHEMES

    @property
    def host(self) -> str:
        host = self.url.raw_host
        assert host is not None
        return host

    @property
    def port(self) -> int | None:
        return self.url.port

    def connection_key(self) -> ConnectionKey:
        if self.proxy is None and not self.proxy_headers:  # direct: the same key, fewer steps
            is_ssl = self.url.scheme in SSL_SCHEMES
            ssl = self.ssl if is_ssl or isinstance(self.ssl, Fingerprint) else True
            url = self.url  # self.host and self.port, inline
            host = url.raw_host
            assert host is not None
            # tuple.__new__: the same key without the NamedTuple's Python-level __new__.
            fields = (host, url.port, is_ssl, ssl, None, self.proxy_auth, None)
            return tuple.__new__(ConnectionKey, (*fields, self.server_hostname, None))
        proxy_headers = tuple(self.proxy_headers.items()) if self.proxy_headers else None
        # ssl= also governs TLS to an https:// proxy, even for an http:// target.
        tls_proxy = self.proxy is not None and self.proxy.scheme == "https"
        return ConnectionKey(
            self.host,
            self.port,
            self.is_ssl,
            # Plain http ignores TLS settings, except a pin: the connector refuses it (TLS-03).
            self.ssl if self.is_ssl or tls_proxy or isinstance(self.ssl, Fingerprint) else True,
            self.proxy,
            self.proxy_auth,
            hash(proxy_headers) if proxy_headers else None,
            self.server_hostname,
            (proxy_headers or ()) if self.tunneled else None,
        )

    @property
    def request_info(self) -> RequestInfo:
        # tuple.__new__ directly: the NamedTuple's generated __new__ is one Python call more.
        info = (self.url, self.method, CIMultiDictProxy(self.headers), self.original_url)
        return tuple.__new__(RequestInfo, info)

    # -- writing -------------------------------------------------------------------

    def encode_head(self, *, absolute_form: bool = False) -> bytes:
        # Unchecked here: encode_request_head checks the target (once, not twice).
        if absolute_form:
            target = request_target(self.url, absolute_form=True, check=False)
        else:  # request_target's origin form, inline: once per request
            target = self.url.raw_path_qs or "/"
            if target[0] == "?":
                target = "/" + target
        headers = self.headers
        # Never a credential in a cached head block, even one added after construction.
        cacheable = (
            self._plain
            and "Authorization" not in headers
            and "Cookie" not in headers
            and "Proxy-Authorization" not in headers
        )
        return encode_request_head(
            self.method, target, self.version, headers.items(), cacheable=cacheable
        )

    async def write(self, protocol: ResponseProtocol, *, absolute_form: bool = False) -> None:
        """Write head and body; with ``expect100``, the body only after ``100 Continue``."""
        head = self.encode_head(absolute_form=absolute_form)
        body = self.body
        if self.traces:
            for trace in self.traces:
                await trace.send_request_headers(self.method, self.url, self.headers)
        if body is None:
            protocol.write(head)
            return
        if self.expect100:
            protocol.write(head)
            head = b""
            waiter = protocol.continue_waiter()
            if waiter is not None:
                await waiter
                if protocol.started_final:
                    # A final answer instead of 100: the body is not wanted, and the
                    # server may still expect it, so the connection cannot be reused.
                    protocol.mark_unreusable()
                    return
        writer = BodyWriter(protocol, head, self.chunked, self.compress, self)
        await body.write(writer)
        await writer.finish()


class BodyWriter:
    """What payloads write into: frames (chunked), compresses, coalesces the head."""

    __slots__ = ("_compressor", "_head", "_protocol", "_request", "chunked", "written")

    def __init__(
        self,
        protocol: ResponseProtocol,
        head: bytes,
        chunked: bool,
        compress: str | None,
        request: ClientRequest,
    ) -> None:
        self._protocol = protocol
        self._head = head
        self.chunked = chunked
        self._request = request
        self.written = 0
        self._compressor: Any = None
        if compress is not None:
            wbits = 16 + zlib.MAX_WBITS if compress == "gzip" else zlib.MAX_WBITS
            self._compressor = zlib.compressobj(wbits=wbits)

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        traces = self._request.traces
        if traces:
            for trace in traces:  # copies the chunk only for a config that listens
                await trace.send_request_chunk_sent(self._request.method, self._request.url, data)
        if self._compressor is not None:
            data = self._compressor.compress(data)
            if not data:
                return
        self._send(data)
        await self._protocol.drain()

    def _send(self, data: bytes | bytearray | memoryview) -> None:
        self.written += len(data)
        if self.chunked:
            data = encode_chunk(data)
        if self._head:
            data = self._head + data
            self._head = b""
        self._protocol.write(data)

    async def finish(self) -> None:
        if self._compressor is not None:
            tail = self._compressor.flush()
            if tail:
                self._send(tail)
        if self.chunked:
            self._protocol.write(self._head + LAST_CHUNK)
        elif self._head:
            self._protocol.write(self._head)
        self._head = b""
        await self._protocol.drain()


def host_header(url: URL) -> str:
    """The Host header: host, plus the port when it is not the scheme's default."""
    host = url.raw_host or ""
    if ":" in host:
        host = f"[{host}]"
    port = url.explicit_port
    if port is not None and port != _DEFAULT_PORTS.get(url.scheme):
        return f"{host}:{port}"
    return host


def _compress_coding(compress: str | bool | None, headers: CIMultiDict[str]) -> str | None:
    """``compress=True``/"deflate"/"gzip" → the coding; anything else is refused.

    aiohttp labels any other string (e.g. "br") as that coding while sending
    deflate; we refuse it.
    """
    if not compress:
        return None
    if "Content-Encoding" in headers:
        raise ValueError("compress can not be set if Content-Encoding header is set")
    coding = "deflate" if compress is True else str(compress).lower()
    if coding not in ("deflate", "gzip"):
        raise ValueError(f"compress must be True, 'deflate' or 'gzip', not {compress!r}")
    headers["Content-Encoding"] = coding
    return coding
