"""httpbin's Flask app on a real threaded WSGI server (waitress) in a background thread.

Waitress de-chunks ``Transfer-Encoding: chunked`` request bodies itself: the app
sees the whole body, a ``Content-Length`` and no ``Transfer-Encoding`` header, so
httpbin's ``data``/``form``/``files`` are right for chunked uploads too. A test that
must see the raw framing on the wire uses the scripted server instead.

Waitress ends every response whose length it does not know (``/stream/N``,
``/drip``) with ``Connection: close``; keep-alive is kept for the rest.
"""

from __future__ import annotations

import threading
from typing import Any

import httpbin as _httpbin
from waitress import wasyncore
from waitress.server import create_server

from .endpoint import LOOPBACK

# /delay/N parks a worker thread for N seconds; concurrent tests need spares.
DEFAULT_THREADS = 32


def httpbin_app() -> Any:
    """The httpbin WSGI (Flask) application."""
    return _httpbin.app


class WaitressThread:
    """A waitress server for *app* on 127.0.0.1 (port 0) run by a daemon thread."""

    def __init__(
        self, app: Any, *, threads: int = DEFAULT_THREADS, url_scheme: str = "http"
    ) -> None:
        self._server = create_server(
            app,
            host=LOOPBACK,
            port=0,
            threads=threads,
            url_scheme=url_scheme,
            connection_limit=1000,
            ident="waitress",
        )
        self.host: str = LOOPBACK
        self.port: int = int(self._server.getsockname()[1])
        self._thread = threading.Thread(
            target=self._server.run, name=f"waitress-{self.port}", daemon=True
        )
        self._stopped = False

    def start(self) -> None:
        """Start serving in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Close every socket from the server's own thread, then join all threads."""
        if self._stopped:
            return
        self._stopped = True
        # wasyncore is not thread-safe: close the socket map from inside its loop.
        # An empty map ends the loop, so run() returns and the thread exits.
        socket_map = self._server._map
        try:
            self._server.trigger.pull_trigger(lambda: wasyncore.close_all(socket_map))
        except OSError:
            # The trigger pipe is already closed: the loop is tearing its map
            # down by itself (a race seen under load); joining is all that's left.
            pass
        self._thread.join(timeout=15)
        self._server.task_dispatcher.shutdown(cancel_pending=True, timeout=15)
