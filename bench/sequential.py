"""N sequential GETs on one keep-alive connection: our client vs aiohttp.

    python -m bench.sequential [N] [ROUNDS]

Both clients run in the same process, alternating, against the same server
process; the median of ROUNDS rounds is reported with the ratio.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from typing import Any


async def _run(module: Any, url: str, n: int) -> float:
    async with module.ClientSession() as session:
        async with session.get(url) as resp:  # warm-up: open the connection
            await resp.read()
        start = time.perf_counter()
        for _ in range(n):
            async with session.get(url) as resp:
                await resp.read()
        return n / (time.perf_counter() - start)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.server"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        url = f"http://127.0.0.1:{server.stdout.readline().strip()}/get"
        import client

        peers: dict[str, Any] = {"fetchrun client": client}
        try:
            import aiohttp

            peers["aiohttp"] = aiohttp
        except ImportError:
            print("aiohttp not installed (pip install -e '.[bench]'): ours only")
        results: dict[str, list[float]] = {name: [] for name in peers}
        for _ in range(rounds):
            for name, module in peers.items():
                results[name].append(asyncio.run(_run(module, url, n)))
        medians = {name: statistics.median(v) for name, v in results.items()}
        base = medians.get("aiohttp")
        for name, rate in medians.items():
            ratio = f" ({rate / base:.2f}x aiohttp)" if base else ""
            print(
                f"{name:16s} {rate:8.0f} req/s{ratio}   rounds: "
                + ", ".join(f"{r:.0f}" for r in results[name])
            )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
