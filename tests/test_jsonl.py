"""JSONL output: one ASCII line per record, flushed as written, hostile text escaped."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from servers import Close, ReadRequest, ScriptedServer, Send, http_response

from jobs import RetryPolicy, job_from_urls
from runner.app import RunOptions, run_job
from runner.outcome import ErrorInfo, Outcome, Timings, encode_json
from runner.sinks.jsonl import JsonlSink

STARTED = "2025-01-02T03:04:05.678Z"
# Printable ASCII only: no C0 controls, no DEL, nothing >= 0x80.
CLEAN_LINE = re.compile(rb"[\x20-\x7e]+")


def outcome(url: str = "http://a.test/", **changes: object) -> Outcome:
    return Outcome(url, "GET", 0, "<test>", STARTED, **changes)  # type: ignore[arg-type]


def lines_of(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return data.split(b"\n")[:-1]


def test_one_line_per_record_flushed_as_written(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "out.jsonl"  # parents are created
    sink = JsonlSink(path)
    sink.write(outcome("http://a.test/1", status=200, ok=True))
    assert len(lines_of(path)) == 1  # readable before close: flushed per record
    sink.write(outcome("http://a.test/2", status=404))
    sink.close()
    assert sink.written == 2
    records = [json.loads(line) for line in lines_of(path)]
    assert [(r["url"], r["status"], r["ok"]) for r in records] == [
        ("http://a.test/1", 200, True),
        ("http://a.test/2", 404, False),
    ]


def test_a_new_sink_truncates_and_append_appends(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    for append in (False, False, True):
        sink = JsonlSink(path, append=append)
        sink.write(outcome())
        sink.close()
    assert len(lines_of(path)) == 2


def test_dash_writes_to_stdout_and_leaves_it_open(capsys: pytest.CaptureFixture[str]) -> None:
    sink = JsonlSink("-")
    sink.write(outcome(status=200))
    sink.close()
    print("still open")
    out = capsys.readouterr().out.splitlines()
    assert json.loads(out[0])["status"] == 200
    assert out[1] == "still open"


HOSTILE = [
    "\x1b[2J\x1b]0;owned\x07",  # terminal escapes
    "a\rb\nc\r\n\x00\x08\x7f",  # line breaks, NUL, backspace, DEL
    "\x85\u2028\u2029",  # NEL and Unicode line/paragraph separators
    "OK \udcff\udcfe",  # invalid UTF-8 from a server, as the client decodes it
    "café ☕ 😀",  # plain non-ASCII text
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_escaped_and_round_trips(tmp_path: Path, text: str) -> None:
    path = tmp_path / "out.jsonl"
    hostile = outcome(
        "http://a.test/" + text,
        name=text,
        reason=text,
        content_type=text,
        final_url=text,
        redirects=((302, text),),
        error=ErrorInfo("protocol", text),
    )
    sink = JsonlSink(path)
    sink.write(hostile)
    sink.close()
    [line] = lines_of(path)
    assert CLEAN_LINE.fullmatch(line)
    assert json.loads(line) == hostile.to_record()


def test_values_json_cannot_hold_are_written_as_text(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    sink = JsonlSink(path)
    sink.write(outcome(extra={"where": Path("/x/y")}))
    sink.close()
    assert json.loads(lines_of(path)[0])["where"] == "/x/y"


async def test_a_hostile_server_cannot_break_the_output(
    scripted_server: ScriptedServer, tmp_path: Path
) -> None:
    # latin-1 str -> raw bytes: ff fe 80 and c3 28 are invalid UTF-8 on the wire
    bad_utf8 = http_response(
        200, b"ok", reason="OK \xff\xfe\x80", headers=[("Content-Type", "text/\xc3(")]
    )
    escape_in_head = b"HTTP/1.1 200 \x1b[2J\x1b]0;pwned\x07\r\nContent-Length: 0\r\n\r\n"
    scripted_server.script(
        [ReadRequest(), Send(bad_utf8), Close()], [ReadRequest(), Send(escape_in_head), Close()]
    )
    job = job_from_urls(
        [scripted_server.url("/utf8"), scripted_server.url("/esc")],
        retry=RetryPolicy(attempts=1),
    )
    out = tmp_path / "out.jsonl"
    result = await run_job(job, RunOptions(output=out, quiet=True))
    assert result.summary.total == 2
    lines = lines_of(out)
    assert len(lines) == 2
    for line in lines:
        assert CLEAN_LINE.fullmatch(line)
    records = {r["url"].rsplit("/", 1)[1]: r for r in map(json.loads, lines)}
    # Undecodable bytes are shown as visible escapes, not kept as lone surrogates, so
    # every record is valid I-JSON (RFC 7493) that strict UTF-8 readers accept.
    assert records["utf8"]["reason"] == "OK \\udcff\\udcfe\\udc80"
    assert records["utf8"]["content_type"] == "text/\\udcc3("
    for record in records.values():
        json.dumps(record, ensure_ascii=False).encode("utf-8")  # strict: no surrogates
    assert records["utf8"]["ok"] is True
    assert records["esc"]["error"]["kind"] == "protocol"
    assert "\x1b" not in records["esc"]["error"]["message"]  # shown escaped, never raw


# -- to_json: the writer's path gives exactly the json module's text of to_record() ----

REFERENCE = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), default=str).encode

_TEXT = st.text(max_size=8) | st.sampled_from(HOSTILE) | st.just("x" * 2100)
_SECONDS = st.none() | st.floats(allow_nan=True, allow_infinity=True) | st.integers(0, 9)
_EXTRA = st.dictionaries(
    st.sampled_from(["data", "follow", "status", "url", "where"]),
    st.none() | st.integers() | _TEXT | st.just(Path("/x")),
    max_size=3,
)


@settings(max_examples=400, deadline=None)
@given(
    text=_TEXT,
    maybe=st.none() | _TEXT,
    number=st.none() | st.integers(-5, 10**12),
    ok=st.booleans(),
    timings=st.builds(Timings, _SECONDS, _SECONDS, _SECONDS, _SECONDS, _SECONDS),
    redirects=st.lists(st.tuples(st.integers(100, 999), _TEXT), max_size=2).map(tuple),
    error=st.none() | st.builds(ErrorInfo, _TEXT, _TEXT),
    extra=_EXTRA,
    body_path=st.none() | _TEXT | st.just(Path("/b/1")),
)
def test_to_json_is_the_record_encoded(
    text: str,
    maybe: str | None,
    number: int | None,
    ok: bool,
    timings: Timings,
    redirects: tuple[tuple[int, str], ...],
    error: ErrorInfo | None,
    extra: dict[str, object],
    body_path: object,
) -> None:
    o = Outcome(
        "http://a.test/" + text, text or "GET", number or 0, text, STARTED, name=maybe,
        final_url=maybe, status=number, reason=maybe, ok=ok, size=number, content_type=maybe,
        timings=timings, attempts=number or 0, redirects=redirects, error=error,
        sha256=maybe, body_path=body_path, retries_waited=0.5, extra=extra,  # type: ignore[arg-type]
    )  # fmt: skip
    assert o.to_json() == REFERENCE(o.to_record())


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _TEXT | st.just(Path("/p")),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(_JSONISH)
def test_encode_json_is_the_json_modules_encoder(value: object) -> None:
    assert encode_json(value) == REFERENCE(value)


def test_to_json_of_a_typical_record() -> None:
    o = outcome(
        status=200, reason="OK", ok=True, size=2000, content_type="text/html",
        timings=Timings(None, 0.0012345, None, 0.002, 0.0031), sha256="ab" * 32,
        redirects=((301, "http://a.test/old"),), extra={"data": {"title": "Home"}},
    )  # fmt: skip
    line = o.to_json()
    assert line == REFERENCE(o.to_record())
    assert json.loads(line)["elapsed_ms"] == {
        "dns": None, "connect": 1.234, "tls": None, "ttfb": 2.0, "total": 3.1
    }  # fmt: skip
    assert line.endswith(',"data":{"title":"Home"}}')
