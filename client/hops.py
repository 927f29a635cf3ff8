"""One request's journey through redirects: the hop state and the rules between hops.

Each redirect rewrites a ``Hop`` in place: method and body per RFC 9110
§15.4 and aiohttp's rules, and credentials stripped on any change of origin.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from multidict import CIMultiDict
from yarl import URL

from .exceptions import ClientPayloadError
from .serialize import check_header_name, check_header_value
from .urls import same_origin

if TYPE_CHECKING:
    from .helpers import BasicAuth
    from .payload import Payload
    from .proxy import ProxyRoute

REDIRECT_STATUSES = frozenset((301, 302, 303, 307, 308))
CREDENTIAL_HEADERS = ("Authorization", "Cookie", "Proxy-Authorization")
BODY_HEADERS = ("Content-Length", "Content-Type", "Content-Encoding", "Transfer-Encoding")


class Hop:
    """The parts of a request that change from one redirect hop to the next."""

    # A plain slotted class: built once per request (SimpleNamespace's **kwargs cost ~3x).
    __slots__ = ("auth", "body", "cookies", "headers", "method", "proxy", "url")

    def __init__(
        self,
        method: str,
        url: URL,
        headers: CIMultiDict[str],
        body: Payload | None,
        auth: BasicAuth | None,
        cookies: Any,
        proxy: ProxyRoute | None = None,
    ) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.auth = auth
        self.cookies = cookies
        self.proxy = proxy  # the explicit proxy (request's or session's), if any

    def __repr__(self) -> str:
        return f"<Hop {self.method} {self.url}>"


def redirect_hop(hop: Hop, status: int, target: URL) -> None:
    """Rewrite the next hop per RFC 9110 §15.4 and aiohttp's method rules."""
    if (status == 303 and hop.method != "HEAD") or (status in (301, 302) and hop.method == "POST"):
        hop.method = "GET"
        hop.body = None
        for name in BODY_HEADERS:
            hop.headers.popall(name, None)
    elif hop.body is not None and hop.body.consumed:
        raise ClientPayloadError(
            "Cannot follow redirect with a consumed request body; "
            "pass allow_redirects=False or a replayable body"
        )
    if not same_origin(hop.url, target):
        # Credentials are bound to the origin: strip every instance, for the
        # rest of the chain (security.md D1, RED-01/02).
        for name in CREDENTIAL_HEADERS:
            hop.headers.popall(name, None)
        hop.cookies = None
        hop.auth = None
    hop.url = target


def merge_headers(defaults: CIMultiDict[str] | None, headers: Any) -> CIMultiDict[str]:
    """Defaults overridden by name; repeated names within ``headers`` kept."""
    result: CIMultiDict[str] = CIMultiDict(defaults) if defaults else CIMultiDict()
    if not headers:
        return result
    items = headers.items() if isinstance(headers, Mapping) else headers
    added: set[str] = set()
    for name, value in items:
        name = str(name)
        value = str(value)
        check_header_name(name)
        check_header_value(value)
        key = name.lower()
        if key in added:
            result.add(name, value)
        else:
            result[name] = value
            added.add(key)
    return result
