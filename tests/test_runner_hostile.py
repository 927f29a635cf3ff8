"""``fetchrun`` against hostile input: job files (RUN-02), secrets, body names (RUN-01)
and responses (RUN-03). See /work/shared/docs/security.md.

Every case runs the real CLI in a subprocess (``run_cli`` from test_cli.py): the
process's exit code, stderr and peak RSS are what a user (or CI) sees.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import BackgroundLoop, CountingServer, ScriptedConnection, ScriptedServer
from test_cli import records, run_cli, write_job

from jobs import iter_requests, load_job
from runner.cli import main
from runner.sinks.bodies import request_hash

MIB = 1024 * 1024
# file:line:col: path: message - one problem, compiler style (editors and CI parse it).
PROBLEM = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<path>[^:]+): (?P<msg>.+)$")


# ------------------------------------------------------------------------- bad job files


def _alias_bomb(url: str) -> str:
    lines = ["version: 1", f"requests: [{url}]", 'a0: &a0 ["lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 9):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


def _bad_jobs(url: str, marker: Path) -> dict[str, tuple[str, str, str]]:
    """name -> (job text, expected problem path, a fragment of the message)."""
    ok = f"requests: [{url}]\n"
    return {
        "unknown-key": (
            f"version: 1\n{ok}limts: {{concurrency: 3}}\n",
            "limts",
            "unknown key 'limts' (did you mean 'limits'?)",
        ),
        "wrong-type": (
            f"version: 1\nlimits: {{concurrency: many}}\n{ok}",
            "limits.concurrency",
            "must be an integer",
        ),
        "bad-url": ("version: 1\nrequests: [ftp://127.0.0.1/x]\n", "requests[0]", "http://"),
        "header-crlf": (
            f'version: 1\nsession: {{headers: {{X-A: "a\\r\\nX-Injected: 1"}}}}\n{ok}',
            "session.headers.X-A",
            "control character",
        ),
        "python-tag": (
            f'version: 1\n{ok}defaults: !!python/object/apply:os.system ["touch {marker}"]\n',
            "defaults",
            "YAML tags are not allowed",
        ),
        "timeout-sexagesimal": (f"version: 1\ntimeout: 1:30\n{ok}", "timeout", "write 90"),
        "yes-no-boolean": (
            f"version: 1\ndefaults: {{follow_redirects: no}}\n{ok}",
            "defaults.follow_redirects",
            "true",
        ),
        "duplicate-key": (f"version: 1\n{ok}{ok}", "requests", "duplicate key 'requests'"),
        "output-dotdot": (
            f"version: 1\noutput: {{jsonl: ../../x}}\n{ok}",
            "output.jsonl",
            "must not contain '..'",
        ),
        "missing-var": (
            f'version: 1\nsession: {{headers: {{X-Key: "Bearer ${{NO_SUCH_VAR_X}}"}}}}\n{ok}',
            "session.headers.X-Key",
            "environment variable NO_SUCH_VAR_X is not set",
        ),
        "self-alias": (f"version: 1\n{ok}defaults: &a [*a]\n", "defaults", "anchors and aliases"),
        "deep-nesting": (
            f"version: 1\n{ok}defaults: {'[' * 10_000}{']' * 10_000}\n",
            "defaults",
            "deeper than 50 levels",
        ),
    }


@pytest.fixture
def counting(background_loop: BackgroundLoop) -> Iterator[CountingServer]:
    with background_loop.serving(CountingServer) as server:
        yield server


@pytest.mark.parametrize("case", list(_bad_jobs("http://x/", Path("/m"))))
def test_a_bad_job_file_is_one_clear_error(
    case: str, tmp_path: Path, counting: CountingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "PWNED"
    text, path, fragment = _bad_jobs(counting.url("/"), marker)[case]
    job = write_job(tmp_path, text)

    run = run_cli(job)
    assert run.rc == 2
    assert "Traceback" not in run.err
    (line,) = run.err.splitlines()
    problem = PROBLEM.match(line)
    assert problem, line
    assert problem["file"] == str(job)
    assert problem["path"] == path or problem["path"].startswith(f"{path}[")
    assert fragment in problem["msg"]
    assert run.elapsed < 5.0  # interpreter start-up included; the load itself is timed below
    assert run.maxrss_kib < 100 * 1024

    started = time.perf_counter()
    assert main([str(job)]) == 2
    assert time.perf_counter() - started < 1.0
    assert capsys.readouterr().err.strip() == line

    assert not marker.exists()  # nothing executed
    assert counting.stats.connections == 0  # no traffic


def test_an_alias_bomb_is_refused_without_expanding(
    tmp_path: Path, counting: CountingServer
) -> None:
    job = write_job(tmp_path, _alias_bomb(counting.url("/")))
    run = run_cli(job)
    assert run.rc == 2
    assert "Traceback" not in run.err
    lines = run.err.splitlines()
    # Each of the 9 anchors is its own mistake (plus the unknown keys that hold
    # them); the ~387 million aliased nodes are never walked.
    assert 1 <= len(lines) <= 18
    problems = [PROBLEM.match(line) for line in lines]
    assert all(problems), lines
    assert any("anchors and aliases" in p["msg"] for p in problems if p)
    assert run.elapsed < 5.0
    assert run.maxrss_kib < 100 * 1024
    assert counting.stats.connections == 0


def test_a_10_mib_job_file_is_refused_unread(tmp_path: Path, counting: CountingServer) -> None:
    line = f"  - {counting.url('/')}?{'a' * 90}\n"
    job = write_job(tmp_path, "version: 1\nrequests:\n" + line * (10 * MIB // len(line) + 1))
    assert job.stat().st_size > 10 * MIB
    started = time.perf_counter()
    run = run_cli(job)
    assert run.rc == 2
    assert "Traceback" not in run.err
    (message,) = run.err.splitlines()
    assert message.startswith(f"{job}: file is ")
    assert "limited to" in message
    assert time.perf_counter() - started < 5.0
    assert run.maxrss_kib < 100 * 1024
    assert counting.stats.connections == 0


# ------------------------------------------------------------------------- secrets

TOKEN = "tok-9f8e7d6c5b4a-SECRET"


def _token_run(
    tmp_path: Path, job: Path, *args: str, token: str = TOKEN
) -> tuple[int, str, str, bytes]:
    out = tmp_path / f"r{len(list(tmp_path.glob('r*.jsonl')))}.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(TOKEN=token, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    run = run_cli(job, "--output", str(out), *args, env=env)
    return run.rc, run.out, run.err, out.read_bytes() if out.exists() else b""


def test_a_header_token_never_shows(
    tmp_path: Path, counting: CountingServer, unused_port: int
) -> None:
    ok, fail = counting.url("/t/ok"), counting.url("/t/fail?status=500")
    job = write_job(
        tmp_path,
        "version: 1\nretry: {attempts: 1}\n"
        'session: {headers: {Authorization: "Bearer ${TOKEN}", X-Api-Key: "${TOKEN}"}}\n'
        f"requests: [{ok}, {fail}, http://127.0.0.1:{unused_port}/refused]\n",
    )
    for args in ((), ("--verbose",), ("--dry-run",), ("--validate",)):
        rc, out, err, jsonl = _token_run(tmp_path, job, *args)
        assert rc in (0, 1), err
        for text in (out, err, jsonl.decode()):
            assert TOKEN not in text
        if not args or args == ("--verbose",):
            assert rc == 1
            assert len(records(jsonl)) == 3
            assert b"headers" not in jsonl  # records never echo request headers
    sent = [dict(r.headers) for r in counting.requests]
    assert sent
    assert all(h["Authorization"] == f"Bearer {TOKEN}" for h in sent)


def test_a_token_in_a_bad_job_never_shows(tmp_path: Path) -> None:
    job = write_job(
        tmp_path,
        'version: 1\nsession: {headers: {X-Key: "${TOKEN}"}}\n'
        'requests: [{url: "http://127.0.0.1:9/?k=${TOKEN}", timeout: "${TOKEN}"}]\n',
    )
    rc, out, err, _ = _token_run(tmp_path, job)
    assert rc == 2
    assert err
    assert TOKEN not in out + err


def test_a_token_with_crlf_is_refused_unshown(tmp_path: Path) -> None:
    job = write_job(
        tmp_path,
        'version: 1\nsession: {headers: {X-Key: "${TOKEN}"}}\nrequests: [http://127.0.0.1:9/]\n',
    )
    rc, out, err, _ = _token_run(tmp_path, job, token="abc-\r\nX-Injected: 1")
    assert rc == 2
    assert err.startswith(f"{job}:2:")
    assert "session.headers.X-Key" in err
    assert "X-Injected" not in out + err


def test_a_url_token_is_masked_in_records_and_console(
    tmp_path: Path, counting: CountingServer
) -> None:
    job = write_job(
        tmp_path,
        "version: 1\nrequests:\n"
        f'  - "{counting.url("/q")}?key=${{TOKEN}}"\n'
        f'  - {{url: "{counting.base}/p/{{n}}?key=${{TOKEN}}", range: {{n: [1, 3]}}}}\n',
    )
    for args in (("--verbose",), ("--dry-run",)):
        rc, out, err, jsonl = _token_run(tmp_path, job, *args)
        assert rc == 0, err
        assert TOKEN not in out + err + jsonl.decode()
        assert "key=***" in out + err  # masked, not dropped
    assert sorted(r.target for r in counting.requests) == [
        f"/p/{n}?key={TOKEN}" for n in (1, 2, 3)
    ] + [f"/q?key={TOKEN}"]  # the server got the real value


# ------------------------------------------------------------------------- hostile servers

BASHRC = 'attachment; filename="../../.bashrc"'


def _reply(target: bytes) -> bytes:
    """The hostile site: evil heads under /evil/, else 200 with the target as body."""
    evil = _EVIL.get(target)
    if evil is not None:
        return evil
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Disposition: " + BASHRC.encode() + b"\r\n"
        b"Content-Length: %d\r\n\r\n" % len(target)
    )
    return head + target


def _evil(status_line: bytes, *headers: bytes, body: bytes = b"evil") -> bytes:
    lines = [status_line, *headers, b"Content-Length: %d" % len(body)]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


_EVIL = {
    b"/evil/reason": _evil(b"HTTP/1.1 200 OK \x1b[2J\x1b]0;pwned\x07 \xff\xfe"),
    b"/evil/header": _evil(
        b"HTTP/1.1 200 OK",
        b"Content-Type: text/\x1b[31mred\xff\xfe",
        b"X-Evil: \x1b[2J\xc3\x28",
    ),
    b"/evil/cr-reason": _evil(b"HTTP/1.1 200 O\rK"),
    b"/evil/cr-header": _evil(b"HTTP/1.1 200 OK", b"Content-Type: text/plain\rX-Injected: 1"),
    b"/evil/huge-location": _evil(b"HTTP/1.1 302 Found", b"Location: /" + b"a" * MIB),
    b"/evil/esc-location": _evil(b"HTTP/1.1 302 Found", b"Location: /landed/\x1b[2J\xff"),
    b"/evil/status-text": _evil(b"HTTP/1.1 404 \x1b[2J" + b"x" * 5000),
    # obs-text (RFC 9110 section 5.5) is legal: these get through, as invalid UTF-8.
    b"/evil/obs-reason": _evil(b"HTTP/1.1 200 Ok \xff\xfe\xc3\x28"),
    b"/evil/obs-header": _evil(b"HTTP/1.1 200 OK", b"Content-Type: text/html; x=\xff\xc3\x28"),
}


async def _hostile_site(conn: ScriptedConnection) -> None:
    while True:  # keep-alive until the client goes (read_request raises: handled)
        raw = await conn.read_request()
        await conn.send(_reply(raw.split(b" ", 2)[1]))


@pytest.fixture
def hostile(background_loop: BackgroundLoop) -> Iterator[ScriptedServer]:
    def make() -> ScriptedServer:
        server = ScriptedServer()
        server.serve(_hostile_site)
        return server

    with background_loop.serving(make) as server:
        yield server


HOSTILE_PATHS = [
    "/../../x",
    "/%2e%2e%2f%2e%2e%2fx",
    "/..%5cx",
    "/..%2f..%2fetc%2fpasswd",
    "//abs/path",
    "/a%00b",
    "/%00",
    "/CON",
    "/aux.txt",
    "/a:b",
    "/x.%20",
    "/" + "n" * 5000,
    "/caf%C3%A9",
    "/cafe%CC%81",
    "/Readme",
    "/README",
    "/victim",
    "/replace-me",
]


def _is_under(path: str, root: str) -> bool:
    return os.path.realpath(path).startswith(root + os.sep)


def test_bodies_land_under_the_bodies_dir(tmp_path: Path, hostile: ScriptedServer) -> None:
    base = hostile.base
    (tmp_path / "urls.txt").write_text("".join(f"{base}{p}\n" for p in HOSTILE_PATHS))
    job = write_job(tmp_path, "version: 1\nrequests: [{urls_file: urls.txt}]\n")
    specs = {s.url.removeprefix(base): s for s in iter_requests(load_job(job))}

    bodies, outside = tmp_path / "bodies", tmp_path / "outside"
    outside.mkdir()
    (outside / "target.txt").write_text("precious")
    bodies.mkdir()
    (bodies / "precious.txt").write_text("mine")
    # A directory on the victim's way is a symlink out of the tree: refused, not followed.
    victim = request_hash("GET", specs["/victim"].url)
    (bodies / victim[:2]).mkdir()
    (bodies / victim[:2] / victim[2:4]).symlink_to(outside, target_is_directory=True)
    # A symlink *at* a final path is replaced itself; its target is left alone.
    replaced = request_hash("GET", specs["/replace-me"].url)
    leaf = bodies / replaced[:2] / replaced[2:4]
    leaf.mkdir(parents=True, exist_ok=True)
    (leaf / f"{replaced}.body").symlink_to(outside / "target.txt")

    workdir = tmp_path / "run" / "a" / "b"  # "../../.bashrc" from here is tmp_path/run/.bashrc
    workdir.mkdir(parents=True)
    out = tmp_path / "r.jsonl"
    run = run_cli(job, "--bodies", bodies, "--output", out, "--verbose", cwd=workdir)
    assert run.rc == 1, run.err  # the victim's body could not be stored
    assert "Traceback" not in run.err

    by_index = {r["index"]: r for r in records(out)}
    got = {path: by_index[spec.index] for path, spec in specs.items()}
    assert len(by_index) == len(specs)
    assert got["/victim"]["error"]["kind"] == "storage"
    root = os.path.realpath(bodies)
    saved = [r for p, r in got.items() if p != "/victim"]
    for record in saved:
        assert record["ok"], record
        assert _is_under(record["body_path"], root)
        assert len(os.path.basename(record["body_path"]).encode()) <= 255
        # The right body in the right file: the server echoes the request target.
        target = _target(record["final_url"])
        assert Path(record["body_path"]).read_bytes().startswith(target.removesuffix("…").encode())
    assert len({r["body_path"] for r in saved}) == len(saved)  # twins never collide

    assert os.listdir(outside) == ["target.txt"]
    assert (outside / "target.txt").read_text() == "precious"
    assert (bodies / "precious.txt").read_text() == "mine"
    assert not (leaf / f"{replaced}.body").is_symlink()
    for dirpath, _, files in os.walk(bodies):
        for name in files:
            path = os.path.join(dirpath, name)
            assert _is_under(path, root) or name == "precious.txt"
    assert not list(tmp_path.rglob(".bashrc"))
    assert not os.listdir(bodies / ".tmp")


def _target(url: str) -> str:
    """The request target of *url* (path and query)."""
    rest = url.split("://", 1)[1]
    return rest[rest.index("/") :]


def test_hostile_responses_keep_records_and_console_clean(
    tmp_path: Path, hostile: ScriptedServer
) -> None:
    urls = [hostile.url(target.decode()) for target in _EVIL]
    urls += [f"{hostile.base}/esc\x1b[2J", f"{hostile.base}/bad-utf8\udcff", hostile.url("/fine")]
    (tmp_path / "urls.txt").write_bytes(
        "".join(f"{u}\n" for u in urls).encode("utf-8", "surrogateescape")
    )
    job = write_job(
        tmp_path, "version: 1\nretry: {attempts: 1}\nrequests: [{urls_file: urls.txt}]\n"
    )
    out = tmp_path / "r.jsonl"
    run = run_cli(job, "--output", out, "--verbose")
    assert run.rc == 1
    assert "Traceback" not in run.err

    # Console: only printable ASCII and newlines, whatever the server sent.
    assert set(run.stderr) <= {0x0A, *range(0x20, 0x7F)}, run.stderr
    assert len(run.err.splitlines()) >= len(urls)  # a line per request, then the summary

    # Records: one valid, ASCII-only, size-capped JSON object per line.
    raw = out.read_bytes()
    for line in raw.splitlines():
        assert set(line) <= set(range(0x20, 0x7F))
        assert len(line) < 32 * 1024
    got = records(raw)
    assert len(got) == len(urls)
    by_url = {r["url"]: r for r in got}
    assert by_url[hostile.url("/fine")]["ok"] is True
    obs_reason = by_url[hostile.url("/evil/obs-reason")]
    assert obs_reason["status"] == 200
    assert obs_reason["reason"] == "Ok \\udcff\\udcfe\\udcc3("  # bytes shown escaped
    assert by_url[hostile.url("/evil/obs-header")]["content_type"] == "text/html; x=\\udcff\\udcc3("
    refused = by_url[hostile.url("/evil/reason")]["error"]
    assert refused["kind"] == "protocol"
    assert "\x1b" not in refused["message"]  # shown escaped, never raw


def test_a_full_disk_is_a_clear_error(counting: CountingServer) -> None:
    run = run_cli(counting.url("/"), "--output", "/dev/full")
    assert run.rc == 1
    assert "Traceback" not in run.err
    assert "No space left on device" in run.err
