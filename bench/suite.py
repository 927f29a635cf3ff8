"""The contenders: how each one is run on a URL list, and how its output is checked."""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .measure import Run, check_jsonl, check_lines, run_process

PY = sys.executable

JOB = """\
version: 1
limits: {{concurrency: {concurrency}, per_host: {per_host}}}
timeout: {{total: 60, connect: 10, sock_read: 30}}
retry: {{attempts: {attempts}, backoff: 0.2, max_backoff: 5, on_status: [429, 503]}}
output: {{jsonl: {jsonl}}}
defaults: {{expect: [200, 404]{extract}}}
requests:
  - urls_file: {urls}
"""


@dataclass(frozen=True, slots=True)
class Setup:
    """What every contender of one batch gets."""

    work: Path  # scratch folder (URL list, outputs)
    urls: Path
    count: int
    concurrency: int
    per_host: int
    rule: str = "site"  # which expectations: "site" (nginx) or "polite"
    attempts: int = 1
    limit: float = 900.0  # seconds before a run is killed


@dataclass(frozen=True, slots=True)
class Contender:
    name: str
    note: str
    run: Callable[[Setup], tuple[Run, list[str]]]
    needs: tuple[str, ...] = ()  # importable modules or tools this needs

    def available(self, tools: dict[str, str]) -> bool:
        return all(
            (need in tools) if need in ("curl", "wrk") else importlib.util.find_spec(need)
            for need in self.needs
        )


def fetchrun(uvloop: bool, titles: bool = False) -> Callable[[Setup], tuple[Run, list[str]]]:
    """The CLI on a job file; ``titles`` keeps the built-in page-title extraction on."""

    def run(s: Setup) -> tuple[Run, list[str]]:
        out = s.work / "fetchrun.jsonl"
        job = s.work / "job.yaml"
        job.write_text(
            JOB.format(
                concurrency=s.concurrency,
                per_host=s.per_host,
                attempts=s.attempts,
                jsonl=out.name,
                urls=s.urls.name,
                extract="" if titles else ", extract: false",
            )
        )
        args = [PY, "-m", "runner.cli", str(job), "--quiet"]
        if not uvloop:
            args.append("--no-uvloop")
        result = run_process(args, s.count, limit=s.limit)
        errors = check_jsonl(out, s.count, s.rule)
        out.unlink()
        return result, errors

    return run


def aio_script(
    module: str, uvloop: bool = False, pool_factor: int = 1
) -> Callable[[Setup], tuple[Run, list[str]]]:
    """The minimal script; ``pool_factor`` > 1 gives the connector a larger ``limit``."""

    def run(s: Setup) -> tuple[Run, list[str]]:
        out = s.work / f"{module}.out"
        args = [PY, "-m", "bench.clients.aio", module, str(s.urls), str(out)]
        args += [str(s.concurrency), str(s.per_host)]
        if uvloop:
            args.append("--uvloop")
        if pool_factor > 1:
            args += ["--pool-limit", str(pool_factor * s.concurrency)]
        result = run_process(args, s.count, limit=s.limit)
        return result, _check_file(out, s)

    return run


def httpx_script(s: Setup) -> tuple[Run, list[str]]:
    out = s.work / "httpx.out"
    args = [PY, "-m", "bench.clients.httpx_script", str(s.urls), str(out)]
    args += [str(s.concurrency), str(s.per_host)]
    result = run_process(args, s.count, limit=s.limit)
    return result, _check_file(out, s)


def curl_parallel(tools: dict[str, str]) -> Callable[[Setup], tuple[Run, list[str]]]:
    def run(s: Setup) -> tuple[Run, list[str]]:
        config = s.work / "curl.cfg"
        with s.urls.open(encoding="ascii") as src, config.open("w", encoding="ascii") as dst:
            for line in src:
                dst.write(f'url = "{line.strip()}"\noutput = "/dev/null"\n')
        out = s.work / "curl.out"
        args = [tools["curl"], "--parallel", "--parallel-max", str(s.concurrency)]
        args += ["-s", "-L", "-K", str(config), "-w", "%{url} %{http_code} %{size_download}\\n"]
        result = run_process(args, s.count, limit=s.limit, stdout=out)
        return result, _check_file(out, s)

    return run


def _check_file(out: Path, s: Setup) -> list[str]:
    try:
        with out.open(encoding="ascii") as f:
            errors = check_lines(f, s.count, s.rule)
    except FileNotFoundError:
        return ["no output written"]
    out.unlink()
    return errors


def contenders(tools: dict[str, str]) -> list[Contender]:
    """Everything that fetches the URL list, in report order."""
    c, uv = Contender, ("uvloop",)
    return [
        c("fetchrun CLI", "JSONL records, per-host slots, uvloop; `extract: false`",
          fetchrun(True), uv),
        c("fetchrun CLI, page titles", "the same with the default `<title>` extraction on",
          fetchrun(True, True), uv),
        c("fetchrun CLI --no-uvloop", "JSONL records, per-host slots, asyncio's loop",
          fetchrun(False)),
        c("our client script", "minimal script, `import client as aiohttp`",
          aio_script("client")),
        c("our client, pool limit 2x", "the same, `TCPConnector(limit=2 * concurrency)`",
          aio_script("client", pool_factor=2)),
        c("our client + uvloop", "the same script on uvloop", aio_script("client", True), uv),
        c("aiohttp script", "the same script on aiohttp (the baseline)",
          aio_script("aiohttp"), ("aiohttp",)),
        c("aiohttp + uvloop", "the same script on uvloop",
          aio_script("aiohttp", True), ("aiohttp", "uvloop")),
        c("httpx", "AsyncClient, a semaphore per host", httpx_script, ("httpx",)),
        c("curl --parallel", "one curl, --parallel-max = concurrency; no per-host cap",
          curl_parallel(tools), ("curl",)),
    ]  # fmt: skip


# -- wrk: the server's ceiling ---------------------------------------------------------

_WRK_LUA = """\
local paths = {{{paths}}}
local i = 0
request = function()
  i = i + 1
  if i > #paths then i = 1 end
  return wrk.format("GET", paths[i])
end
"""


def wrk_ceiling(
    tools: dict[str, str], s: Setup, base: str, paths: list[str], seconds: int
) -> tuple[Run, dict[str, str]]:
    """wrk with one thread and ``concurrency`` connections on one host, the same mix."""
    script = s.work / "mix.lua"
    script.write_text(_WRK_LUA.format(paths=", ".join(f'"{p}"' for p in paths)))
    out = s.work / "wrk.out"
    args = [tools["wrk"], "-t1", f"-c{s.concurrency}", f"-d{seconds}s", "-s", str(script), base]
    result = run_process(args, 0, limit=seconds + 60, stdout=out)
    text = out.read_text()
    info = {
        "requests_per_s": _grab(r"Requests/sec:\s+([\d.]+)", text),
        "non_2xx_3xx": _grab(r"Non-2xx or 3xx responses:\s+(\d+)", text) or "0",
        "socket_errors": _grab(r"Socket errors:(.*)", text) or "none",
        "transfer_per_s": _grab(r"Transfer/sec:\s+(\S+)", text),
    }
    result.urls = int(float(info["requests_per_s"] or 0) * seconds)
    result.wall = float(seconds)
    return result, info


def _grab(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    return match.group(1).strip() if match else ""
