"""What a person sees: the summary, latency percentiles, verbose lines, the progress bar."""

from __future__ import annotations

import io
import math
import random
import re

import pytest

from runner.outcome import ErrorInfo, Outcome, Timings
from runner.sinks.console import Console, LatencyHistogram, Summary

STARTED = "2025-01-02T03:04:05.678Z"


def outcome(url: str = "http://a.test/", **changes: object) -> Outcome:
    return Outcome(url, "GET", 0, "<test>", STARTED, **changes)  # type: ignore[arg-type]


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def sample_outcomes() -> list[Outcome]:
    return [
        outcome(status=200, ok=True, size=1000, timings=Timings(total=0.010)),
        outcome(status=200, ok=True, size=2048, timings=Timings(total=0.020), attempts=3),
        outcome(status=404, size=100, timings=Timings(total=0.030)),
        outcome(status=503, attempts=2, timings=Timings(total=0.040)),
        outcome(error=ErrorInfo("connect", "refused"), attempts=3),
        outcome(error=ErrorInfo("connect", "refused")),
        outcome(error=ErrorInfo("tls", "bad cert")),
    ]


# -- summary ------------------------------------------------------------------------------


def test_summary_counts() -> None:
    summary = Summary()
    for o in sample_outcomes():
        summary.add(o)
    assert (summary.total, summary.ok, summary.failed) == (7, 2, 5)
    assert summary.retries == 2 + 1 + 2
    assert summary.bytes == 3148
    assert dict(summary.by_class) == {"2xx": 2, "4xx": 1, "5xx": 1, "error": 3}
    assert dict(summary.by_error) == {"connect": 2, "tls": 1}
    assert summary.latency.count == 4


def test_never_sent_requests_count_no_retries() -> None:
    summary = Summary()
    summary.add(outcome("not a url", attempts=0, error=ErrorInfo("invalid_url", "bad")))
    assert (summary.total, summary.failed, summary.retries) == (1, 1, 0)
    assert dict(summary.by_error) == {"invalid_url": 1}


def test_summary_text() -> None:
    summary = Summary()
    for o in sample_outcomes():
        summary.add(o)
    lines = summary.render(wall=2.0).splitlines()
    assert lines[0] == ("fetchrun: 7 requests in 2.00 s (4/s): 2 as expected, 5 not, 5 retries")
    assert lines[1] == "  status: 2xx 2, 4xx 1, 5xx 1, error 3"
    assert lines[2] == "  errors: connect 2, tls 1"
    assert re.fullmatch(r"  bytes: 3\.1 KiB; latency p50 2\d\.\d ms, p95 [34]\d\.\d ms", lines[3])


def test_empty_summary_text() -> None:
    text = Summary().render(wall=0.0)
    assert text.splitlines() == [
        "fetchrun: 0 requests in 0.00 s (0/s): 0 as expected, 0 not, 0 retries",
        "  status: none",
        "  bytes: 0 B; latency p50 n/a, p95 n/a",
    ]


@pytest.mark.parametrize(
    ("n", "shown"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1536, "1.5 KiB"),
        (5 * 2**20, "5.0 MiB"),
        (3 * 2**40, "3072.0 GiB"),
    ],
)
def test_byte_counts_are_human(n: int, shown: str) -> None:
    summary = Summary()
    summary.add(outcome(status=200, ok=True, size=n))
    assert f"bytes: {shown};" in summary.render(1.0)


# -- latency percentiles -----------------------------------------------------------------


def exact_percentile(values: list[float], p: float) -> float:
    """Nearest rank, as the histogram defines it."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * p / 100)) - 1]


@pytest.mark.parametrize("seed", range(5))
def test_percentiles_are_within_two_percent_of_exact(seed: int) -> None:
    rng = random.Random(seed)
    # Latencies spread over four orders of magnitude (ms), long right tail.
    values = [rng.lognormvariate(math.log(80), 1.5) for _ in range(20_000)]
    histogram = LatencyHistogram()
    for value in values:
        histogram.add(value)
    assert histogram.count == len(values)
    for p in (1, 10, 25, 50, 75, 90, 95, 99, 99.9, 100):
        estimate = histogram.percentile(p)
        exact = exact_percentile(values, p)
        assert estimate is not None
        assert abs(estimate - exact) <= 0.02 * exact, (p, estimate, exact)


def test_percentiles_of_uniform_small_values() -> None:
    rng = random.Random(7)
    values = [rng.uniform(0.05, 3.0) for _ in range(5000)]
    histogram = LatencyHistogram()
    for value in values:
        histogram.add(value)
    for p in (5, 50, 95):
        estimate = histogram.percentile(p)
        assert estimate == pytest.approx(exact_percentile(values, p), rel=0.02)


def test_histogram_edges() -> None:
    histogram = LatencyHistogram()
    assert histogram.percentile(50) is None
    histogram.add(0.0)
    histogram.add(-5.0)
    low = histogram.percentile(100)
    assert low is not None
    assert low < 0.002
    histogram.add(1e12)  # beyond the last bucket: counted, clamped, no crash
    assert histogram.count == 3
    top = histogram.percentile(100)
    assert top is not None
    assert top > 1.8e7  # the last bucket (~ 5.7 h, in ms)


# -- console ------------------------------------------------------------------------------


def test_verbose_lines_are_terminal_safe() -> None:
    stream = io.StringIO()
    console = Console(total=3, quiet=False, verbose=True, stream=stream)
    console.update(outcome("http://a.test/\x1b[2J\x1b]0;owned\x07", status=200, ok=True))
    console.update(outcome("http://a.test/\rFAKE 200 http://b.test/", status=404))
    console.update(outcome("http://a.test/café\x7f\udcff\x9b", error=ErrorInfo("dns", "?")))
    lines = stream.getvalue().splitlines()
    assert lines == [
        "200 http://a.test/\\x1b[2J\\x1b]0;owned\\x07",
        "404 http://a.test/\\x0dFAKE 200 http://b.test/",
        "dns http://a.test/caf\\xe9\\x7f\\udcff\\x9b",
    ]
    assert re.fullmatch(r"[\x20-\x7e\n]*", stream.getvalue())


def test_no_progress_bar_when_not_a_terminal() -> None:
    stream = io.StringIO()
    console = Console(total=2, quiet=False, verbose=False, stream=stream)
    console.update(outcome(status=200, ok=True))
    console.update(outcome(status=500, attempts=2))
    assert stream.getvalue() == ""  # nothing per request: logs stay clean
    summary = Summary()
    console.finish(summary, 1.0)
    assert stream.getvalue() == summary.render(1.0) + "\n"
    assert "\r" not in stream.getvalue()


def test_progress_bar_on_a_terminal() -> None:
    stream = Terminal()
    console = Console(total=2, quiet=False, verbose=True, stream=stream)
    console.update(outcome(status=200, ok=True))
    console.update(outcome(status=500, attempts=2))
    console.finish(Summary(), 1.0)
    shown = stream.getvalue()
    assert "\r" in shown  # tqdm redraws the bar in place
    assert "2/2" in shown
    assert "http://a.test/" not in shown  # the bar replaces the verbose lines
    assert shown.endswith(Summary().render(1.0) + "\n")


def test_quiet_prints_nothing_even_on_a_terminal() -> None:
    stream = Terminal()
    console = Console(total=1, quiet=True, verbose=False, stream=stream)
    console.update(outcome(status=200, ok=True))
    console.finish(Summary(), 1.0)
    assert stream.getvalue() == ""
