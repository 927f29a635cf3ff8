"""``client.request()``: aiohttp's one-shot request on a throwaway session."""

from __future__ import annotations

from typing import Any

from .awaitables import SessionRequestContextManager
from .connector import BaseConnector
from .session import ClientSession
from .tcp import TCPConnector
from .timeouts import ClientTimeout
from .urls import StrOrURL


def request(
    method: str,
    url: StrOrURL,
    *,
    connector: BaseConnector | None = None,
    **kwargs: Any,
) -> SessionRequestContextManager:
    """A single request on a throwaway session (``TCPConnector(force_close=True)``)."""
    session_keys = {
        "cookies",
        "version",
        "timeout",
        "raise_for_status",
        "auto_decompress",
        "read_bufsize",
        "loop",
    }
    session_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in session_keys}
    session_kwargs.pop("loop", None)
    if "timeout" in session_kwargs and not isinstance(session_kwargs["timeout"], ClientTimeout):
        kwargs["timeout"] = session_kwargs.pop("timeout")
    session = ClientSession(connector=connector or TCPConnector(force_close=True), **session_kwargs)
    return SessionRequestContextManager(session._request(method, url, **kwargs), session)
