"""A crawl's memory is bounded by its state file, not by the size of the site.

The full measure (200,000 pages, peak RSS < 200 MB) is ``python -m bench.crawl_scale``;
here a 2,000- and a 20,000-page crawl, each the real CLI in its own process, must
peak within a few MB of each other: ten times the pages, not ten times the memory.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def crawl(pages: int) -> dict[str, Any]:
    # Through bench.crawl_scale's own process: ru_maxrss of a child forked from this big
    # pytest process would count our pages, copied at fork, as the crawler's.
    out = subprocess.run(
        [sys.executable, "-m", "bench.crawl_scale", "--pages", str(pages)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def test_peak_rss_does_not_grow_with_the_site() -> None:
    small = crawl(2_000)
    large = crawl(20_000)
    assert small["records"] > 2_000
    assert large["records"] > 20_000
    assert large["peak_rss_mb"] < 120
    assert large["peak_rss_mb"] - small["peak_rss_mb"] < 20, (small, large)
