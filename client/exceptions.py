"""The client's exceptions, with aiohttp's names, bases and attributes.

Tree (users catch these, so the MRO matches aiohttp 3.14)::

    ClientError
    ├── ClientResponseError (request_info, history, status, message, headers)
    │   ├── ContentTypeError
    │   ├── WSServerHandshakeError
    │   ├── ClientHttpProxyError
    │   └── TooManyRedirects
    ├── ClientConnectionError
    │   ├── ClientConnectionResetError (+ ConnectionResetError)
    │   ├── ClientOSError (+ OSError)
    │   │   └── ClientConnectorError (host, port, ssl, os_error, conn_key)
    │   │       ├── ClientConnectorDNSError
    │   │       ├── ClientProxyConnectionError
    │   │       ├── UnixClientConnectorError
    │   │       └── ClientSSLError
    │   │           ├── ClientConnectorSSLError (+ ssl.SSLError)
    │   │           └── ClientConnectorCertificateError (+ ssl.CertificateError)
    │   └── ServerConnectionError
    │       ├── ServerDisconnectedError
    │       ├── ServerTimeoutError (+ asyncio.TimeoutError)
    │       │   ├── ConnectionTimeoutError
    │       │   ├── SocketTimeoutError
    │       │   └── TotalTimeoutError       (ours: aiohttp raises a bare TimeoutError)
    │       │   └── PoolTimeoutError        (ours: waiting for a pool slot, aiohttp #10313)
    │       └── ServerFingerprintMismatch
    ├── ClientPayloadError
    ├── InvalidURL (+ ValueError)
    │   └── InvalidUrlClientError
    │       └── InvalidUrlRedirectClientError (+ RedirectClientError)
    ├── RedirectClientError
    └── NonHttpUrlClientError
        └── NonHttpUrlRedirectClientError (+ RedirectClientError)

The protocol-level errors below ``HttpProcessingError`` never reach users
directly: the session wraps header-phase errors in ``ClientResponseError`` and
body-phase errors in ``ClientPayloadError``, with the original as ``__cause__``.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multidict import CIMultiDictProxy, MultiMapping

    from .reqinfo import RequestInfo


class ClientError(Exception):
    """Base class for every error the client raises."""


class ClientResponseError(ClientError):
    """The server answered, but the answer is an error or unusable.

    ``body`` is ours: a bounded snippet (at most 2 KiB) of the response body
    when it was already read, so a failed API call can be diagnosed.
    """

    def __init__(
        self,
        request_info: RequestInfo | None,
        history: Sequence[Any],
        *,
        status: int | None = None,
        message: str = "",
        headers: MultiMapping[str] | CIMultiDictProxy[str] | None = None,
        body: bytes | None = None,
    ) -> None:
        self.request_info = request_info
        self.status = 0 if status is None else status
        self.message = message
        self.headers = headers
        self.history = tuple(history)
        self.body = body
        self.args = (request_info, self.history)

    def __str__(self) -> str:
        url = self.request_info.real_url if self.request_info is not None else ""
        return f"{self.status}, message={self.message!r}, url={str(url)!r}"

    def __repr__(self) -> str:
        args = f"{self.request_info!r}, {self.history!r}"
        if self.status != 0:
            args += f", status={self.status!r}"
        if self.message != "":
            args += f", message={self.message!r}"
        return f"{type(self).__name__}({args})"


class ContentTypeError(ClientResponseError):
    """``json()`` was asked of a response whose content type is not JSON."""


class WSServerHandshakeError(ClientResponseError):
    """The websocket handshake was refused or malformed."""


class ClientHttpProxyError(ClientResponseError):
    """The proxy answered CONNECT with something other than 200."""


class TooManyRedirects(ClientResponseError):
    """More redirects than ``max_redirects``; ``history`` holds all of them."""


class ClientConnectionError(ClientError):
    """Base class for errors of the connection rather than of the answer."""


class ClientConnectionResetError(ClientConnectionError, ConnectionResetError):
    """The peer reset the connection."""


class ClientOSError(ClientConnectionError, OSError):
    """An OS-level error on the connection."""


class ClientConnectorError(ClientOSError):
    """Opening the connection failed (DNS, TCP connect, TLS)."""

    def __init__(self, connection_key: Any, os_error: OSError) -> None:
        self._conn_key = connection_key
        self._os_error = os_error
        super().__init__(os_error.errno, os_error.strerror)
        self.args = (connection_key, os_error)

    @property
    def os_error(self) -> OSError:
        return self._os_error

    @property
    def conn_key(self) -> Any:
        return self._conn_key

    @property
    def host(self) -> str:
        return str(getattr(self._conn_key, "host", ""))

    @property
    def port(self) -> int | None:
        port = getattr(self._conn_key, "port", None)
        return int(port) if port is not None else None

    @property
    def ssl(self) -> Any:
        return getattr(self._conn_key, "ssl", True)

    def __str__(self) -> str:
        ssl_repr = "default" if self.ssl is True or self.ssl is None else self.ssl
        return (
            f"Cannot connect to host {self.host}:{self.port} "
            f"ssl:{ssl_repr} [{self.strerror or self._os_error}]"
        )

    __reduce__ = BaseException.__reduce__


class ClientConnectorDNSError(ClientConnectorError):
    """The host name could not be resolved."""


class ClientProxyConnectionError(ClientConnectorError):
    """Connecting to the proxy failed."""


class UnixClientConnectorError(ClientConnectorError):
    """Connecting to a Unix socket failed."""

    def __init__(self, path: str, connection_key: Any, os_error: OSError) -> None:
        self._path = path
        super().__init__(connection_key, os_error)

    @property
    def path(self) -> str:
        return self._path

    def __str__(self) -> str:
        return f"Cannot connect to unix socket {self.path} [{self.strerror or self.os_error}]"


class ClientSSLError(ClientConnectorError):
    """TLS failed while connecting."""


class ClientConnectorSSLError(ClientSSLError, ssl.SSLError):
    """The TLS handshake failed."""


class ClientConnectorCertificateError(ClientSSLError, ssl.CertificateError):
    """The server's certificate did not verify."""

    def __init__(self, connection_key: Any, certificate_error: Exception) -> None:
        self._conn_key = connection_key
        self._certificate_error = certificate_error
        self._os_error = OSError(0, str(certificate_error))
        Exception.__init__(self, connection_key, certificate_error)
        self.args = (connection_key, certificate_error)

    @property
    def certificate_error(self) -> Exception:
        return self._certificate_error

    def __str__(self) -> str:
        return (
            f"Cannot connect to host {self.host}:{self.port} ssl:{self.ssl} "
            f"[{type(self._certificate_error).__name__}: {self._certificate_error}]"
        )


class ServerConnectionError(ClientConnectionError):
    """The server side of an established connection failed."""


class ServerDisconnectedError(ServerConnectionError):
    """The server closed the connection before the response was complete."""

    def __init__(self, message: str | None = None) -> None:
        if message is None:
            message = "Server disconnected"
        self.message = message
        super().__init__(message)


class ServerTimeoutError(ServerConnectionError, asyncio.TimeoutError):
    """A timeout while talking to the server."""


class ConnectionTimeoutError(ServerTimeoutError):
    """``connect`` or ``sock_connect`` ran out."""


class SocketTimeoutError(ServerTimeoutError):
    """``sock_read`` ran out: the server went quiet."""


class TotalTimeoutError(ServerTimeoutError):
    """The ``total`` deadline ran out.

    aiohttp raises a bare ``asyncio.TimeoutError`` here; this subclass is still
    one, and also a ``ClientError``, so both styles of ``except`` catch it.
    """


class PoolTimeoutError(ConnectionTimeoutError):
    """No pool slot became free within ``ClientTimeout.pool``."""


class ServerFingerprintMismatch(ServerConnectionError):
    """The certificate's SHA-256 did not match the pinned fingerprint."""

    def __init__(self, expected: bytes, got: bytes, host: str, port: int) -> None:
        self.expected = expected
        self.got = got
        self.host = host
        self.port = port
        super().__init__(expected, got, host, port)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} expected={self.expected!r} got={self.got!r} "
            f"host={self.host!r} port={self.port!r}>"
        )


# Issue text names it without the "Server" prefix.
FingerprintMismatch = ServerFingerprintMismatch


class ClientPayloadError(ClientError):
    """The response body was truncated, malformed, or could not be decoded."""


class InvalidURL(ClientError, ValueError):
    """The URL is malformed or cannot be requested."""

    def __init__(self, url: Any, description: str | None = None) -> None:
        self._url = url
        self._description = description
        if description:
            super().__init__(url, description)
        else:
            super().__init__(url)

    @property
    def url(self) -> Any:
        return self._url

    @property
    def description(self) -> str | None:
        return self._description

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self}>"

    def __str__(self) -> str:
        if self._description:
            return f"{self._url} - {self._description}"
        return str(self._url)


class InvalidUrlClientError(InvalidURL):
    """An invalid URL given to a request."""


class RedirectClientError(ClientError):
    """A redirect could not be followed."""


class NonHttpUrlClientError(ClientError):
    """The URL's scheme is not http, https, ws or wss."""

    def __init__(self, url: Any, description: str | None = None) -> None:
        self.url = url
        self.description = description
        super().__init__(url, description) if description else super().__init__(url)

    def __str__(self) -> str:
        if self.description:
            return f"{self.url} - {self.description}"
        return str(self.url)


class InvalidUrlRedirectClientError(InvalidUrlClientError, RedirectClientError):
    """A redirect's Location could not be parsed."""


class NonHttpUrlRedirectClientError(NonHttpUrlClientError, RedirectClientError):
    """A redirect pointed at a non-HTTP scheme (file:, data:, ftp: ...)."""


class WSMessageTypeError(TypeError):
    """``receive_str``/``receive_bytes``/``receive_json`` got another frame type."""


# -- protocol-level errors (internal; wrapped before they reach users) -------


class HttpProcessingError(Exception):
    """The peer sent bytes that are not valid HTTP/1.1 (or exceed a limit)."""

    code = 400
    message = ""

    def __init__(self, message: str = "") -> None:
        if message:
            self.message = message
        super().__init__(self.message)


class BadHttpMessage(HttpProcessingError):
    message = "Bad HTTP message"


class BadStatusLine(BadHttpMessage):
    message = "Bad status line"


class LineTooLong(BadHttpMessage):
    message = "Line too long"


class InvalidHeader(BadHttpMessage):
    message = "Invalid header"


class ContentLengthError(BadHttpMessage):
    message = "Not enough data to satisfy content length header"


class TransferEncodingError(BadHttpMessage):
    message = "Bad transfer encoding"


class ContentEncodingError(BadHttpMessage):
    message = "Bad content encoding"


class DecompressSizeError(ContentEncodingError):
    message = "Decompressed body exceeds the limit"
