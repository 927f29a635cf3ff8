"""The engine: retries on a fake clock, lazy feeding, stop(), bugs surfacing, the
caps as a real server counts them, and expectations driving the exit code.

Retries never really sleep: ``sleep=`` records the delay and returns, ``rand=``
is fixed, and ``fetch=`` is scripted (or the real one against a scripted
server). For the caps, several host names all resolve to 127.0.0.1 (a test
resolver), so one loopback server counts in-flight requests per ``Host``.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from email.utils import formatdate
from pathlib import Path

import pytest
from servers import (
    CountingServer,
    Endpoint,
    ReadRequest,
    RequestRecord,
    ScriptedServer,
    Send,
    http_response,
)

import client
from client.resolver import ResolveResult
from jobs import (
    JobFile,
    Limits,
    RequestDefaults,
    RequestSpec,
    RetryPolicy,
    SaveMode,
    iter_requests,
    job_from_urls,
    load_job_text,
)
from runner.app import EXIT_FAILED, EXIT_OK, EXIT_USAGE, RunOptions, run_job
from runner.cli import main as cli_main
from runner.engine import Engine, FetchFn, SleepFn
from runner.fetch import Attempt, FetchSettings
from runner.outcome import ErrorInfo, Outcome, Timings

NO_BODIES = FetchSettings(None, SaveMode.NEVER, None)


def specs(
    urls: Iterable[str], retry: RetryPolicy | None = None, expect: Iterable[int] | None = None
) -> Iterator[RequestSpec]:
    defaults = RequestDefaults(expect=frozenset(expect)) if expect else RequestDefaults()
    job = job_from_urls(list(urls), retry=retry or RetryPolicy(), defaults=defaults)
    return iter_requests(job)


class ScriptedFetch:
    """``fetch=``: per-URL scripted attempts (the last one repeats); records every call."""

    def __init__(self, script: dict[str, list[Attempt]] | None = None) -> None:
        self.script = script or {}
        self.calls: list[str] = []

    async def __call__(
        self, _session: client.ClientSession, spec: RequestSpec, _settings: FetchSettings
    ) -> Attempt:
        self.calls.append(spec.url)
        await asyncio.sleep(0)
        queue = self.script.get(spec.url)
        if not queue:
            return Attempt(status=200, reason="OK", size=2)
        return queue.pop(0) if len(queue) > 1 else queue[0]


class RecordingSleep:
    """``sleep=``: records each delay and returns at once (optionally after ``gate``)."""

    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.delays: list[float] = []
        self.gate = gate

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(0)


@pytest.fixture
async def session() -> AsyncIterator[client.ClientSession]:
    async with client.ClientSession() as s:
        yield s


def make_engine(
    session: client.ClientSession,
    feed: Iterator[RequestSpec],
    outcomes: list[Outcome],
    fetch: FetchFn,
    limits: Limits | None = None,
    *,
    sleep: SleepFn = asyncio.sleep,
    rand: Callable[[], float] = random.random,
    grace: float = 2.0,
) -> Engine:
    return Engine(
        session,
        feed,
        limits or Limits(),
        NO_BODIES,
        outcomes.append,
        fetch=fetch,
        sleep=sleep,
        rand=rand,
        grace=grace,
    )


async def run(engine: Engine) -> None:
    await asyncio.wait_for(engine.run(), 10)


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.001)


# -- retries on a fake clock -----------------------------------------------------------


async def test_retries_follow_full_jitter_backoff_bounded_by_max_backoff(
    session: client.ClientSession,
) -> None:
    url = "http://a.test/"
    fetch = ScriptedFetch({url: [Attempt(status=503, reason="Service Unavailable")]})
    sleep = RecordingSleep()
    outcomes: list[Outcome] = []
    draws = iter([1.0, 1.0, 0.5, 1.0, 0.25])
    policy = RetryPolicy(attempts=6, backoff=1.0, max_backoff=5.0)
    engine = make_engine(
        session, specs([url], policy), outcomes, fetch, sleep=sleep, rand=lambda: next(draws)
    )
    await run(engine)
    assert fetch.calls == [url] * 6
    # ceilings 1, 2, 4, 5 (capped), 5 times the draws
    assert sleep.delays == [1.0, 2.0, 2.0, 5.0, 1.25]
    [outcome] = outcomes
    assert (outcome.attempts, outcome.status, outcome.ok) == (6, 503, False)
    assert outcome.retries_waited == pytest.approx(11.25)


async def test_a_success_ends_the_retries(session: client.ClientSession) -> None:
    url = "http://a.test/"
    fetch = ScriptedFetch({url: [Attempt(status=503), Attempt(status=502), Attempt(status=200)]})
    sleep = RecordingSleep()
    outcomes: list[Outcome] = []
    engine = make_engine(
        session,
        specs([url], RetryPolicy(attempts=5)),
        outcomes,
        fetch,
        sleep=sleep,
        rand=lambda: 0.5,
    )
    await run(engine)
    assert len(fetch.calls) == 3
    assert sleep.delays == [0.25, 0.5]
    assert (outcomes[0].attempts, outcomes[0].status, outcomes[0].ok) == (3, 200, True)


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        ("7", 7.0),
        ("86400", 120.0),  # capped: a server cannot park the run for a day
        (formatdate(time.time() + 3600 * 24, usegmt=True), 120.0),
    ],
)
async def test_retry_after_is_honoured_and_capped(
    session: client.ClientSession, retry_after: str, expected: float
) -> None:
    url = "http://a.test/"
    fetch = ScriptedFetch({url: [Attempt(status=429, retry_after=retry_after), Attempt(200)]})
    sleep = RecordingSleep()
    outcomes: list[Outcome] = []
    engine = make_engine(session, specs([url]), outcomes, fetch, sleep=sleep, rand=lambda: 0.0)
    await run(engine)
    assert sleep.delays == [expected]
    assert outcomes[0].attempts == 2


async def test_retry_after_http_date(session: client.ClientSession) -> None:
    url = "http://a.test/"
    date = formatdate(time.time() + 30, usegmt=True)
    fetch = ScriptedFetch({url: [Attempt(status=503, retry_after=date), Attempt(status=200)]})
    sleep = RecordingSleep()
    outcomes: list[Outcome] = []
    engine = make_engine(session, specs([url]), outcomes, fetch, sleep=sleep, rand=lambda: 0.0)
    await run(engine)
    [delay] = sleep.delays
    assert 27.0 <= delay <= 30.0  # whole seconds on the wire, and a little time passed


@pytest.mark.parametrize("kind", ["tls", "invalid_url", "too_large", "too_many_redirects"])
async def test_permanent_errors_are_not_retried(session: client.ClientSession, kind: str) -> None:
    url = "http://a.test/"
    fetch = ScriptedFetch({url: [Attempt(error=ErrorInfo(kind, "nope"))]})
    sleep = RecordingSleep()
    outcomes: list[Outcome] = []
    engine = make_engine(
        session, specs([url], RetryPolicy(attempts=5)), outcomes, fetch, sleep=sleep
    )
    await run(engine)
    assert fetch.calls == [url]
    assert sleep.delays == []
    assert outcomes[0].error == ErrorInfo(kind, "nope")
    assert (outcomes[0].attempts, outcomes[0].ok, outcomes[0].status_class) == (1, False, "error")


@pytest.mark.parametrize(
    "kind",
    ["connect", "dns", "read_timeout", "connect_timeout", "timeout", "disconnected", "payload"],
)
async def test_transient_errors_are_retried(session: client.ClientSession, kind: str) -> None:
    url = "http://a.test/"
    fetch = ScriptedFetch({url: [Attempt(error=ErrorInfo(kind, "flaky"))]})
    sleep = RecordingSleep()
    outcomes: list[Outcome] = []
    engine = make_engine(
        session,
        specs([url], RetryPolicy(attempts=3)),
        outcomes,
        fetch,
        sleep=sleep,
        rand=lambda: 1.0,
    )
    await run(engine)
    assert len(fetch.calls) == 3
    assert sleep.delays == [0.5, 1.0]
    assert outcomes[0].attempts == 3
    assert outcomes[0].error is not None
    assert outcomes[0].error.kind == kind


async def test_on_status_decides_which_statuses_are_retried(
    session: client.ClientSession,
) -> None:
    teapot, busy = "http://a.test/teapot", "http://b.test/busy"
    fetch = ScriptedFetch({teapot: [Attempt(status=418)], busy: [Attempt(status=503)]})
    outcomes: list[Outcome] = []
    policy = RetryPolicy(attempts=4, on_status=frozenset({418}))
    engine = make_engine(
        session, specs([teapot, busy], policy), outcomes, fetch, sleep=RecordingSleep()
    )
    await run(engine)
    assert fetch.calls.count(teapot) == 4
    assert fetch.calls.count(busy) == 1
    assert {o.url: o.attempts for o in outcomes} == {teapot: 4, busy: 1}


async def test_expect_decides_ok(session: client.ClientSession) -> None:
    gone, fine = "http://a.test/gone", "http://a.test/fine"
    fetch = ScriptedFetch({gone: [Attempt(status=404)], fine: [Attempt(status=200)]})
    outcomes: list[Outcome] = []
    await run(make_engine(session, specs([gone, fine], expect=[404]), outcomes, fetch))
    assert {o.url: o.ok for o in outcomes} == {gone: True, fine: False}


async def test_the_slot_is_free_while_a_retry_waits(session: client.ClientSession) -> None:
    a, b = "http://a.test/", "http://b.test/"
    b_started = asyncio.Event()
    fetch = ScriptedFetch({a: [Attempt(status=503), Attempt(status=200)]})
    seen: list[str] = []
    outcomes: list[Outcome] = []

    async def fetch_b_aware(
        s: client.ClientSession, spec: RequestSpec, st: FetchSettings
    ) -> Attempt:
        if spec.url == b:
            seen.append(repr(engine))  # while a's retry sleeps
            b_started.set()
        return await fetch(s, spec, st)

    sleep = RecordingSleep(gate=b_started)  # a's wait ends only once b has started
    engine = make_engine(
        session,
        specs([a, b]),
        outcomes,
        fetch_b_aware,
        Limits(concurrency=1, per_host=1),
        sleep=sleep,
        rand=lambda: 1.0,
    )
    await run(engine)  # with a's slot held, b could never start: wait_for would time out
    assert fetch.calls == [a, b, a]
    assert "in_flight=1 " in seen[0]  # b alone holds the one slot
    assert "retrying=1 " in seen[0]
    assert {o.url: o.attempts for o in outcomes} == {a: 2, b: 1}


async def test_real_503_then_200_with_retry_after(
    session: client.ClientSession, scripted_server: ScriptedServer
) -> None:
    busy = http_response(503, b"busy", headers=[("Retry-After", "3"), ("Connection", "close")])
    scripted_server.script(
        [ReadRequest(), Send(busy)], [ReadRequest(), Send(http_response(200, b"ok"))]
    )
    sleep = RecordingSleep()
    outcomes: list[Outcome] = []
    engine = Engine(
        session,
        specs([scripted_server.url("/x")]),
        Limits(),
        NO_BODIES,
        outcomes.append,
        sleep=sleep,
        rand=lambda: 0.0,
    )
    await run(engine)
    assert sleep.delays == [3.0]
    assert len(scripted_server.requests) == 2
    [outcome] = outcomes
    assert (outcome.status, outcome.attempts, outcome.ok, outcome.size) == (200, 2, True, 2)
    assert outcome.retries_waited == 3.0


# -- feeding ------------------------------------------------------------------------------


async def test_feeding_is_lazy_a_million_specs_are_not_pulled_at_once(
    session: client.ClientSession,
) -> None:
    template = next(specs(["http://a.test/"]))
    pulled = 0

    def million() -> Iterator[RequestSpec]:
        nonlocal pulled
        for i in range(1_000_000):
            pulled += 1
            yield RequestSpec(f"http://h{i % 100}.test/{i}", template.options, template.source, i)

    gate = asyncio.Semaphore(0)
    fetch = ScriptedFetch()

    async def slow(s: client.ClientSession, spec: RequestSpec, st: FetchSettings) -> Attempt:
        await gate.acquire()  # one permit per finished request (never given back)
        return await fetch(s, spec, st)

    outcomes: list[Outcome] = []
    engine = make_engine(session, million(), outcomes, slow, Limits(concurrency=4, per_host=None))
    task = asyncio.create_task(engine.run())
    await wait_until(lambda: len(fetch.calls) == 0 and "in_flight=4 " in repr(engine))
    buffer = 64  # max(64, 4 * concurrency)
    assert pulled <= buffer + 4 + 1
    for _ in range(20):
        gate.release()
    await wait_until(lambda: len(outcomes) == 20)
    await asyncio.sleep(0.01)
    assert pulled <= 20 + buffer + 4 + 1  # refilled as requests finished, no further
    engine.stop()
    for _ in range(4):
        gate.release()
    await asyncio.wait_for(task, 5)
    assert len(outcomes) == 24  # the four in flight finished within the grace period
    assert pulled <= 20 + buffer + 4 + 1


async def test_invalid_urls_file_lines_become_invalid_url_outcomes_without_fetching(
    session: client.ClientSession, tmp_path: Path
) -> None:
    lines = [
        "http://good.test/1",
        "not a url",
        "ftp://files.test/x",
        "# comment",
        "http://good.test/2",
        "http://bad host.test/",
        "http://300.1.2.3/",
    ]
    (tmp_path / "urls.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    job = load_job_text("version: 1\nrequests:\n  - urls_file: urls.txt\n", base_dir=tmp_path)
    fetch = ScriptedFetch()
    outcomes: list[Outcome] = []
    await run(make_engine(session, iter_requests(job), outcomes, fetch))
    assert fetch.calls == ["http://good.test/1", "http://good.test/2"]
    assert len(outcomes) == 6
    invalid = [o for o in outcomes if o.error is not None]
    assert [o.source.rsplit(":", 2)[1] for o in invalid] == ["2", "3", "6", "7"]
    for o in invalid:
        assert o.error is not None
        assert o.error.kind == "invalid_url"
        assert (o.attempts, o.status, o.ok) == (0, None, False)
        assert o.source.startswith(str(tmp_path / "urls.txt"))
    assert sorted(o.index for o in outcomes) == list(range(6))


# -- stopping and bugs ------------------------------------------------------------------


async def test_stop_ends_scheduling_and_cancels_attempts_after_the_grace_period(
    session: client.ClientSession,
) -> None:
    started: list[str] = []
    cancelled: list[str] = []

    async def hang(_s: client.ClientSession, spec: RequestSpec, _st: FetchSettings) -> Attempt:
        started.append(spec.url)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(spec.url)
            raise
        raise AssertionError("unreachable")

    outcomes: list[Outcome] = []
    urls = [f"http://h{i}.test/" for i in range(50)]
    engine = make_engine(session, specs(urls), outcomes, hang, Limits(concurrency=3), grace=0.05)
    task = asyncio.create_task(engine.run())
    await wait_until(lambda: len(started) == 3)
    began = time.monotonic()
    engine.stop()
    engine.stop()  # idempotent
    await asyncio.wait_for(task, 5)
    assert 0.04 <= time.monotonic() - began < 1.0
    assert engine.stopping
    assert sorted(cancelled) == sorted(started)
    assert len(started) == 3  # nothing new was scheduled
    assert outcomes == []  # unfinished work is not recorded (a rerun does it again)


async def test_stop_during_a_retry_wait_records_the_last_result(
    session: client.ClientSession,
) -> None:
    url = "http://a.test/"
    fetch = ScriptedFetch({url: [Attempt(status=503)]})
    gate = asyncio.Event()
    sleep = RecordingSleep(gate=gate)
    outcomes: list[Outcome] = []
    engine = make_engine(
        session, specs([url], RetryPolicy(attempts=5)), outcomes, fetch, sleep=sleep
    )
    task = asyncio.create_task(engine.run())
    await wait_until(lambda: len(sleep.delays) == 1)
    engine.stop()
    gate.set()
    await asyncio.wait_for(task, 5)
    assert fetch.calls == [url]
    assert [(o.status, o.attempts) for o in outcomes] == [(503, 1)]


async def test_a_bug_in_fetch_propagates_out_of_run(session: client.ClientSession) -> None:
    async def buggy(_s: client.ClientSession, spec: RequestSpec, _st: FetchSettings) -> Attempt:
        if spec.url.endswith("/bug"):
            raise ZeroDivisionError("a bug, not a network failure")
        await asyncio.Event().wait()  # the others hang: run() must not wait for them forever
        raise AssertionError("unreachable")

    urls = ["http://a.test/1", "http://b.test/bug", "http://c.test/3"]
    engine = make_engine(session, specs(urls), [], buggy, grace=0.05)
    with pytest.raises(ZeroDivisionError, match="a bug"):
        await asyncio.wait_for(engine.run(), 5)


async def test_a_bug_in_the_outcome_sink_propagates(session: client.ClientSession) -> None:
    def broken(_outcome: Outcome) -> None:
        raise OSError(28, "No space left on device")

    engine = Engine(
        session, specs(["http://a.test/"]), Limits(), NO_BODIES, broken, fetch=ScriptedFetch()
    )
    with pytest.raises(OSError, match="No space"):
        await asyncio.wait_for(engine.run(), 5)


# -- the caps, counted by a real server -------------------------------------------------


class LoopbackResolver(client.AbstractResolver):
    """Every name is 127.0.0.1: many hosts to the runner, one loopback server."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        flags = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
        return [
            ResolveResult(
                hostname=host,
                host="127.0.0.1",
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=flags,
            )
        ]

    async def close(self) -> None:
        """Nothing to release."""


class StampedRequests(list[RequestRecord]):
    """Replaces ``CountingServer.requests``: notes when each request arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.times: dict[str, list[float]] = {}

    def append(self, record: RequestRecord) -> None:
        self.times.setdefault(record.host, []).append(time.monotonic())
        super().append(record)


async def fetch_all(urls: list[str], limits: Limits) -> list[Outcome]:
    outcomes: list[Outcome] = []
    connector = client.TCPConnector(resolver=LoopbackResolver(), limit=0)
    async with client.ClientSession(connector=connector) as s:
        await asyncio.wait_for(Engine(s, specs(urls), limits, NO_BODIES, outcomes.append).run(), 20)
    return outcomes


@pytest.mark.parametrize(("concurrency", "per_host"), [(5, 2), (4, None), (12, 3)])
async def test_server_never_sees_more_than_the_caps(
    counting_server: CountingServer, concurrency: int, per_host: int | None
) -> None:
    port = counting_server.port
    urls = [f"http://h{i % 3}.test:{port}/{i}?delay=0.03" for i in range(36)]
    outcomes = await fetch_all(urls, Limits(concurrency=concurrency, per_host=per_host))
    assert len(outcomes) == 36
    assert all(o.ok for o in outcomes)
    stats, by_host = counting_server.stats, counting_server.by_host
    assert stats.requests == 36
    assert sorted(by_host) == [f"h{i}.test:{port}" for i in range(3)]
    per_host_cap = per_host or concurrency
    assert stats.max_in_flight == min(concurrency, 3 * per_host_cap)  # reached, never passed
    for counts in by_host.values():
        assert counts.max_in_flight <= min(per_host_cap, concurrency)
        if per_host is not None:
            assert counts.max_in_flight == per_host


async def test_rate_per_host_holds_within_ten_percent(counting_server: CountingServer) -> None:
    stamps = StampedRequests()
    counting_server.requests = stamps
    port, rate, n = counting_server.port, 20.0, 61  # 60 intervals: 3 s per host
    urls = [f"http://{h}.test:{port}/{i}" for i in range(n) for h in ("a", "b")]
    began = time.monotonic()
    await fetch_all(urls, Limits(concurrency=50, per_host=4, rate_per_host=rate))
    assert time.monotonic() - began < 4.5  # both hosts were paced side by side
    for host in ("a", "b"):
        times = stamps.times[f"{host}.test:{port}"]
        assert len(times) == n
        measured = (n - 1) / (times[-1] - times[0])
        assert rate * 0.9 <= measured <= rate * 1.1
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) > 0.5 / rate  # evenly paced: no bursts


# -- expectations drive the exit code ------------------------------------------------------


def run_options(tmp_path: Path) -> RunOptions:
    return RunOptions(output=tmp_path / "out.jsonl", quiet=True)


async def test_run_job_exits_0_when_every_status_is_expected(
    counting_server: CountingServer, tmp_path: Path
) -> None:
    job = job_from_urls([counting_server.url("/"), counting_server.url("/?status=204")])
    result = await run_job(job, run_options(tmp_path))
    assert result.exit_code == EXIT_OK
    assert (result.summary.total, result.summary.ok) == (2, 2)
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 2


async def test_run_job_exits_1_when_a_status_is_not_expected(
    counting_server: CountingServer, tmp_path: Path
) -> None:
    job = job_from_urls(
        [counting_server.url("/"), counting_server.url("/?status=404")],
        retry=RetryPolicy(attempts=1),
    )
    result = await run_job(job, run_options(tmp_path))
    assert result.exit_code == EXIT_FAILED
    assert (result.summary.ok, result.summary.failed) == (1, 1)


async def test_run_job_expect_can_make_a_404_a_success(
    counting_server: CountingServer, tmp_path: Path
) -> None:
    job: JobFile = job_from_urls(
        [counting_server.url("/?status=404")], defaults=RequestDefaults(expect=frozenset({404}))
    )
    assert (await run_job(job, run_options(tmp_path))).exit_code == EXIT_OK


def test_cli_exit_codes_follow_expectations(httpbin: Endpoint, tmp_path: Path) -> None:
    out = str(tmp_path / "cli.jsonl")
    assert cli_main([httpbin.url("/status/200"), httpbin.url("/get"), "-q", "-o", out]) == 0
    assert len(Path(out).read_text().splitlines()) == 2
    assert cli_main([httpbin.url("/status/200"), httpbin.url("/status/404"), "-q", "-o", out]) == 1
    assert cli_main(["ftp://files.example/x", "-q", "-o", out]) == EXIT_USAGE


async def test_every_outcome_field_comes_from_its_source(session: client.ClientSession) -> None:
    """The engine builds outcomes positionally: each field must land in its own place."""
    url = "http://a.test/x"
    timings = Timings(0.001, 0.002, None, 0.003, 0.004)
    last = Attempt(
        status=503, reason="Busy", final_url="http://a.test/final", content_type="text/plain",
        size=7, sha256="ab" * 32, body_path="/b/1", redirects=((301, "http://a.test/y"),),
        error=None, timings=timings,
    )  # fmt: skip
    fetch = ScriptedFetch({url: [last]})
    outcomes: list[Outcome] = []
    policy = RetryPolicy(attempts=2, on_status=frozenset({503}))
    engine = make_engine(session, specs([url], policy), outcomes, fetch, rand=lambda: 0.5)
    await run(engine)
    [o] = outcomes
    assert (o.url, o.method, o.index, o.name) == (url, "GET", 0, None)
    assert o.source == str(next(specs([url])).source)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", o.started_at)
    assert (o.final_url, o.status, o.reason, o.ok) == ("http://a.test/final", 503, "Busy", False)
    assert (o.size, o.content_type, o.sha256, o.body_path) == (7, "text/plain", "ab" * 32, "/b/1")
    assert (o.timings, o.attempts, o.error) == (timings, 2, None)
    assert o.redirects == ((301, "http://a.test/y"),)
    assert o.retries_waited == 0.5 * RetryPolicy().backoff  # full jitter, rand() = 0.5
    assert o.extra == {}
