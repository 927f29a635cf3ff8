"""Tiny threaded HTTPS servers answering ``200 ok``, one per TLS kind.

These use blocking stdlib ``ssl`` sockets on purpose: OpenSSL then writes its
alerts (e.g. TLS 1.3 ``certificate_required``) before the server drops a failed
handshake, as real servers do. asyncio's TLS server closes without flushing them,
so a client would see a bare EOF instead.
"""

from __future__ import annotations

import socket
import socketserver
import ssl
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

import trustme

from .endpoint import LOOPBACK, Endpoint
from .tls_certs import TLSCertificates, TLSKind


class _OkHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive; any method gets ``200`` with body ``ok``."""

    protocol_version = "HTTP/1.1"
    timeout = 10  # an idle keep-alive connection ends after this
    server: TinyTLSServer

    def handle(self) -> None:
        try:
            self.request.do_handshake()
        except OSError:
            return  # the handshake failing is what these servers exist to show
        self.server.count("handshakes")
        super().handle()

    def _ok(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "2")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(b"ok")
        self.server.count("requests")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _ok

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


class TinyTLSServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """A thread per connection; TLS handshakes happen in that thread."""

    daemon_threads = True
    block_on_close = True

    def __init__(self, ctx: ssl.SSLContext) -> None:
        super().__init__((LOOPBACK, 0), _OkHandler)
        self.ctx = ctx
        self.port: int = self.server_address[1]
        self.handshakes = 0  # completed handshakes
        self.requests = 0
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._live: set[socket.socket] = set()
        self._thread = threading.Thread(
            target=self.serve_forever, args=(0.05,), name=f"tls-{self.port}", daemon=True
        )

    def count(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def close(self) -> None:
        """Stop accepting, unblock every connection thread, join them all."""
        self.shutdown()
        self._thread.join()
        with self._lock:
            live = list(self._live)
        for sock in live:
            try:
                # The plain-socket method: SSLSocket.shutdown would race the reader thread.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass
        self.server_close()  # joins the handler threads (block_on_close)
        if self.errors:
            raise self.errors[0]

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        tls = self.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        with self._lock:
            self._live.add(tls)
        return tls, addr

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._live.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if exc is not None and not isinstance(exc, OSError):
            self.errors.append(exc)  # a bug here, not a peer going away: re-raised at close()


@dataclass(frozen=True, slots=True)
class TLSServer:
    """A running tiny HTTPS server that answers every request ``200 ok``."""

    kind: TLSKind
    endpoint: Endpoint
    #: The server (``.handshakes`` and ``.requests`` count what it saw).
    server: TinyTLSServer
    #: For ``client_cert_required``: a client certificate (issued by ``tls_ca``) it accepts.
    client_cert: trustme.LeafCert | None

    @property
    def host(self) -> str:
        return self.endpoint.host

    @property
    def port(self) -> int:
        return self.endpoint.port

    @property
    def base(self) -> str:
        return self.endpoint.base

    def url(self, path: str = "/") -> str:
        """The absolute https URL of *path*."""
        return self.endpoint.url(path)


class TLSServerFactory:
    """``factory(kind)`` starts a :class:`TLSServer`; ``close()`` stops them all."""

    def __init__(self, certs: TLSCertificates) -> None:
        self._certs = certs
        self._servers: list[TinyTLSServer] = []

    def __call__(self, kind: TLSKind = "valid") -> TLSServer:
        server = TinyTLSServer(self._certs.server_context(kind))
        server.start()
        self._servers.append(server)
        client_cert = self._certs.client_cert if kind == "client_cert_required" else None
        return TLSServer(kind, Endpoint(LOOPBACK, server.port, "https"), server, client_cert)

    def close(self) -> None:
        """Stop every server this factory started."""
        while self._servers:
            self._servers.pop().close()
