"""The polite-crawl target: latency, 429/503 with Retry-After, and resets.

    python -m bench.polite_server PORT STATS.json

Listens on 127.0.0.2-127.0.0.11 only. What URL ``?n=N`` gets is fixed by N
and by how many times it was asked for, so a run is reproducible:

* every answer waits 5-40 ms (``5 + 5 * (N % 8)``);
* first try of N % 10 == 3: ``429`` with ``Retry-After: 1``;
* first try of N % 10 == 7: ``503`` with ``Retry-After: 1``;
* first try of N % 50 == 11: the connection is reset, no answer;
* otherwise ``200`` with :func:`polite_size` bytes.

It counts, per host, the most requests it ever had in flight at once, and
writes its counters as JSON to STATS on SIGTERM, then exits.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections import Counter

from .site import HOSTS

RETRY_AFTER = 1


def polite_size(n: int) -> int:
    return 1000 + (n % 7) * 1500


class _Stats:
    def __init__(self) -> None:
        self.attempts: Counter[int] = Counter()
        self.in_flight: Counter[str] = Counter()
        self.max_in_flight: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()

    def as_dict(self) -> dict[str, object]:
        return {
            "requests": sum(self.attempts.values()),
            "urls": len(self.attempts),
            "statuses": dict(self.statuses),
            "max_in_flight_per_host": dict(self.max_in_flight),
        }


def _answer(status: int, body: bytes, extra: str = "") -> bytes:
    reason = {200: "OK", 404: "Not Found", 429: "Too Many Requests", 503: "Unavailable"}
    head = (
        f"HTTP/1.1 {status} {reason[status]}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


async def _handle(
    stats: _Stats, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    host = writer.get_extra_info("sockname")[0]
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            target = head.split(b" ", 2)[1].decode("ascii", "replace")
            n_text = target.rpartition("?n=")[2]
            if not n_text.isdigit():
                writer.write(_answer(404, b"no\n"))
                stats.statuses["404"] += 1
                continue
            n = int(n_text)
            stats.attempts[n] += 1
            first = stats.attempts[n] == 1
            stats.in_flight[host] += 1
            stats.max_in_flight[host] = max(stats.max_in_flight[host], stats.in_flight[host])
            try:
                await asyncio.sleep((5 + 5 * (n % 8)) / 1000)
            finally:
                stats.in_flight[host] -= 1
            if first and n % 50 == 11:
                stats.statuses["reset"] += 1
                writer.transport.abort()
                return
            if first and n % 10 in (3, 7):
                status = 429 if n % 10 == 3 else 503
                writer.write(_answer(status, b"later\n", f"Retry-After: {RETRY_AFTER}\r\n"))
            else:
                status = 200
                writer.write(_answer(200, b"x" * polite_size(n)))
            stats.statuses[str(status)] += 1
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.transport.abort() if writer.transport.is_closing() else writer.close()


async def serve(port: int, stats_path: str) -> None:
    stats = _Stats()
    servers = [
        await asyncio.start_server(lambda r, w: _handle(stats, r, w), host, port, backlog=1024)
        for host in HOSTS
    ]
    done = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, done.set_result, None)
    try:
        await done
    finally:
        _write_stats(stats, stats_path)
        for server in servers:
            server.close()


def _write_stats(stats: _Stats, path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(stats.as_dict(), f)


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), sys.argv[2]))
