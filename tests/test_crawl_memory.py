"""A crawl's memory is bounded by its state file, not by the size of the site.

The full measure (200,000 pages, peak RSS < 200 MB) is ``python -m bench.crawl_scale``;
here a 2,000- and a 20,000-page crawl, each the real CLI in its own process, must
peak within a few MB of each other: ten times the pages, not ten times the memory.
"""

from __future__ import annotations

from bench.crawl_scale import crawl


def test_peak_rss_does_not_grow_with_the_site() -> None:
    small = crawl(2_000, concurrency=32)
    large = crawl(20_000, concurrency=32)
    assert small["records"] > 2_000
    assert large["records"] > 20_000
    assert large["peak_rss_mb"] < 120
    assert large["peak_rss_mb"] - small["peak_rss_mb"] < 20, (small, large)
