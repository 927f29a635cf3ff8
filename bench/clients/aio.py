"""The minimal aiohttp-style script, run with our client or with aiohttp itself.

    python -m bench.clients.aio client|aiohttp URLS OUT CONCURRENCY PER_HOST [--uvloop]
                                [--pool-limit N]

The same code for both: ``import client as aiohttp`` is the point. One
session, ``TCPConnector(limit=CONCURRENCY, limit_per_host=PER_HOST)``,
CONCURRENCY workers pulling URLs in order, each body read whole. Writes
``URL STATUS BYTES`` lines to OUT for the checker. ``--pool-limit`` gives the
connector a larger ``limit`` than the number of workers (an experiment, see
bench/NOTES.md).
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from typing import Any


async def fetch_all(
    http: Any, urls: list[str], concurrency: int, per_host: int, pool_limit: int | None = None
) -> list[str]:
    results: list[str] = [""] * len(urls)
    todo = iter(enumerate(urls))
    connector = http.TCPConnector(limit=pool_limit or concurrency, limit_per_host=per_host)
    async with http.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for i, url in todo:
                try:
                    async with session.get(url) as resp:
                        body = await resp.read()
                        results[i] = f"{url} {resp.status} {len(body)}"
                except (TimeoutError, http.ClientError, OSError) as exc:
                    results[i] = f"{url} ERR {type(exc).__name__}"

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


def main() -> None:
    name, urls_path, out_path, concurrency, per_host = sys.argv[1:6]
    http = importlib.import_module(name)
    with open(urls_path, encoding="ascii") as f:
        urls = f.read().split()
    flags = sys.argv[6:]
    limit = int(flags[flags.index("--pool-limit") + 1]) if "--pool-limit" in flags else None
    coro = fetch_all(http, urls, int(concurrency), int(per_host), limit)
    if "--uvloop" in flags:
        import uvloop

        results = uvloop.run(coro)
    else:
        results = asyncio.run(coro)
    with open(out_path, "w", encoding="ascii") as f:
        f.write("\n".join(results) + "\n")


if __name__ == "__main__":
    main()
