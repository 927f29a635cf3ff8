"""The engine: feed requests lazily, start them within the slots, fold attempts.

* Requests are pulled from ``iter_requests`` only while fewer than a small
  buffer (a few times ``concurrency``) are queued: a 1M-line ``urls_file``
  never becomes 1M tasks or a 1M-item list.
* A request that will be retried gives its slot back *before* it waits
  (backoff or Retry-After), so waiting never blocks other hosts.
* Each request ends as one ``Outcome`` handed to ``on_outcome``.
* ``stop()`` (signals) stops scheduling; in-flight attempts get a short grace
  period, then are cancelled; what did not finish is not recorded, so a
  resumed run will do it again.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

import client
from jobs import Limits, RequestSpec

from .fetch import Attempt, FetchSettings, fetch_attempt
from .outcome import ErrorInfo, Outcome
from .retry import retry_delay, should_retry
from .slots import HostSlots

FetchFn = Callable[[client.ClientSession, RequestSpec, FetchSettings], Awaitable[Attempt]]
SleepFn = Callable[[float], Awaitable[None]]


@dataclass(slots=True)
class _Work:
    spec: RequestSpec
    started_at: str
    attempt: int = 0
    waited: float = 0.0
    last: Attempt = field(default_factory=Attempt)


class Engine:
    """Runs a stream of ``RequestSpec`` against one shared session."""

    def __init__(
        self,
        session: client.ClientSession,
        specs: Iterator[RequestSpec],
        limits: Limits,
        settings: FetchSettings,
        on_outcome: Callable[[Outcome], None],
        *,
        fetch: FetchFn = fetch_attempt,
        sleep: SleepFn = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
        grace: float = 2.0,
    ) -> None:
        self._session = session
        self._specs = specs
        self._limits = limits
        self._settings = settings
        self._on_outcome = on_outcome
        self._fetch = fetch
        self._sleep = sleep
        self._clock = clock
        self._rand = rand
        self._grace = grace
        self._slots: HostSlots[_Work] = HostSlots(
            limits.concurrency, limits.per_host, limits.rate_per_host, clock=clock
        )
        self._buffer = max(64, limits.concurrency * 4)
        self._running: set[asyncio.Task[None]] = set()
        self._waiting_retry = 0
        self._exhausted = False
        self._stopping = False
        self._bug: BaseException | None = None  # a task's exception, raised by run()
        self._wake: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        return (
            f"<Engine {self._slots!r} running={len(self._running)} "
            f"retrying={self._waiting_retry} stopping={self._stopping}>"
        )

    @property
    def stopping(self) -> bool:
        return self._stopping

    def stop(self) -> None:
        """Stop scheduling new attempts (idempotent; safe from a signal handler)."""
        self._stopping = True
        self._poke()

    async def run(self) -> None:
        """Run until every request has an outcome, or until ``stop()``."""
        loop = asyncio.get_running_loop()
        slots = self._slots
        while True:
            if not self._stopping:
                self._refill()
                while (ready := slots.pop_ready()) is not None:
                    host, work = ready
                    task = loop.create_task(self._attempt(host, work))
                    self._running.add(task)
                    task.add_done_callback(self._task_done)
            if self._stopping:
                break
            if self._exhausted and not slots.queued and not self._running:
                break  # retries waiting are running tasks too
            await self._wait(loop)
        await self._drain()

    # -- feeding ---------------------------------------------------------------------

    def _refill(self) -> None:
        slots = self._slots
        while not self._exhausted and slots.queued < self._buffer:
            spec = next(self._specs, None)
            if spec is None:
                self._exhausted = True
                return
            work = _Work(spec, _now_iso())
            if not spec.valid:
                self._emit_invalid(work)
                continue
            slots.push(_host_key(spec.url), work)

    # -- one attempt -----------------------------------------------------------------

    async def _attempt(self, host: str, work: _Work) -> None:
        work.attempt += 1
        try:
            result = await self._fetch(self._session, work.spec, self._settings)
        finally:
            self._slots.release(host)
            self._poke()
        work.last = result
        policy = work.spec.options.retry
        kind = result.error.kind if result.error is not None else None
        if self._stopping or not should_retry(policy, work.attempt, result.status, kind):
            self._emit(work)
            return
        delay = retry_delay(policy, work.attempt, result.retry_after, time.time(), self._rand)
        work.waited += delay
        self._waiting_retry += 1
        try:
            await self._sleep(delay)  # holding no slot
        finally:
            self._waiting_retry -= 1
        if self._stopping:
            self._emit(work)  # the last attempt's result stands
            return
        self._slots.push(host, work)
        self._poke()

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # A bug, not a per-URL failure: stop and let run() raise it.
            self._bug = self._bug or exc
            self._stopping = True
        self._poke()

    # -- outcomes --------------------------------------------------------------------

    def _emit(self, work: _Work) -> None:
        spec, result = work.spec, work.last
        ok = result.error is None and result.status in spec.options.expect
        self._on_outcome(
            Outcome(
                url=spec.url,
                method=spec.method,
                index=spec.index,
                source=str(spec.source),
                started_at=work.started_at,
                name=spec.name,
                final_url=result.final_url,
                status=result.status,
                reason=result.reason,
                ok=ok,
                size=result.size,
                content_type=result.content_type,
                timings=result.timings,
                attempts=work.attempt,
                redirects=result.redirects,
                error=result.error,
                sha256=result.sha256,
                body_path=result.body_path,
                retries_waited=work.waited,
            )
        )

    def _emit_invalid(self, work: _Work) -> None:
        spec = work.spec
        self._on_outcome(
            Outcome(
                url=spec.url,
                method=spec.method,
                index=spec.index,
                source=str(spec.source),
                started_at=work.started_at,
                name=spec.name,
                attempts=0,
                error=ErrorInfo("invalid_url", spec.error or "invalid URL"),
            )
        )

    # -- waiting and shutdown ------------------------------------------------------------

    async def _wait(self, loop: asyncio.AbstractEventLoop) -> None:
        self._wake = loop.create_future()
        wakeup = self._slots.next_wakeup()
        if wakeup is not None and self._timer is None:
            delay = max(0.0, wakeup - self._clock())
            self._timer = loop.call_later(delay, self._on_timer)
        await self._wake
        self._wake = None

    def _on_timer(self) -> None:
        self._timer = None
        self._poke()

    def _poke(self) -> None:
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    async def _drain(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        running = set(self._running)
        if running:
            _, pending = await asyncio.wait(running, timeout=self._grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        for task in running:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        if self._bug is not None:  # its task already left ``_running``
            raise self._bug


def _host_key(url: str) -> str:
    """The politeness key: host and port, lower-case, without credentials."""
    netloc = urlsplit(url).netloc.lower()
    return netloc.rpartition("@")[2]


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
