"""Proxy policy: which proxy a request goes through, and with which credentials.

* An explicit ``proxy=`` (per request, else the session's) wins, for every hop.
* With ``trust_env=True``: ``HTTP_PROXY``/``HTTPS_PROXY``/``WS_PROXY``/
  ``WSS_PROXY`` and ``NO_PROXY`` (any case; lower case wins, as in urllib), and
  netrc credentials, read **once per session** (:class:`TrustedEnv`) instead of
  in a worker thread on every request as aiohttp does.
* Credentials in a proxy URL become its ``proxy_auth``; the URL kept in the
  pool key has no userinfo. ``Proxy-Authorization`` is computed per hop from
  the hop's own proxy, so a redirect that picks another proxy never carries
  the first one's credentials (security.md G1, PRX-01).
``NO_PROXY`` matching lives in :mod:`.no_proxy`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from multidict import CIMultiDict
from yarl import URL

from .exceptions import InvalidUrlClientError, NonHttpUrlClientError
from .helpers import BasicAuth
from .no_proxy import NoProxy
from .serialize import check_header_name, check_header_value, encode_request_head
from .urls import StrOrURL, check_url, to_url

__all__ = (
    "NoProxy",
    "ProxyPolicy",
    "ProxyRoute",
    "TrustedEnv",
    "connect_request",
    "env_proxy_urls",
    "explicit_route",
    "load_netrc",
    "proxy_url",
)

log = logging.getLogger(__name__)

PROXY_SCHEMES = frozenset(("http", "https"))
# The env variable consulted per target scheme, then the fallback for websockets
# (a ws handshake is an HTTP request; curl and websocket clients do the same).
_ENV_SCHEMES = {
    "http": ("http",),
    "https": ("https",),
    "ws": ("ws", "http"),
    "wss": ("wss", "https"),
}


class ProxyRoute(NamedTuple):
    """The proxy one hop goes through: its URL (origin only), credentials, extra headers."""

    url: URL
    auth: BasicAuth | None
    headers: CIMultiDict[str] | None


# -- proxy URLs ------------------------------------------------------------------


def proxy_url(value: StrOrURL) -> tuple[URL, BasicAuth | None]:
    """Check a proxy URL; return its origin (no userinfo) and its credentials, if any."""
    url = to_url(value)
    try:
        check_url(url, PROXY_SCHEMES)
    except NonHttpUrlClientError as exc:  # say it is about the proxy
        raise InvalidUrlClientError(url, "proxy URL must be http:// or https://") from exc
    return url.origin(), BasicAuth.from_url(url)


def explicit_route(
    proxy: StrOrURL | None, proxy_auth: BasicAuth | None, proxy_headers: Any
) -> ProxyRoute | None:
    """The route for ``proxy=``/``proxy_auth=``/``proxy_headers=``; ``None`` without a proxy.

    ``proxy_auth`` wins over credentials in the URL (as in aiohttp).
    """
    if proxy is None:
        return None
    if proxy_auth is not None and not isinstance(proxy_auth, BasicAuth):
        raise ValueError("proxy_auth must be None or a BasicAuth")
    url, url_auth = proxy_url(proxy)
    return ProxyRoute(url, proxy_auth or url_auth, _headers(proxy_headers))


def _headers(headers: Any) -> CIMultiDict[str] | None:
    if not headers:
        return None
    items = headers.items() if isinstance(headers, Mapping) else headers
    result: CIMultiDict[str] = CIMultiDict()
    for name, value in items:
        name, value = str(name), str(value)
        check_header_name(name)
        check_header_value(value)
        result.add(name, value)
    return result


def connect_request(
    host: str, port: int, auth: BasicAuth | None, headers: CIMultiDict[str] | None
) -> bytes:
    """``CONNECT host:port`` (RFC 9110 §9.3.6) for the proxy, and nothing for the origin.

    Only ``Host``, ``Proxy-Authorization`` and the caller's ``proxy_headers``
    go out (security.md G2); ``proxy_auth`` overrides a ``Proxy-Authorization``
    among those headers, and ``Host`` is always the tunnel's authority.
    """
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    fields: CIMultiDict[str] = CIMultiDict(Host=authority)
    if headers:
        for name, value in headers.items():
            if name.lower() != "host":
                fields.add(name, value)
    if auth is not None:
        fields["Proxy-Authorization"] = auth.encode()
    return encode_request_head("CONNECT", authority, (1, 1), fields.items())


# -- the environment ----------------------------------------------------------------


def env_proxy_urls(environ: Mapping[str, str]) -> dict[str, str]:
    """``{scheme: url}`` from ``*_proxy`` variables, with urllib's precedence.

    Any case is accepted; a lower-case variable wins (and an empty one unsets).
    Under CGI (``REQUEST_METHOD`` set) upper-case ``HTTP_PROXY`` is ignored: a
    client could set it with a ``Proxy:`` request header ("httpoxy").
    """
    found = _proxy_variables(environ)
    found.pop("no", None)  # NO_PROXY is a list of exceptions, not a proxy
    return found


def _proxy_variables(environ: Mapping[str, str]) -> dict[str, str]:
    """Every ``*_proxy`` variable (``no`` included) by lower-cased prefix."""
    found: dict[str, str] = {}
    for name, value in environ.items():
        if value and name.lower().endswith("_proxy"):
            found[name[:-6].lower()] = value
    if "REQUEST_METHOD" in environ:
        found.pop("http", None)
    for name, value in environ.items():
        if name.endswith("_proxy") and name.islower():
            if value:
                found[name[:-6]] = value
            else:
                found.pop(name[:-6], None)
    return found


def netrc_file(environ: Mapping[str, str]) -> Path | None:
    """``$NETRC``, else ``~/.netrc`` (``~/_netrc`` on Windows)."""
    path = environ.get("NETRC")
    if path:
        return Path(path)
    try:
        home = Path.home()
    except RuntimeError:
        return None
    return home / ("_netrc" if os.name == "nt" else ".netrc")


def load_netrc(path: Path | None) -> dict[str, BasicAuth]:
    """Credentials per exact machine name; the ``default`` entry is not used.

    A missing file gives nothing; an unreadable or malformed one is logged and
    ignored (a broken ~/.netrc must not break every request).
    """
    if path is None or not path.is_file():
        return {}
    import netrc  # trust_env only: keeps netrc and shlex out of `import client`

    try:
        parsed = netrc.netrc(str(path))
    except (netrc.NetrcParseError, OSError, UnicodeError) as exc:
        log.warning("Could not read netrc file %s: %s", path, exc)
        return {}
    result: dict[str, BasicAuth] = {}
    for machine, (login, account, password) in parsed.hosts.items():
        if machine == "default":
            continue  # the catch-all entry (the netrc module files it under this name)
        try:
            auth = BasicAuth(login or account or "", password or "")
        except ValueError:
            continue  # a login with ":" or a control character cannot be sent
        result[_netrc_key(machine)] = auth
    return result


def _netrc_key(host: str) -> str:
    return host.lower().rstrip(".")


class TrustedEnv:
    """What ``trust_env=True`` reads: proxies, ``NO_PROXY`` and netrc, once.

    Build it with :meth:`load` (it reads a file: run it in a thread); every
    lookup after that is a dict access.
    """

    __slots__ = ("_netrc", "_routes", "no_proxy")

    def __init__(
        self,
        proxies: Mapping[str, str],
        no_proxy: str = "",
        netrc_auth: Mapping[str, BasicAuth] | None = None,
    ) -> None:
        self._netrc = dict(netrc_auth or {})
        self.no_proxy = NoProxy(no_proxy)
        self._routes: dict[str, ProxyRoute] = {}
        for scheme, value in proxies.items():
            if scheme not in ("http", "https", "ws", "wss"):
                continue
            route = self._route(value)
            if route is not None:
                self._routes[scheme] = route

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> TrustedEnv:
        """Read the environment (default ``os.environ``) and the netrc file."""
        env = os.environ if environ is None else environ
        variables = _proxy_variables(env)
        no_proxy = variables.pop("no", "")
        return cls(variables, no_proxy, load_netrc(netrc_file(env)))

    def _route(self, value: str) -> ProxyRoute | None:
        if "://" not in value:
            value = "http://" + value  # "proxy:3128", as curl and urllib accept
        try:
            url, auth = proxy_url(value)
        except ValueError as exc:  # InvalidUrlClientError, or unsendable credentials
            log.warning("Ignoring proxy %r from the environment: %s", value, exc)
            return None
        if auth is None:
            auth = self.netrc_auth(url.raw_host)
        return ProxyRoute(url, auth, None)

    def route_for(self, url: URL) -> ProxyRoute | None:
        """The env proxy for ``url``, or ``None`` (none set, or ``NO_PROXY`` says so)."""
        for scheme in _ENV_SCHEMES.get(url.scheme, ()):
            route = self._routes.get(scheme)
            if route is not None:
                return None if self.no_proxy.bypass(url) else route
        return None

    def netrc_auth(self, host: str | None) -> BasicAuth | None:
        """netrc credentials for exactly ``host`` (case and a trailing dot aside)."""
        if not host or not self._netrc:
            return None
        return self._netrc.get(_netrc_key(host))

    @property
    def proxies(self) -> dict[str, URL]:
        """The usable proxies by target scheme (for diagnostics)."""
        return {scheme: route.url for scheme, route in self._routes.items()}


class ProxyPolicy:
    """A session's proxy settings: its defaults, and the environment when trusted."""

    __slots__ = ("_auth", "_default", "_env", "_proxy", "trust_env")

    def __init__(
        self, proxy: StrOrURL | None, proxy_auth: BasicAuth | None, trust_env: bool
    ) -> None:
        self._proxy = proxy
        self._auth = proxy_auth
        self._default = explicit_route(proxy, proxy_auth, None)  # checked up front
        if proxy is None and proxy_auth is not None and not isinstance(proxy_auth, BasicAuth):
            raise ValueError("proxy_auth must be None or a BasicAuth")
        self.trust_env = trust_env
        self._env: TrustedEnv | None = None

    def explicit(
        self, proxy: StrOrURL | None, proxy_auth: BasicAuth | None, proxy_headers: Any
    ) -> ProxyRoute | None:
        """The request's proxy, else the session's.

        The session's ``proxy_auth`` goes with the session's proxy, or with any
        proxy when the session names none; never to a different proxy.
        """
        if proxy is None:
            if proxy_auth is None and not proxy_headers:
                return self._default
            proxy, proxy_auth = self._proxy, proxy_auth or self._auth
        elif proxy_auth is None and self._proxy is None:
            proxy_auth = self._auth
        return explicit_route(proxy, proxy_auth, proxy_headers)

    async def load_env(self) -> None:
        """Read the environment and netrc once, off the event loop (they touch files)."""
        if self.trust_env and self._env is None:
            self._env = await asyncio.to_thread(TrustedEnv.load)

    def for_hop(self, url: URL, explicit: ProxyRoute | None) -> ProxyRoute | None:
        """This hop's proxy: the explicit one, else the environment's for ``url``."""
        if explicit is not None:
            return explicit
        env = self._env
        return env.route_for(url) if env is not None else None

    def netrc_auth(self, host: str | None) -> BasicAuth | None:
        """netrc credentials for exactly ``host``, when the environment is trusted."""
        env = self._env
        return env.netrc_auth(host) if env is not None else None
