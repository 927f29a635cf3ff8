"""``ClientSession``: defaults, cookies, auth, timeouts and redirects.

``_request`` is a short sequence of named steps (prepare, hop, redirect);
the wire work of each hop lives in ``exchange``.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import sys
import warnings
from collections.abc import Awaitable, Callable, Iterable, Mapping
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any

from multidict import CIMultiDict
from yarl import URL

from . import exchange
from .awaitables import RequestContextManager
from .connector import BaseConnector
from .deadline import Deadline
from .exceptions import (
    TooManyRedirects,
    TotalTimeoutError,
)
from .helpers import BasicAuth
from .hops import REDIRECT_STATUSES, Hop, merge_headers, redirect_hop
from .payload import JsonPayload, Payload, get_payload
from .proxy import ProxyPolicy
from .request import ClientRequest
from .response import ClientResponse, HttpVersion, HttpVersion11, default_charset_resolver
from .serialize import check_method
from .tcp import TCPConnector
from .timeouts import DEFAULT_TIMEOUT, ClientTimeout, active, coerce_timeout
from .tls import merge_ssl_args
from .tracing import Trace, TraceConfig
from .urls import (
    HTTP_SCHEMES,
    WS_SCHEMES,
    Params,
    StrOrURL,
    build_url,
    resolve_location,
    same_origin,
    to_url,
)

if TYPE_CHECKING:
    from .cookiejar import AbstractCookieJar
    from .ws_connect import WSRequestContextManager

__all__ = ("ClientSession",)

RaiseForStatus = bool | Callable[[ClientResponse], Awaitable[None]]
# (a connector's allowed_protocol_schema_set, upgrade) -> the schemes a request may use.
_SCHEMES_CACHE: dict[tuple[frozenset[str], bool], frozenset[str]] = {}


class ClientSession:
    """A connection pool plus defaults; make one per application, not per request."""

    def __init__(
        self,
        base_url: StrOrURL | None = None,
        *,
        connector: BaseConnector | None = None,
        cookies: Any = None,
        headers: Any = None,
        proxy: StrOrURL | None = None,
        proxy_auth: BasicAuth | None = None,
        skip_auto_headers: Iterable[str] | None = None,
        auth: BasicAuth | None = None,
        json_serialize: Callable[[Any], str] = jsonlib.dumps,
        request_class: type[ClientRequest] = ClientRequest,
        response_class: type[ClientResponse] = ClientResponse,
        version: HttpVersion = HttpVersion11,
        cookie_jar: AbstractCookieJar | None = None,
        connector_owner: bool = True,
        raise_for_status: RaiseForStatus = False,
        timeout: ClientTimeout | object = ...,
        auto_decompress: bool = True,
        trust_env: bool = False,
        requote_redirect_url: bool = True,
        trace_configs: list[TraceConfig] | None = None,
        read_bufsize: int = 2**18,
        max_line_size: int = 8190,
        max_field_size: int = 8190,
        max_headers: int = 128,
        fallback_charset_resolver: Callable[[ClientResponse, bytes], str] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._base_url = None if base_url is None else to_url(base_url)
        if self._base_url is not None and (
            not self._base_url.absolute or not self._base_url.path.endswith("/")
        ):
            raise ValueError("base_url must be absolute and its path must end with '/'")
        self._connector: BaseConnector | None = connector or TCPConnector()
        self._connector_owner = connector_owner
        if cookie_jar is None:
            from .cookiejar import CookieJar  # here, not at `import client` (start-up)

            cookie_jar = CookieJar()
        self._cookie_jar = cookie_jar
        if cookies:
            self._cookie_jar.update_cookies(cookies)
        self._default_headers = merge_headers(None, headers)
        self._skip_auto_headers = frozenset(h.lower() for h in skip_auto_headers or ())
        if auth is not None and not isinstance(auth, BasicAuth):
            raise TypeError("auth must be a BasicAuth")
        self._auth = auth
        self._proxies = ProxyPolicy(proxy, proxy_auth, trust_env)
        self._json_serialize = json_serialize
        self._request_class = request_class
        self._response_class = response_class
        if tuple(version) not in ((1, 0), (1, 1)):
            # Refused here, before any connection is opened (security.md REQ-01).
            raise ValueError(f"unsupported HTTP version {version!r}: only 1.0 and 1.1")
        self._version = HttpVersion(*version)
        self._raise_for_status = raise_for_status
        if timeout is ... or timeout is None:  # aiohttp: None means the default too
            self._timeout = DEFAULT_TIMEOUT
        elif isinstance(timeout, ClientTimeout):
            self._timeout = timeout
        else:
            raise ValueError(f"timeout must be a ClientTimeout, not {timeout!r}")
        self._auto_decompress = auto_decompress
        self._trust_env = trust_env
        self._requote_redirect_url = requote_redirect_url
        self._trace_configs = list(trace_configs or ())
        for config in self._trace_configs:
            config.freeze()
        self._read_bufsize = read_bufsize
        self._limits = (max_line_size, max_field_size, max_headers)
        self._fallback_charset = fallback_charset_resolver or default_charset_resolver
        self._default_read_settings = exchange.ReadSettings(
            read_bufsize, auto_decompress, self._limits
        )
        self._closed = False

    # -- properties (aiohttp names) -------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed or self._connector is None or self._connector.closed

    @property
    def connector(self) -> BaseConnector | None:
        return self._connector

    @property
    def cookie_jar(self) -> AbstractCookieJar:
        return self._cookie_jar

    @property
    def timeout(self) -> ClientTimeout:
        return self._timeout

    @property
    def headers(self) -> CIMultiDict[str]:
        return self._default_headers

    @property
    def skip_auto_headers(self) -> frozenset[str]:
        return self._skip_auto_headers

    @property
    def auth(self) -> BasicAuth | None:
        return self._auth

    @property
    def json_serialize(self) -> Callable[[Any], str]:
        return self._json_serialize

    @property
    def connector_owner(self) -> bool:
        return self._connector_owner

    @property
    def raise_for_status(self) -> RaiseForStatus:
        return self._raise_for_status

    @property
    def auto_decompress(self) -> bool:
        return self._auto_decompress

    @property
    def trust_env(self) -> bool:
        return self._trust_env

    @property
    def trace_configs(self) -> list[TraceConfig]:
        return self._trace_configs

    @property
    def requote_redirect_url(self) -> bool:
        return self._requote_redirect_url

    @property
    def version(self) -> HttpVersion:
        return self._version

    # -- verbs ---------------------------------------------------------------------

    def request(self, method: str, url: StrOrURL, **kwargs: Any) -> RequestContextManager:
        """Start a request; await it, or use it with ``async with``."""
        return RequestContextManager(self._request(method, url, **kwargs))

    def get(self, url: StrOrURL, **kwargs: Any) -> RequestContextManager:
        return self.request("GET", url, **kwargs)

    def options(self, url: StrOrURL, **kwargs: Any) -> RequestContextManager:
        return self.request("OPTIONS", url, **kwargs)

    def head(self, url: StrOrURL, **kwargs: Any) -> RequestContextManager:
        kwargs.setdefault("allow_redirects", False)  # aiohttp's default for HEAD
        return self.request("HEAD", url, **kwargs)

    def post(self, url: StrOrURL, *, data: Any = None, **kwargs: Any) -> RequestContextManager:
        return self.request("POST", url, data=data, **kwargs)

    def put(self, url: StrOrURL, *, data: Any = None, **kwargs: Any) -> RequestContextManager:
        return self.request("PUT", url, data=data, **kwargs)

    def patch(self, url: StrOrURL, *, data: Any = None, **kwargs: Any) -> RequestContextManager:
        return self.request("PATCH", url, data=data, **kwargs)

    def delete(self, url: StrOrURL, **kwargs: Any) -> RequestContextManager:
        return self.request("DELETE", url, **kwargs)

    def ws_connect(self, url: StrOrURL, **kwargs: Any) -> WSRequestContextManager:
        """Open a websocket; await it, or use it with ``async with`` (``ws_connect.connect``)."""
        # Imported here: wsproto and h11 cost ~15 ms of `import client` otherwise.
        from .ws_connect import WSRequestContextManager
        from .ws_connect import connect as _ws_connect

        return WSRequestContextManager(_ws_connect(self, url, **kwargs))

    # -- the request pipeline ----------------------------------------------------------

    async def _request(
        self,
        method: str,
        str_or_url: StrOrURL,
        *,
        params: Params = None,
        data: Any = None,
        json: Any = None,
        cookies: Any = None,
        headers: Any = None,
        skip_auto_headers: Iterable[str] | None = None,
        auth: BasicAuth | None = None,
        allow_redirects: bool = True,
        max_redirects: int = 10,
        compress: str | bool | None = None,
        chunked: bool | None = None,
        expect100: bool = False,
        raise_for_status: RaiseForStatus | None = None,
        read_until_eof: bool = True,
        proxy: StrOrURL | None = None,
        proxy_auth: BasicAuth | None = None,
        timeout: Any = ...,
        verify_ssl: bool | None = None,
        fingerprint: bytes | None = None,
        ssl_context: Any = None,
        ssl: Any = True,
        server_hostname: str | None = None,
        proxy_headers: Any = None,
        trace_request_ctx: Any = None,
        read_bufsize: int | None = None,
        auto_decompress: bool | None = None,
        max_line_size: int | None = None,
        max_field_size: int | None = None,
        max_headers: int | None = None,
        upgrade: bool = False,
    ) -> ClientResponse:
        if self.closed:
            raise RuntimeError("Session is closed")
        if data is not None and json is not None:
            raise ValueError("data and json parameters can not be used at the same time")
        route = self._proxies.explicit(proxy, proxy_auth, proxy_headers)
        if self._trust_env:
            await self._proxies.load_env()  # once per session
        method = check_method(method).upper()
        url = build_url(str_or_url, self._base_url, params, self._allowed_schemes(upgrade))
        auth, url = self._pick_auth(url, auth)
        trace_configs = self._trace_configs
        if headers or trace_configs:
            user_headers = merge_headers(self._default_headers, headers)
        else:
            # Copy-on-write: the session's defaults stand for this request's headers
            # until a redirect edits them (_follow copies first); _hop_headers copies.
            user_headers = self._default_headers
        if auth is not None and "Authorization" in user_headers:
            raise ValueError(
                "Cannot combine AUTHORIZATION header with AUTH argument or credentials "
                "encoded in URL"
            )
        body = self._build_body(data, json)
        if ssl is True and verify_ssl is None and ssl_context is None and fingerprint is None:
            ssl_setting: Any = True  # the default: merge_ssl_args would return it unchanged
        else:
            ssl_setting = merge_ssl_args(ssl, verify_ssl, ssl_context, fingerprint)
        client_timeout = coerce_timeout(timeout, self._timeout)
        settings = self._default_read_settings.override(
            read_bufsize, auto_decompress, max_line_size, max_field_size, max_headers
        )
        if upgrade:  # ws_connect: a 101 hands the socket over
            settings = exchange.ReadSettings(
                settings.read_bufsize, settings.auto_decompress, settings.limits, upgrade=True
            )
        traces = self._make_traces(trace_request_ctx) if trace_configs else []
        skip = self._skip_auto_headers
        if skip_auto_headers:  # the common case (none) builds no set at all
            skip = skip | frozenset(h.lower() for h in skip_auto_headers)
        hop = Hop(method, url, user_headers, body, auth, cookies, route)
        for trace in traces:
            await trace.send_request_start(method, url, user_headers)
        loop = asyncio.get_running_loop()
        total = active(client_timeout.total)
        now = loop.time()
        deadline = now + total if total else None
        try:
            guard = Deadline(loop, deadline, now)  # asyncio.timeout_at(deadline), cheaper
            try:
                resp = await self._follow(
                    hop,
                    skip,
                    ssl_setting,
                    server_hostname,
                    compress,
                    chunked,
                    expect100,
                    allow_redirects,
                    max_redirects,
                    client_timeout,
                    settings,
                    deadline,
                    traces,
                )
            except BaseException as exc:
                guard.exit(exc)  # a TimeoutError from exc if the deadline ended it
                raise
            guard.exit(None)
        except TimeoutError as exc:
            if guard.expired():
                error = TotalTimeoutError(f"Total timeout of {total} s reached for {url}")
                await self._trace_exception(traces, hop, error)
                raise error from exc
            await self._trace_exception(traces, hop, exc)
            raise
        except BaseException as exc:
            await self._trace_exception(traces, hop, exc)
            raise
        finally:
            if body is not None:
                await body.close()  # aiohttp closes the user's file too, once sent
        try:
            await self._check_status(resp, raise_for_status)
        except BaseException as exc:
            # Every traced start gets one terminal event, as in aiohttp 3.14.5.
            await self._trace_exception(traces, hop, exc)
            raise
        for trace in traces:
            await trace.send_request_end(hop.method, hop.url, hop.headers, resp)
        return resp

    async def _follow(
        self,
        hop: Hop,
        skip: frozenset[str],
        ssl_setting: Any,
        server_hostname: str | None,
        compress: str | bool | None,
        chunked: bool | None,
        expect100: bool,
        allow_redirects: bool,
        max_redirects: int,
        timeout: ClientTimeout,
        settings: exchange.ReadSettings,
        deadline: float | None,
        traces: list[Trace],
    ) -> ClientResponse:
        """Send hop after hop until a final response (or a redirect error)."""
        history: list[ClientResponse] = []
        connector = self._connector
        assert connector is not None
        while True:
            # Per hop: a redirect may pick another env proxy (and its credentials).
            route = self._proxies.for_hop(hop.url, hop.proxy)
            req = self._request_class(
                hop.method,
                hop.url,
                headers=self._hop_headers(hop),
                skip_auto_headers=skip,
                body=hop.body,
                version=(self._version.major, self._version.minor),
                compress=compress,
                chunked=chunked,
                expect100=expect100,
                ssl=ssl_setting,
                server_hostname=server_hostname,
                proxy=None if route is None else route.url,
                proxy_auth=None if route is None else route.auth,
                proxy_headers=None if route is None else route.headers,
                force_close=connector.force_close and not settings.upgrade,
                traces=traces or None,
            )
            hop_history = tuple(history)
            resp = await exchange.send(
                connector,
                req,
                timeout,
                settings,
                deadline,
                partial(self._new_response, history=hop_history, traces=traces),
            )
            self._cookie_jar.update_cookies_from_headers(
                resp.headers.getall("Set-Cookie", ()), resp.url
            )
            if not allow_redirects or resp.status not in REDIRECT_STATUSES:
                return resp
            target = resolve_location(
                hop.url,
                resp.headers.getall("Location", ()) or resp.headers.getall("URI", ()),
                requote=self._requote_redirect_url,
                allowed_schemes=self._allowed_schemes(),
            )
            if target is None:
                return resp
            for trace in traces:
                await trace.send_request_redirect(hop.method, hop.url, hop.headers, resp)
            history.append(resp)
            resp.release()
            if len(history) > max_redirects:
                raise TooManyRedirects(history[0].request_info, tuple(history))
            if hop.headers is self._default_headers:
                hop.headers = CIMultiDict(hop.headers)  # never edit the session's defaults
            redirect_hop(hop, resp.status, target)

    # -- steps ---------------------------------------------------------------------------

    def _allowed_schemes(self, upgrade: bool = False) -> frozenset[str]:
        assert self._connector is not None
        offered = self._connector.allowed_protocol_schema_set
        cacheable = type(offered) is frozenset  # a subclass may set a plain (unhashable) set
        schemes = _SCHEMES_CACHE.get((offered, upgrade)) if cacheable else None
        if schemes is None:  # once per connector class, not a set intersection per request
            wanted = HTTP_SCHEMES | WS_SCHEMES if upgrade else HTTP_SCHEMES  # ws:// for ws_connect
            schemes = frozenset(offered & wanted)
            if cacheable:
                _SCHEMES_CACHE[(offered, upgrade)] = schemes
        return schemes

    def _pick_auth(self, url: URL, auth: BasicAuth | None) -> tuple[BasicAuth | None, URL]:
        """Request auth, else URL credentials, else the session's (own origin only)."""
        url_auth = BasicAuth.from_url(url)
        if url_auth is not None:
            url = url.with_user(None)
            if auth is not None:
                raise ValueError("Cannot combine AUTH argument with credentials encoded in URL")
            return url_auth, url
        if auth is not None:
            if not isinstance(auth, BasicAuth):
                raise TypeError("auth must be a BasicAuth")
            return auth, url
        if self._auth is not None and (self._base_url is None or same_origin(self._base_url, url)):
            return self._auth, url
        return None, url

    def _build_body(self, data: Any, json: Any) -> Payload | None:
        if json is not None:
            return JsonPayload(json, dumps=self._json_serialize)
        if data is None:
            return None
        # client.formdata loads on first use: until then no FormData can exist.
        formdata = sys.modules.get(f"{__package__}.formdata")
        if formdata is not None and isinstance(data, formdata.FormData):
            payload: Payload = data()
            return payload
        if isinstance(data, Mapping) or (
            isinstance(data, list | tuple) and data and isinstance(data[0], tuple)
        ):
            from .formdata import FormData

            return FormData(data)()
        return get_payload(data)

    def _hop_headers(self, hop: Hop) -> CIMultiDict[str]:
        headers = CIMultiDict(hop.headers)
        auth = hop.auth
        if auth is None and self._trust_env and "Authorization" not in headers:
            auth = self._proxies.netrc_auth(hop.url.raw_host)
        if auth is not None:
            headers["Authorization"] = auth.encode()
        cookie_value = self._cookie_value(hop)
        if cookie_value:
            existing = headers.get("Cookie")
            headers["Cookie"] = f"{existing}; {cookie_value}" if existing else cookie_value
        return headers

    def _cookie_value(self, hop: Hop) -> str:
        jar = self._cookie_jar
        if not hop.cookies and not len(jar):
            return ""  # the common case: nothing to send, skip the filter
        from .cookiejar import CookieJar, cookie_header  # not at `import client` (start-up)

        cookies = jar.filter_cookies(hop.url)
        if hop.cookies:
            tmp = CookieJar(unsafe=True, quote_cookie=getattr(jar, "quote_cookie", True))
            tmp.update_cookies(hop.cookies)
            cookies.update(tmp.filter_cookies(hop.url))
        if not cookies:
            return ""
        return cookie_header(cookies, getattr(jar, "quote_cookie", True))

    def _make_traces(self, trace_request_ctx: Any) -> list[Trace]:
        return [
            Trace(self, config, config.trace_config_ctx(trace_request_ctx=trace_request_ctx))
            for config in self._trace_configs
        ]

    def _new_response(
        self, req: ClientRequest, *, history: tuple[ClientResponse, ...], traces: list[Trace]
    ) -> ClientResponse:
        return self._response_class(
            req.method,
            req.original_url,
            request_info=req.request_info,
            history=history,
            traces=traces or None,
            session=self,
            fallback_charset_resolver=self._fallback_charset,
        )

    async def _check_status(self, resp: ClientResponse, override: RaiseForStatus | None) -> None:
        rule = self._raise_for_status if override is None else override
        if rule is True:
            resp.raise_for_status()
        elif callable(rule):
            await rule(resp)

    @staticmethod
    async def _trace_exception(traces: list[Trace], hop: Hop, exc: BaseException) -> None:
        for trace in traces:
            await trace.send_request_exception(hop.method, hop.url, hop.headers, exc)

    # -- lifecycle -----------------------------------------------------------------------

    async def close(self) -> None:
        """Close the session; with an owned connector, every socket, fully."""
        if not self._closed:
            self._closed = True
            if self._connector is not None and self._connector_owner:
                await self._connector.close()
            self._connector = None

    def detach(self) -> None:
        """Forget the connector without closing it."""
        self._connector = None

    async def __aenter__(self) -> ClientSession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __del__(self, _warnings: Any = warnings) -> None:
        if not getattr(self, "_closed", True) and self._connector is not None:
            _warnings.warn(f"Unclosed client session {self!r}", ResourceWarning, source=self)

