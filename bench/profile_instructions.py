"""User-space instructions per request, counted by valgrind: a CPU measure that load cannot move.

    python -m bench.profile_instructions [TREE ...] [--aiohttp] [--n1 100] [--n2 600]

For each source tree (default: this one), sequential keep-alive GETs against
``bench.server`` run under ``valgrind --tool=callgrind`` twice, ``n1`` and ``n2``
requests; ``(I(n2) - I(n1)) / (n2 - n1)`` is the client's instructions per request,
start-up and imports cancelled out (each count is the lower of two runs). On the
shared 2-core VM CPU seconds move by ±15 % between runs; this moves by ~0.1 %,
so a change worth 1 % shows. Kernel work (``send``/``recv``) is not counted.
Needs ``valgrind`` (apt); ~30 s per tree.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_SCRIPT = """
import asyncio, importlib, sys
http = importlib.import_module(sys.argv[1])
async def main(url, n):
    async with http.ClientSession() as session:
        for _ in range(n):
            async with session.get(url) as resp:
                await resp.read()
asyncio.run(main(sys.argv[2], int(sys.argv[3])))
"""


def count(tree: Path, module: str, url: str, n: int) -> int:
    """Instructions of one process making ``n`` requests (the lower of two runs)."""
    runs = []
    for _ in range(2):
        cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
        cmd += [sys.executable, "-c", _SCRIPT, module, url, str(n)]
        env = {"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}  # pycs may be written
        done = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, env=env)
        found = re.search(r"Collected : (\d+)", done.stderr)
        if found is None:
            raise SystemExit(f"valgrind failed for {tree}: {done.stderr[-1500:]}")
        runs.append(int(found[1]))
    return min(runs)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile_instructions")
    p.add_argument("trees", nargs="*", type=Path, default=[ROOT])
    p.add_argument("--aiohttp", action="store_true", help="also count aiohttp")
    p.add_argument("--n1", type=int, default=100)
    p.add_argument("--n2", type=int, default=600)
    args = p.parse_args(argv)
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.server"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        url = f"http://127.0.0.1:{server.stdout.readline().strip()}/get"
        plans = [(str(tree), tree, "client") for tree in args.trees]
        if args.aiohttp:
            plans.append(("aiohttp", ROOT, "aiohttp"))
        for name, tree, module in plans:
            low = count(tree, module, url, args.n1)
            high = count(tree, module, url, args.n2)
            per = (high - low) / (args.n2 - args.n1)
            print(f"{name:30s} {per:9.0f} instructions/request", flush=True)
    finally:
        server.terminate()
        server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
