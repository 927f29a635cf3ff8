"""What a person sees: a progress bar on a terminal, a summary at the end.

The bar (tqdm, on stderr) appears only when stderr is a TTY and the run is
not quiet: cron and CI logs stay clean. Latency percentiles come from a
fixed log-scale histogram, so memory stays flat however long the run.
"""

from __future__ import annotations

import math
import re
import sys
from collections import Counter
from typing import IO, Any

from ..outcome import Outcome

_BUCKET_BASE = 1.02  # 2% resolution
_BUCKETS = 1200  # ~ 1 µs .. 20 h in ms
_PER_LOG = 1 / math.log(_BUCKET_BASE)  # log(x, base) without a division per call


class LatencyHistogram:
    """Approximate percentiles of millisecond values in constant memory."""

    def __init__(self) -> None:
        self._counts = [0] * _BUCKETS
        self.count = 0

    def add(self, ms: float) -> None:
        index = 0 if ms <= 0.001 else int(math.log(ms * 1000) * _PER_LOG)
        self._counts[min(max(index, 0), _BUCKETS - 1)] += 1
        self.count += 1

    def percentile(self, p: float) -> float | None:
        if not self.count:
            return None
        rank = max(1, math.ceil(self.count * p / 100))
        seen = 0
        for index, n in enumerate(self._counts):
            seen += n
            if seen >= rank:
                return float(_BUCKET_BASE ** (index + 0.5) / 1000)
        return None


class Summary:
    """Counts by status class and error kind, bytes, latency percentiles."""

    def __init__(self) -> None:
        self.total = 0
        self.ok = 0
        self.failed = 0
        self.retries = 0
        self.bytes = 0
        self.by_class: Counter[str] = Counter()
        self.by_error: Counter[str] = Counter()
        self.latency = LatencyHistogram()

    def add(self, outcome: Outcome) -> None:
        self.total += 1
        if outcome.ok:
            self.ok += 1
        else:
            self.failed += 1
        self.retries += max(outcome.attempts - 1, 0)  # 0 attempts: an invalid URL
        self.bytes += outcome.size or 0
        self.by_class[outcome.status_class] += 1
        if outcome.error is not None:
            self.by_error[outcome.error.kind] += 1
        if outcome.timings.total is not None:
            self.latency.add(outcome.timings.total * 1000)

    def render(self, wall: float) -> str:
        p50 = self.latency.percentile(50)
        p95 = self.latency.percentile(95)
        lines = [
            f"fetchrun: {self.total} requests in {wall:.2f} s "
            f"({self.total / wall if wall > 0 else 0:.0f}/s): "
            f"{self.ok} as expected, {self.failed} not, {self.retries} retries",
            "  status: "
            + (", ".join(f"{k} {v}" for k, v in sorted(self.by_class.items())) or "none"),
        ]
        if self.by_error:
            lines.append(
                "  errors: " + ", ".join(f"{k} {v}" for k, v in self.by_error.most_common())
            )
        lines.append(
            f"  bytes: {_human(self.bytes)}; latency p50 {_fmt_ms(p50)}, p95 {_fmt_ms(p95)}"
        )
        return "\n".join(lines)


class Console:
    """Progress bar plus the final summary."""

    def __init__(
        self, *, total: int | None, quiet: bool, verbose: bool, stream: IO[str] | None = None
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._quiet = quiet
        self._verbose = verbose
        self._bar: Any = None
        if not quiet and self._stream.isatty():
            from tqdm import tqdm  # imported only for terminals: keeps start-up fast

            self._bar = tqdm(total=total, file=self._stream, unit="req", dynamic_ncols=True)
        self._errors = 0
        self._retries = 0

    def update(self, outcome: Outcome) -> None:
        if not outcome.ok:
            self._errors += 1
        self._retries += max(outcome.attempts - 1, 0)
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(errors=self._errors, retries=self._retries, refresh=False)
        elif self._verbose:
            status = (
                outcome.status
                if outcome.status is not None
                else outcome.error.kind
                if outcome.error
                else "?"
            )
            self._stream.write(f"{status} {_safe(outcome.url)}\n")

    def finish(self, summary: Summary, wall: float) -> None:
        if self._bar is not None:
            self._bar.close()
        if not self._quiet:
            self._stream.write(summary.render(wall) + "\n")
            self._stream.flush()


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _safe(text: str) -> str:
    """Terminal-safe: control characters shown escaped, never interpreted."""
    text = text.encode("ascii", "backslashreplace").decode("ascii")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _fmt_ms(seconds_ms: float | None) -> str:
    return "n/a" if seconds_ms is None else f"{seconds_ms:.1f} ms"


def _human(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"
