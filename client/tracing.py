"""Request tracing: aiohttp's ``TraceConfig`` with its 16 signals.

Callbacks are ``async def cb(session, trace_config_ctx, params)``. Unlike
aiohttp, ``on_response_chunk_received`` fires for every chunk a reader takes,
also when streaming through ``resp.content`` (aiohttp fires it only once,
from ``read()``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from multidict import CIMultiDict
from yarl import URL

if TYPE_CHECKING:
    from .response import ClientResponse

__all__ = (
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
)

P = TypeVar("P")
Callback = Callable[[Any, SimpleNamespace, P], Awaitable[None]]


class Signal(list[Callback[P]], Generic[P]):
    """A list of async callbacks that can be frozen (as aiosignal's Signal)."""

    def __init__(self) -> None:
        super().__init__()
        self._frozen = False

    @property
    def frozen(self) -> bool:
        return self._frozen

    def freeze(self) -> None:
        self._frozen = True

    def _check(self) -> None:
        if self._frozen:
            raise RuntimeError("Cannot modify frozen signal")

    def append(self, callback: Callback[P]) -> None:
        self._check()
        super().append(callback)

    async def send(self, session: Any, ctx: SimpleNamespace, params: P) -> None:
        for callback in self:
            await callback(session, ctx, params)


@dataclass(frozen=True, slots=True)
class TraceRequestStartParams:
    method: str
    url: URL
    headers: CIMultiDict[str]


@dataclass(frozen=True, slots=True)
class TraceRequestChunkSentParams:
    method: str
    url: URL
    chunk: bytes


@dataclass(frozen=True, slots=True)
class TraceResponseChunkReceivedParams:
    method: str
    url: URL
    chunk: bytes


@dataclass(frozen=True, slots=True)
class TraceRequestEndParams:
    method: str
    url: URL
    headers: CIMultiDict[str]
    response: ClientResponse


@dataclass(frozen=True, slots=True)
class TraceRequestExceptionParams:
    method: str
    url: URL
    headers: CIMultiDict[str]
    exception: BaseException


@dataclass(frozen=True, slots=True)
class TraceRequestRedirectParams:
    method: str
    url: URL
    headers: CIMultiDict[str]
    response: ClientResponse


@dataclass(frozen=True, slots=True)
class TraceRequestHeadersSentParams:
    method: str
    url: URL
    headers: CIMultiDict[str]


@dataclass(frozen=True, slots=True)
class TraceConnectionQueuedStartParams:
    pass


@dataclass(frozen=True, slots=True)
class TraceConnectionQueuedEndParams:
    pass


@dataclass(frozen=True, slots=True)
class TraceConnectionCreateStartParams:
    pass


@dataclass(frozen=True, slots=True)
class TraceConnectionCreateEndParams:
    pass


@dataclass(frozen=True, slots=True)
class TraceConnectionReuseconnParams:
    pass


@dataclass(frozen=True, slots=True)
class TraceDnsResolveHostStartParams:
    host: str


@dataclass(frozen=True, slots=True)
class TraceDnsResolveHostEndParams:
    host: str


@dataclass(frozen=True, slots=True)
class TraceDnsCacheHitParams:
    host: str


@dataclass(frozen=True, slots=True)
class TraceDnsCacheMissParams:
    host: str


class TraceConfig:
    """A set of trace callbacks to attach to a session (``trace_configs=[...]``)."""

    def __init__(
        self, trace_config_ctx_factory: Callable[..., SimpleNamespace] = SimpleNamespace
    ) -> None:
        self._factory = trace_config_ctx_factory
        self.on_request_start: Signal[TraceRequestStartParams] = Signal()
        self.on_request_chunk_sent: Signal[TraceRequestChunkSentParams] = Signal()
        self.on_response_chunk_received: Signal[TraceResponseChunkReceivedParams] = Signal()
        self.on_request_end: Signal[TraceRequestEndParams] = Signal()
        self.on_request_exception: Signal[TraceRequestExceptionParams] = Signal()
        self.on_request_redirect: Signal[TraceRequestRedirectParams] = Signal()
        self.on_request_headers_sent: Signal[TraceRequestHeadersSentParams] = Signal()
        self.on_connection_queued_start: Signal[TraceConnectionQueuedStartParams] = Signal()
        self.on_connection_queued_end: Signal[TraceConnectionQueuedEndParams] = Signal()
        self.on_connection_create_start: Signal[TraceConnectionCreateStartParams] = Signal()
        self.on_connection_create_end: Signal[TraceConnectionCreateEndParams] = Signal()
        self.on_connection_reuseconn: Signal[TraceConnectionReuseconnParams] = Signal()
        self.on_dns_resolvehost_start: Signal[TraceDnsResolveHostStartParams] = Signal()
        self.on_dns_resolvehost_end: Signal[TraceDnsResolveHostEndParams] = Signal()
        self.on_dns_cache_hit: Signal[TraceDnsCacheHitParams] = Signal()
        self.on_dns_cache_miss: Signal[TraceDnsCacheMissParams] = Signal()

    def trace_config_ctx(self, trace_request_ctx: Any = None) -> SimpleNamespace:
        return self._factory(trace_request_ctx=trace_request_ctx)

    def freeze(self) -> None:
        for value in vars(self).values():
            if isinstance(value, Signal):
                value.freeze()


class Trace:
    """One request's view of one ``TraceConfig``: fires its signals."""

    __slots__ = ("_config", "_ctx", "_session")

    def __init__(self, session: Any, config: TraceConfig, ctx: SimpleNamespace) -> None:
        self._session = session
        self._config = config
        self._ctx = ctx

    async def send_request_start(self, method: str, url: URL, headers: CIMultiDict[str]) -> None:
        await self._config.on_request_start.send(
            self._session, self._ctx, TraceRequestStartParams(method, url, headers)
        )

    async def send_request_chunk_sent(self, method: str, url: URL, chunk: bytes) -> None:
        await self._config.on_request_chunk_sent.send(
            self._session, self._ctx, TraceRequestChunkSentParams(method, url, chunk)
        )

    async def send_response_chunk_received(self, method: str, url: URL, chunk: bytes) -> None:
        await self._config.on_response_chunk_received.send(
            self._session, self._ctx, TraceResponseChunkReceivedParams(method, url, chunk)
        )

    async def send_request_end(
        self, method: str, url: URL, headers: CIMultiDict[str], response: ClientResponse
    ) -> None:
        await self._config.on_request_end.send(
            self._session, self._ctx, TraceRequestEndParams(method, url, headers, response)
        )

    async def send_request_exception(
        self, method: str, url: URL, headers: CIMultiDict[str], exception: BaseException
    ) -> None:
        await self._config.on_request_exception.send(
            self._session, self._ctx, TraceRequestExceptionParams(method, url, headers, exception)
        )

    async def send_request_redirect(
        self, method: str, url: URL, headers: CIMultiDict[str], response: ClientResponse
    ) -> None:
        await self._config.on_request_redirect.send(
            self._session, self._ctx, TraceRequestRedirectParams(method, url, headers, response)
        )

    async def send_request_headers(self, method: str, url: URL, headers: CIMultiDict[str]) -> None:
        await self._config.on_request_headers_sent.send(
            self._session, self._ctx, TraceRequestHeadersSentParams(method, url, headers)
        )

    async def send_connection_queued_start(self) -> None:
        await self._config.on_connection_queued_start.send(
            self._session, self._ctx, TraceConnectionQueuedStartParams()
        )

    async def send_connection_queued_end(self) -> None:
        await self._config.on_connection_queued_end.send(
            self._session, self._ctx, TraceConnectionQueuedEndParams()
        )

    async def send_connection_create_start(self) -> None:
        await self._config.on_connection_create_start.send(
            self._session, self._ctx, TraceConnectionCreateStartParams()
        )

    async def send_connection_create_end(self) -> None:
        await self._config.on_connection_create_end.send(
            self._session, self._ctx, TraceConnectionCreateEndParams()
        )

    async def send_connection_reuseconn(self) -> None:
        await self._config.on_connection_reuseconn.send(
            self._session, self._ctx, TraceConnectionReuseconnParams()
        )

    async def send_dns_resolvehost_start(self, host: str) -> None:
        await self._config.on_dns_resolvehost_start.send(
            self._session, self._ctx, TraceDnsResolveHostStartParams(host)
        )

    async def send_dns_resolvehost_end(self, host: str) -> None:
        await self._config.on_dns_resolvehost_end.send(
            self._session, self._ctx, TraceDnsResolveHostEndParams(host)
        )

    async def send_dns_cache_hit(self, host: str) -> None:
        await self._config.on_dns_cache_hit.send(
            self._session, self._ctx, TraceDnsCacheHitParams(host)
        )

    async def send_dns_cache_miss(self, host: str) -> None:
        await self._config.on_dns_cache_miss.send(
            self._session, self._ctx, TraceDnsCacheMissParams(host)
        )
