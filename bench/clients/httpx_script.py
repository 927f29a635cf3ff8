"""The same minimal script on httpx: one AsyncClient, the same limits.

    python -m bench.clients.httpx_script URLS OUT CONCURRENCY PER_HOST

httpx has no per-host connection cap, so a semaphore per host gives it one.
"""

from __future__ import annotations

import asyncio
import sys
from collections import defaultdict
from urllib.parse import urlsplit

import httpx


async def fetch_all(urls: list[str], concurrency: int, per_host: int) -> list[str]:
    results: list[str] = [""] * len(urls)
    todo = iter(enumerate(urls))
    hosts: defaultdict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(per_host))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, follow_redirects=True, timeout=60) as session:

        async def worker() -> None:
            for i, url in todo:
                try:
                    async with hosts[urlsplit(url).netloc]:
                        resp = await session.get(url)
                    results[i] = f"{url} {resp.status_code} {len(resp.content)}"
                except httpx.HTTPError as exc:
                    results[i] = f"{url} ERR {type(exc).__name__}"

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


def main() -> None:
    urls_path, out_path, concurrency, per_host = sys.argv[1:5]
    with open(urls_path, encoding="ascii") as f:
        urls = f.read().split()
    results = asyncio.run(fetch_all(urls, int(concurrency), int(per_host)))
    with open(out_path, "w", encoding="ascii") as f:
        f.write("\n".join(results) + "\n")


if __name__ == "__main__":
    main()
