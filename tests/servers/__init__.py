"""Real loopback servers for the test suite (fixtures live in tests/conftest.py).

* :mod:`.wsgi`      httpbin on waitress (threaded) in a background thread
* :mod:`.tls`       httpbin over TLS (a TLS terminator on a background loop)
* :mod:`.tls_kinds` tiny threaded HTTPS servers per :data:`TLSKind`
* :mod:`.scripted`  raw-socket scripted peers in the test's loop
* :mod:`.counting`  a counting HTTP/1.1 keep-alive server in the test's loop
"""

from .bgloop import BackgroundLoop
from .counting import CountingServer, Counts, RequestRecord
from .endpoint import LOOPBACK, Endpoint, make_url, unused_tcp_port
from .scripted import (
    Close,
    HalfClose,
    Handler,
    Hang,
    ReadRequest,
    Reset,
    Script,
    ScriptedConnection,
    ScriptedServer,
    Send,
    SendSlowly,
    Sleep,
    Step,
    http_response,
    parse_wire,
)
from .tls import SecureHttpbin, TLSProxy
from .tls_certs import TLS_KINDS, TLSCertificates, TLSKind, client_context, server_context
from .tls_kinds import TinyTLSServer, TLSServer, TLSServerFactory
from .wsgi import WaitressThread, httpbin_app

__all__ = [
    "LOOPBACK",
    "TLS_KINDS",
    "BackgroundLoop",
    "Close",
    "CountingServer",
    "Counts",
    "Endpoint",
    "HalfClose",
    "Handler",
    "Hang",
    "ReadRequest",
    "RequestRecord",
    "Reset",
    "Script",
    "ScriptedConnection",
    "ScriptedServer",
    "SecureHttpbin",
    "Send",
    "SendSlowly",
    "Sleep",
    "Step",
    "TLSCertificates",
    "TLSKind",
    "TLSProxy",
    "TLSServer",
    "TLSServerFactory",
    "TinyTLSServer",
    "WaitressThread",
    "client_context",
    "http_response",
    "httpbin_app",
    "make_url",
    "parse_wire",
    "server_context",
    "unused_tcp_port",
]
