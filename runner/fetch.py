"""One attempt of one request, through the client's public API only.

The body is streamed: hashed, counted, capped at ``max_body`` and (when the
save rule says so) written to the body store, never held whole in memory.
Every failure becomes an ``ErrorInfo`` value; only bugs escape as
exceptions.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import client
from jobs import DataBody, JsonBody, RequestOptions, RequestSpec, SaveMode

from .extract import Extraction, Tap, open_tap
from .outcome import ErrorInfo, Timings

if TYPE_CHECKING:
    from .sinks.bodies import BodySink, BodyStore


NO_TIMINGS = Timings()


class BodyTooLarge(Exception):
    """The body passed ``max_body``."""


@dataclass(slots=True)
class Attempt:
    """What one try produced; the engine folds attempts into an ``Outcome``."""

    status: int | None = None
    reason: str | None = None
    final_url: str | None = None
    content_type: str | None = None
    size: int | None = None
    sha256: str | None = None
    body_path: str | None = None
    redirects: tuple[tuple[int, str], ...] = ()
    error: ErrorInfo | None = None
    retry_after: str | None = None
    timings: Timings = NO_TIMINGS  # frozen, so one shared value serves every attempt
    extraction: Extraction | None = None  # ``extract:`` / ``follow:`` results


@dataclass(frozen=True, slots=True)
class FetchSettings:
    """Run-wide settings of every attempt."""

    store: BodyStore | None
    save: SaveMode
    max_body: int | None


class PhaseClock:
    """Per-attempt phase times, filled by trace callbacks (``trace_request_ctx``)."""

    __slots__ = ("connect", "connect_start", "dns", "dns_start")

    def __init__(
        self,
        dns_start: float | None = None,
        dns: float | None = None,
        connect_start: float | None = None,
        connect: float | None = None,
    ) -> None:
        self.dns_start = dns_start
        self.dns = dns
        self.connect_start = connect_start
        self.connect = connect


def timing_trace_config() -> client.TraceConfig:
    """Trace callbacks that time DNS and connection set-up of each attempt."""
    config = client.TraceConfig()

    # Requests made without a PhaseClock (robots.txt fetches) are not timed.
    async def dns_start(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
        if ctx.trace_request_ctx is not None:
            ctx.trace_request_ctx.dns_start = time.perf_counter()

    async def dns_end(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
        clock = ctx.trace_request_ctx
        if clock is not None and clock.dns_start is not None:
            clock.dns = time.perf_counter() - clock.dns_start

    async def connect_start(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
        if ctx.trace_request_ctx is not None:
            ctx.trace_request_ctx.connect_start = time.perf_counter()

    async def connect_end(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
        clock = ctx.trace_request_ctx
        if clock is not None and clock.connect_start is not None:
            clock.connect = time.perf_counter() - clock.connect_start - (clock.dns or 0.0)

    config.on_dns_resolvehost_start.append(dns_start)
    config.on_dns_resolvehost_end.append(dns_end)
    config.on_connection_create_start.append(connect_start)
    config.on_connection_create_end.append(connect_end)
    return config


def request_kwargs(spec: RequestSpec, clock: PhaseClock) -> dict[str, Any]:
    """The client call's keyword arguments for ``spec`` (a new dict: callers may edit it)."""
    opts = spec.options
    hit = _fixed.get(id(opts))
    if hit is None or hit[0] is not opts:
        hit = _fixed_kwargs(opts)
    kwargs = hit[1].copy()
    kwargs["trace_request_ctx"] = clock
    if opts.params:
        kwargs["params"] = list(opts.params)
    body = opts.body
    if isinstance(body, JsonBody):
        kwargs["json"] = body.value
    elif isinstance(body, DataBody):
        kwargs["data"] = body.value if isinstance(body.value, str) else list(body.value)
    return kwargs


# The keyword arguments every request of one options object shares, by identity (as
# ``extract.plan_for``): a job's specs share their entry's options, and a ClientTimeout
# built per request cost ~1 µs of ~3.
_fixed: dict[int, tuple[RequestOptions, dict[str, Any]]] = {}


def _fixed_kwargs(opts: RequestOptions) -> tuple[RequestOptions, dict[str, Any]]:
    t = opts.timeout
    fixed: dict[str, Any] = {
        "headers": opts.headers,
        "allow_redirects": opts.follow_redirects,
        "max_redirects": opts.max_redirects,
        "timeout": client.ClientTimeout(
            total=t.total, connect=t.connect, sock_read=t.sock_read, sock_connect=t.sock_connect
        ),
    }
    if len(_fixed) >= 4096:
        _fixed.clear()
    hit = _fixed[id(opts)] = (opts, fixed)
    return hit


async def fetch_attempt(
    session: client.ClientSession, spec: RequestSpec, settings: FetchSettings
) -> Attempt:
    """Send ``spec`` once; read, hash and maybe store its body."""
    clock = PhaseClock()
    started = time.perf_counter()
    attempt = Attempt()
    ttfb: float | None = None
    sink: BodySink | None = None
    tap: Tap | None = None
    try:
        async with session.request(spec.method, spec.url, **request_kwargs(spec, clock)) as resp:
            ttfb = time.perf_counter() - started
            take_head(attempt, resp)
            expected = resp.status in spec.options.expect
            if settings.store is not None and _wants_body(settings, spec, expected):
                assert settings.store is not None
                sink = settings.store.open(spec.method, spec.url)
            if expected:  # data comes from the responses that count, like saved bodies
                tap = open_tap(spec.options, resp.headers, resp.content_length)
            await read_body(resp, settings.max_body, sink, attempt, tap.feed if tap else None)
            if sink is not None:
                attempt.body_path = str(await sink.commit())
                sink = None
    except asyncio.CancelledError:
        if sink is not None:
            await asyncio.shield(sink.abort())
        raise
    except Exception as exc:  # every per-request failure becomes a value
        attempt.error = classify(exc)
        tap = None  # no data from a body that did not arrive whole
        if isinstance(exc, client.TooManyRedirects):
            attempt.redirects = tuple((r.status, str(r.url)) for r in exc.history)
        if sink is not None:
            await sink.abort()
    # dns, connect, tls (not measurable through the client), ttfb, total
    attempt.timings = Timings(clock.dns, clock.connect, None, ttfb, time.perf_counter() - started)
    if tap is not None:  # after the timings: extraction is not network time
        attempt.extraction = await tap.finish(attempt.final_url or spec.url)
    return attempt


def take_head(attempt: Attempt, resp: client.ClientResponse) -> None:
    """Copy what the record needs from the response head into ``attempt``."""
    attempt.status = resp.status
    attempt.reason = resp.reason
    attempt.final_url = str(resp.url)
    attempt.content_type = resp.headers.get("Content-Type")
    attempt.retry_after = resp.headers.get("Retry-After")
    if resp.history:
        attempt.redirects = tuple((r.status, str(r.url)) for r in resp.history)


def _wants_body(settings: FetchSettings, spec: RequestSpec, expected: bool) -> bool:
    if settings.store is None:
        return False
    mode = spec.options.save
    return mode is SaveMode.ALWAYS or (mode is SaveMode.ON_SUCCESS and expected)


async def read_body(
    resp: client.ClientResponse,
    max_body: int | None,
    sink: BodySink | None,
    attempt: Attempt,
    feed: Callable[[bytes], None] | None = None,
) -> None:
    """Stream the body: count, cap at ``max_body``, hash, hand each chunk to ``feed``
    and ``sink``; sets ``attempt.size`` and ``attempt.sha256``."""
    declared = resp.content_length
    if max_body is not None and declared is not None and declared > max_body:
        raise BodyTooLarge(f"Content-Length {declared} exceeds max_body {max_body}")
    digest = hashlib.sha256()
    size = 0
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        if max_body is not None and size > max_body:
            raise BodyTooLarge(f"body exceeds max_body {max_body} bytes")
        digest.update(chunk)
        if feed is not None:
            feed(chunk)
        if sink is not None:
            await sink.write(chunk)
    attempt.size = size
    attempt.sha256 = digest.hexdigest()


def classify(exc: BaseException) -> ErrorInfo:
    """A stable error ``kind`` for records and summaries, plus the message."""
    return ErrorInfo(_kind(exc), f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)


def _kind(exc: BaseException) -> str:
    checks: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str], ...] = (
        (BodyTooLarge, "too_large"),
        (client.SocketTimeoutError, "read_timeout"),
        (client.ConnectionTimeoutError, "connect_timeout"),
        (client.TotalTimeoutError, "timeout"),
        (asyncio.TimeoutError, "timeout"),
        ((client.ClientSSLError, client.ServerFingerprintMismatch), "tls"),
        (client.ClientConnectorDNSError, "dns"),
        (client.ClientConnectorBlockedError, "blocked_address"),  # never retried
        (client.ClientConnectorError, "connect"),
        (client.TooManyRedirects, "too_many_redirects"),
        (client.RedirectClientError, "redirect"),
        ((client.InvalidURL, client.NonHttpUrlClientError), "invalid_url"),
        (client.ClientPayloadError, "payload"),
        ((client.ServerDisconnectedError, client.ClientConnectionError), "disconnected"),
        (client.ClientResponseError, "protocol"),
        (OSError, "storage"),
        (ValueError, "invalid_request"),
    )
    for types, kind in checks:
        if isinstance(exc, types):
            return kind
    return "internal"
