"""Request tracing: aiohttp's ``TraceConfig`` with its 16 signals.

Callbacks are ``async def cb(session, trace_config_ctx, params)``. Unlike
aiohttp, ``on_response_chunk_received`` fires for every piece a reader takes
from the body (decoded bytes), also when streaming through ``resp.content``
(``iter_chunked``, ``iter_any``, ``readline``...); aiohttp fires it only once,
from ``read()``, with the whole body. ``read_nowait()`` cannot await a
callback and fires nothing.

The DNS signals follow aiohttp: a cache hit (or joining a lookup already in
flight) fires ``on_dns_cache_hit`` alone; a miss fires ``on_dns_cache_miss``,
then ``on_dns_resolvehost_start``/``_end`` around the resolver call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Generic, Self, SupportsIndex, TypeVar

from multidict import CIMultiDict
from yarl import URL

from .streams import EMPTY_PAYLOAD, StreamReader

if TYPE_CHECKING:
    from .response import ClientResponse
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

__all__ = (
    "Trace",
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
_PARAM_NAMES = frozenset(name for name in __all__ if name.endswith("Params"))


def _load_params() -> None:
    """Bind the ``Trace*Params`` classes as globals here (``Trace.send_*`` use them).

    Deferred to the first ``TraceConfig`` (or lookup): building the dataclasses is
    most of this module's import cost. A name already bound (patched) is kept.
    """
    from . import trace_params

    module_globals = globals()
    for name in trace_params.__all__:
        module_globals.setdefault(name, getattr(trace_params, name))


def __getattr__(name: str) -> Any:
    if name in _PARAM_NAMES:
        _load_params()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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

    # Every list mutator is guarded: list's C methods do not route through append().
    def append(self, callback: Callback[P]) -> None:
        self._check()
        super().append(callback)

    def extend(self, callbacks: Iterable[Callback[P]]) -> None:
        self._check()
        super().extend(callbacks)

    def insert(self, index: SupportsIndex, callback: Callback[P]) -> None:
        self._check()
        super().insert(index, callback)

    def remove(self, callback: Callback[P]) -> None:
        self._check()
        super().remove(callback)

    def pop(self, index: SupportsIndex = -1) -> Callback[P]:
        self._check()
        return super().pop(index)

    def clear(self) -> None:
        self._check()
        super().clear()

    def __setitem__(self, index: Any, value: Any) -> None:
        self._check()
        super().__setitem__(index, value)

    def __delitem__(self, index: Any) -> None:
        self._check()
        super().__delitem__(index)

    def __iadd__(self, callbacks: Iterable[Callback[P]]) -> Self:  # type: ignore[override,misc]
        self._check()
        return super().__iadd__(callbacks)

    async def send(self, session: Any, ctx: SimpleNamespace, params: P) -> None:
        for callback in self:
            await callback(session, ctx, params)


class TraceConfig:
    """A set of trace callbacks to attach to a session (``trace_configs=[...]``)."""

    def __init__(
        self, trace_config_ctx_factory: Callable[..., SimpleNamespace] = SimpleNamespace
    ) -> None:
        _load_params()  # the send_* methods of its Traces look the classes up here
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
    """One request's view of one ``TraceConfig``: fires its signals.

    Every ``send_*`` first checks that the signal has callbacks, so a config
    that listens to a few signals costs no parameter objects for the others.
    """

    __slots__ = ("_config", "_ctx", "_session")

    def __init__(self, session: Any, config: TraceConfig, ctx: SimpleNamespace) -> None:
        self._session = session
        self._config = config
        self._ctx = ctx

    @property
    def listens_to_chunks(self) -> bool:
        """True when the config has ``on_response_chunk_received`` callbacks."""
        return bool(self._config.on_response_chunk_received)

    async def send_request_start(self, method: str, url: URL, headers: CIMultiDict[str]) -> None:
        if signal := self._config.on_request_start:
            params = TraceRequestStartParams(method, url, headers)
            await signal.send(self._session, self._ctx, params)

    async def send_request_chunk_sent(
        self, method: str, url: URL, chunk: bytes | bytearray | memoryview
    ) -> None:
        if signal := self._config.on_request_chunk_sent:
            params = TraceRequestChunkSentParams(method, url, bytes(chunk))
            await signal.send(self._session, self._ctx, params)

    async def send_response_chunk_received(self, method: str, url: URL, chunk: bytes) -> None:
        if signal := self._config.on_response_chunk_received:
            params = TraceResponseChunkReceivedParams(method, url, chunk)
            await signal.send(self._session, self._ctx, params)

    async def send_request_end(
        self, method: str, url: URL, headers: CIMultiDict[str], response: ClientResponse
    ) -> None:
        if signal := self._config.on_request_end:
            params = TraceRequestEndParams(method, url, headers, response)
            await signal.send(self._session, self._ctx, params)

    async def send_request_exception(
        self, method: str, url: URL, headers: CIMultiDict[str], exception: BaseException
    ) -> None:
        if signal := self._config.on_request_exception:
            params = TraceRequestExceptionParams(method, url, headers, exception)
            await signal.send(self._session, self._ctx, params)

    async def send_request_redirect(
        self, method: str, url: URL, headers: CIMultiDict[str], response: ClientResponse
    ) -> None:
        if signal := self._config.on_request_redirect:
            params = TraceRequestRedirectParams(method, url, headers, response)
            await signal.send(self._session, self._ctx, params)

    async def send_request_headers(self, method: str, url: URL, headers: CIMultiDict[str]) -> None:
        if signal := self._config.on_request_headers_sent:
            params = TraceRequestHeadersSentParams(method, url, headers)
            await signal.send(self._session, self._ctx, params)

    async def send_connection_queued_start(self) -> None:
        if signal := self._config.on_connection_queued_start:
            await signal.send(self._session, self._ctx, TraceConnectionQueuedStartParams())

    async def send_connection_queued_end(self) -> None:
        if signal := self._config.on_connection_queued_end:
            await signal.send(self._session, self._ctx, TraceConnectionQueuedEndParams())

    async def send_connection_create_start(self) -> None:
        if signal := self._config.on_connection_create_start:
            await signal.send(self._session, self._ctx, TraceConnectionCreateStartParams())

    async def send_connection_create_end(self) -> None:
        if signal := self._config.on_connection_create_end:
            await signal.send(self._session, self._ctx, TraceConnectionCreateEndParams())

    async def send_connection_reuseconn(self) -> None:
        if signal := self._config.on_connection_reuseconn:
            await signal.send(self._session, self._ctx, TraceConnectionReuseconnParams())

    async def send_dns_resolvehost_start(self, host: str) -> None:
        if signal := self._config.on_dns_resolvehost_start:
            await signal.send(self._session, self._ctx, TraceDnsResolveHostStartParams(host))

    async def send_dns_resolvehost_end(self, host: str) -> None:
        if signal := self._config.on_dns_resolvehost_end:
            await signal.send(self._session, self._ctx, TraceDnsResolveHostEndParams(host))

    async def send_dns_cache_hit(self, host: str) -> None:
        if signal := self._config.on_dns_cache_hit:
            await signal.send(self._session, self._ctx, TraceDnsCacheHitParams(host))

    async def send_dns_cache_miss(self, host: str) -> None:
        if signal := self._config.on_dns_cache_miss:
            await signal.send(self._session, self._ctx, TraceDnsCacheMissParams(host))


# -- per-chunk tracing of a response body -------------------------------------------


class _TracedStreamReader(StreamReader):
    """A body whose every read fires ``on_response_chunk_received``.

    Only the public readers are wrapped, and none of them calls another
    wrapped one, so each piece fires exactly once. ``iter_any``,
    ``iter_chunks``, ``readline`` and line iteration go through them.
    """

    _trace_method: str
    _trace_url: URL
    _traces: list[Trace]

    async def _fire(self, chunk: bytes) -> bytes:
        if chunk:
            for trace in self._traces:
                await trace.send_response_chunk_received(self._trace_method, self._trace_url, chunk)
        return chunk

    async def readany(self) -> bytes:
        return await self._fire(await super().readany())

    async def read(self, n: int = -1) -> bytes:
        if n >= 0:
            return await self._fire(await super().read(n))
        blocks = []
        while block := await self.readany():  # fires per block, not once for the body
            blocks.append(block)
        return b"".join(blocks)

    async def readexactly(self, n: int) -> bytes:
        return await self._fire(await super().readexactly(n))

    async def readuntil(self, separator: bytes = b"\n", max_size: int | None = None) -> bytes:
        return await self._fire(await super().readuntil(separator, max_size))

    async def readchunk(self) -> tuple[bytes, bool]:
        data, end = await super().readchunk()
        return await self._fire(data), end

    async def _read_up_to(self, n: int) -> bytes:
        return await self._fire(await super()._read_up_to(n))


def trace_body(stream: StreamReader, method: str, url: URL, traces: list[Trace]) -> None:
    """Make ``stream`` fire ``on_response_chunk_received`` for what readers take.

    The protocol may already have fed it, so the live object is re-classed
    (its buffer and identity stay); untraced bodies keep the plain class and
    pay nothing. The shared empty body is left alone: it has no chunks.
    """
    if stream is EMPTY_PAYLOAD or type(stream) is not StreamReader:
        return
    if not any(trace.listens_to_chunks for trace in traces):
        return
    stream.__class__ = _TracedStreamReader
    assert isinstance(stream, _TracedStreamReader)
    stream._trace_method = method
    stream._trace_url = url
    stream._traces = traces
