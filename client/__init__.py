"""An asyncio HTTP/1.1 client with aiohttp's client API.

``import client as aiohttp`` and code written for aiohttp's client runs
unchanged. Built on httptools (llhttp), multidict, yarl and aiodns.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .address_policy import AddressPolicy, ClientConnectorBlockedError, deny_private
from .connection import ConnectionKey
from .connector import BaseConnector
from .exceptions import (
    ClientConnectionError,
    ClientConnectionResetError,
    ClientConnectorCertificateError,
    ClientConnectorDNSError,
    ClientConnectorError,
    ClientConnectorSSLError,
    ClientError,
    ClientHttpProxyError,
    ClientOSError,
    ClientPayloadError,
    ClientProxyConnectionError,
    ClientResponseError,
    ClientSSLError,
    ConnectionTimeoutError,
    ContentTypeError,
    FingerprintMismatch,
    InvalidURL,
    InvalidUrlClientError,
    InvalidUrlRedirectClientError,
    NonHttpUrlClientError,
    NonHttpUrlRedirectClientError,
    PoolTimeoutError,
    RedirectClientError,
    ServerConnectionError,
    ServerDisconnectedError,
    ServerFingerprintMismatch,
    ServerTimeoutError,
    SocketTimeoutError,
    TooManyRedirects,
    TotalTimeoutError,
    UnixClientConnectorError,
    WSMessageTypeError,
    WSServerHandshakeError,
)
from .helpers import BasicAuth, ContentDisposition, Fingerprint, encode_basic_auth
from .oneshot import request
from .payload import (
    AsyncIterablePayload,
    BytesPayload,
    IOPayload,
    JsonPayload,
    Payload,
    StringPayload,
    get_payload,
    streamer,
)
from .reqinfo import RequestInfo
from .request import ClientRequest
from .resolver import AbstractResolver, AsyncResolver, DefaultResolver, ThreadedResolver
from .response import ClientResponse, HttpVersion, HttpVersion10, HttpVersion11
from .session import ClientSession
from .streams import EMPTY_PAYLOAD, StreamReader
from .tcp import TCPConnector, UnixConnector
from .timeouts import ClientTimeout
from .tracing import TraceConfig

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .cookiejar import AbstractCookieJar, CookieJar, DummyCookieJar
    from .formdata import FormData
    from .multipart import MultipartWriter
    from .trace_params import (
        TraceConnectionCreateEndParams,
        TraceConnectionCreateStartParams,
        TraceConnectionQueuedEndParams,
        TraceConnectionQueuedStartParams,
        TraceConnectionReuseconnParams,
        TraceDnsCacheHitParams,
        TraceDnsCacheMissParams,
        TraceDnsResolveHostEndParams,
        TraceDnsResolveHostStartParams,
        TraceRequestChunkSentParams,
        TraceRequestEndParams,
        TraceRequestExceptionParams,
        TraceRequestHeadersSentParams,
        TraceRequestRedirectParams,
        TraceRequestStartParams,
        TraceResponseChunkReceivedParams,
    )
    from .websocket import ClientWebSocketResponse
    from .ws_models import ClientWSTimeout, WebSocketError, WSCloseCode, WSMessage, WSMsgType

# Loaded on first use, not with `import client` (start-up time, issue 6): websockets
# bring wsproto and h11 (~15 ms), the trace parameter dataclasses ~6 ms.
_LAZY = {
    # The cookie jar (http.cookies, the public-suffix list) and multipart forms
    # load when first used; a session loads its jar when it is created.
    "AbstractCookieJar": ".cookiejar",
    "CookieJar": ".cookiejar",
    "DummyCookieJar": ".cookiejar",
    "FormData": ".formdata",
    "MultipartWriter": ".multipart",
    "ClientWebSocketResponse": ".websocket",
    "ClientWSTimeout": ".ws_models",
    "WebSocketError": ".ws_models",
    "WSCloseCode": ".ws_models",
    "WSMessage": ".ws_models",
    "WSMsgType": ".ws_models",
    "TraceConnectionCreateEndParams": ".tracing",
    "TraceConnectionCreateStartParams": ".tracing",
    "TraceConnectionQueuedEndParams": ".tracing",
    "TraceConnectionQueuedStartParams": ".tracing",
    "TraceConnectionReuseconnParams": ".tracing",
    "TraceDnsCacheHitParams": ".tracing",
    "TraceDnsCacheMissParams": ".tracing",
    "TraceDnsResolveHostEndParams": ".tracing",
    "TraceDnsResolveHostStartParams": ".tracing",
    "TraceRequestChunkSentParams": ".tracing",
    "TraceRequestEndParams": ".tracing",
    "TraceRequestExceptionParams": ".tracing",
    "TraceRequestHeadersSentParams": ".tracing",
    "TraceRequestRedirectParams": ".tracing",
    "TraceRequestStartParams": ".tracing",
    "TraceResponseChunkReceivedParams": ".tracing",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


# Plain sorted() order (tests/test_seed_examples.py), not ruff's isort-style order.
__all__ = (  # noqa: RUF022
    "AbstractCookieJar",
    "AbstractResolver",
    "AddressPolicy",
    "AsyncIterablePayload",
    "AsyncResolver",
    "BaseConnector",
    "BasicAuth",
    "BytesPayload",
    "ClientConnectionError",
    "ClientConnectionResetError",
    "ClientConnectorBlockedError",
    "ClientConnectorCertificateError",
    "ClientConnectorDNSError",
    "ClientConnectorError",
    "ClientConnectorSSLError",
    "ClientError",
    "ClientHttpProxyError",
    "ClientOSError",
    "ClientPayloadError",
    "ClientProxyConnectionError",
    "ClientRequest",
    "ClientResponse",
    "ClientResponseError",
    "ClientSSLError",
    "ClientSession",
    "ClientTimeout",
    "ClientWSTimeout",
    "ClientWebSocketResponse",
    "ConnectionKey",
    "ConnectionTimeoutError",
    "ContentDisposition",
    "ContentTypeError",
    "CookieJar",
    "DefaultResolver",
    "DummyCookieJar",
    "EMPTY_PAYLOAD",
    "Fingerprint",
    "FingerprintMismatch",
    "FormData",
    "HttpVersion",
    "HttpVersion10",
    "HttpVersion11",
    "IOPayload",
    "InvalidURL",
    "InvalidUrlClientError",
    "InvalidUrlRedirectClientError",
    "JsonPayload",
    "MultipartWriter",
    "NonHttpUrlClientError",
    "NonHttpUrlRedirectClientError",
    "Payload",
    "PoolTimeoutError",
    "RedirectClientError",
    "RequestInfo",
    "ServerConnectionError",
    "ServerDisconnectedError",
    "ServerFingerprintMismatch",
    "ServerTimeoutError",
    "SocketTimeoutError",
    "StreamReader",
    "StringPayload",
    "TCPConnector",
    "ThreadedResolver",
    "TooManyRedirects",
    "TotalTimeoutError",
    "TraceConfig",
    "TraceConnectionCreateEndParams",
    "TraceConnectionCreateStartParams",
    "TraceConnectionQueuedEndParams",
    "TraceConnectionQueuedStartParams",
    "TraceConnectionReuseconnParams",
    "TraceDnsCacheHitParams",
    "TraceDnsCacheMissParams",
    "TraceDnsResolveHostEndParams",
    "TraceDnsResolveHostStartParams",
    "TraceRequestChunkSentParams",
    "TraceRequestEndParams",
    "TraceRequestExceptionParams",
    "TraceRequestHeadersSentParams",
    "TraceRequestRedirectParams",
    "TraceRequestStartParams",
    "TraceResponseChunkReceivedParams",
    "UnixClientConnectorError",
    "UnixConnector",
    "WSCloseCode",
    "WSMessage",
    "WSMessageTypeError",
    "WSMsgType",
    "WSServerHandshakeError",
    "WebSocketError",
    "__version__",
    "deny_private",
    "encode_basic_auth",
    "get_payload",
    "request",
    "streamer",
)
