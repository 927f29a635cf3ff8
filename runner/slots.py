"""Per-host slots: which queued request may start now.

Three caps, checked synchronously (scrapy's downloader slots are the model):

* ``concurrency`` - requests in flight overall;
* ``per_host`` - requests in flight to one host;
* ``rate_per_host`` - request starts per second to one host, paced evenly
  (a token bucket of depth one: start ``n`` is no earlier than start
  ``n-1`` plus ``1/rate``).

Hosts with work and room take turns (round robin), so one big host cannot
starve the others. Everything is O(1) per start and per release; a host
with nothing queued or in flight is forgotten once its pacing has passed,
so a crawl over 100k hosts keeps only the active ones.

``set_rate`` overrides ``rate_per_host`` for one host (a robots.txt
Crawl-delay). Overrides live in their own bounded map, so they outlive the
host's forgetting and apply again when it comes back.
"""

from __future__ import annotations

import enum
import heapq
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class _State(enum.Enum):
    IDLE = "idle"  # nothing queued
    READY = "ready"  # queued work and room: in the ready ring
    BLOCKED = "blocked"  # at its per-host cap: wakes on release
    PACED = "paced"  # rate-limited: wakes at ``next_at``


class _Host(Generic[T]):
    __slots__ = ("in_flight", "interval", "name", "next_at", "queue", "state")

    def __init__(self, name: str, interval: float) -> None:
        self.name = name
        self.queue: deque[T] = deque()
        self.in_flight = 0
        self.interval = interval  # seconds between starts; 0: unpaced
        self.next_at = 0.0
        self.state = _State.IDLE

    def __repr__(self) -> str:
        return (
            f"<host {self.name} {self.state.value} queued={len(self.queue)} "
            f"in_flight={self.in_flight}>"
        )


class HostSlots(Generic[T]):
    """Queues work per host and releases it within the three caps."""

    def __init__(
        self,
        concurrency: int,
        per_host: int | None = None,
        rate_per_host: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_rate_overrides: int = 100_000,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self._concurrency = concurrency
        self._per_host = per_host
        self._interval = 1.0 / rate_per_host if rate_per_host else 0.0
        self._clock = clock
        self._intervals: dict[str, float] = {}  # set_rate overrides, oldest first
        self._max_overrides = max_rate_overrides
        self._hosts: dict[str, _Host[T]] = {}
        self._ready: deque[_Host[T]] = deque()
        self._paced: list[tuple[float, int, _Host[T]]] = []
        self._lingering: list[tuple[float, int, _Host[T]]] = []  # idle, pacing not over
        self._seq = 0
        self.in_flight = 0
        self.queued = 0

    def __repr__(self) -> str:
        return (
            f"<HostSlots in_flight={self.in_flight} queued={self.queued} "
            f"hosts={len(self._hosts)} ready={len(self._ready)}>"
        )

    def host_in_flight(self, host: str) -> int:
        entry = self._hosts.get(host)
        return entry.in_flight if entry is not None else 0

    def push(self, host: str, item: T) -> None:
        """Queue ``item`` for ``host``."""
        entry = self._hosts.get(host)
        if entry is None:
            interval = self._intervals.get(host, self._interval)
            entry = self._hosts[host] = _Host(host, interval)
        entry.queue.append(item)
        self.queued += 1
        if entry.state is _State.IDLE:
            self._place(entry, self._clock())

    def pop_ready(self) -> tuple[str, T] | None:
        """The next item allowed to start now (counted as in flight), or ``None``."""
        if self.in_flight >= self._concurrency:
            return None
        now = self._clock()
        self._wake_paced(now)
        if self._lingering and self._lingering[0][0] <= now:
            self._drop_lingering(now)
        ready = self._ready
        while ready:
            entry = ready.popleft()
            if entry.state is not _State.READY:
                continue
            item = entry.queue.popleft()
            self.queued -= 1
            entry.in_flight += 1
            self.in_flight += 1
            if entry.interval:
                entry.next_at = max(now, entry.next_at) + entry.interval
            self._place(entry, now)
            return entry.name, item
        return None

    def release(self, host: str) -> None:
        """A request to ``host`` ended (its slot is free again)."""
        entry = self._hosts[host]
        entry.in_flight -= 1
        self.in_flight -= 1
        now = self._clock()
        if entry.state is _State.BLOCKED:
            self._place(entry, now)
        elif entry.state is _State.IDLE:
            self._forget_if_done(entry, now)

    def set_rate(self, host: str, rate: float | None) -> None:
        """Starts per second for ``host`` from now on, instead of ``rate_per_host``.

        ``None`` removes the override. Kept while the host is idle and forgotten;
        at most ``max_rate_overrides`` hosts are remembered (the oldest setting
        goes first). A start already paced keeps its time; the next uses the rate.
        """
        if rate is not None and not rate > 0:  # also refuses NaN
            raise ValueError("rate must be > 0 (or None)")
        intervals = self._intervals
        intervals.pop(host, None)  # re-inserted last: the newest setting
        if rate is None:
            interval = self._interval
        else:
            interval = intervals[host] = 1.0 / rate
            if len(intervals) > self._max_overrides:
                del intervals[next(iter(intervals))]
        entry = self._hosts.get(host)
        if entry is not None:
            entry.interval = interval

    def next_wakeup(self) -> float | None:
        """When the earliest paced host may start again (clock time)."""
        while self._paced and self._paced[0][2].state is not _State.PACED:
            heapq.heappop(self._paced)
        return self._paced[0][0] if self._paced else None

    # -- internals -----------------------------------------------------------------

    def _place(self, entry: _Host[T], now: float) -> None:
        """Put ``entry`` in the state its queue, cap and pacing call for."""
        if not entry.queue:
            entry.state = _State.IDLE
            self._forget_if_done(entry, now)
        elif self._per_host and entry.in_flight >= self._per_host:
            entry.state = _State.BLOCKED
        elif entry.next_at > now:
            entry.state = _State.PACED
            self._seq += 1
            heapq.heappush(self._paced, (entry.next_at, self._seq, entry))
        else:
            entry.state = _State.READY
            self._ready.append(entry)

    def _wake_paced(self, now: float) -> None:
        paced = self._paced
        while paced and paced[0][0] <= now:
            _, _, entry = heapq.heappop(paced)
            if entry.state is _State.PACED:
                self._place(entry, now)

    def _forget_if_done(self, entry: _Host[T], now: float) -> None:
        # Keep a host while its pacing still matters; otherwise drop it so
        # memory follows the active hosts, not every host ever seen.
        if entry.in_flight or entry.queue:
            return
        if entry.next_at <= now:
            del self._hosts[entry.name]
        else:
            self._seq += 1
            heapq.heappush(self._lingering, (entry.next_at, self._seq, entry))

    def _drop_lingering(self, now: float) -> None:
        lingering = self._lingering
        while lingering and lingering[0][0] <= now:
            _, _, entry = heapq.heappop(lingering)
            if (
                entry.state is _State.IDLE
                and not entry.in_flight
                and self._hosts.get(entry.name) is entry
                and entry.next_at <= now
            ):
                del self._hosts[entry.name]
