"""Properties (hypothesis) of the request writer and the response codec.

* Whatever URL, method, headers and params a caller passes, no CR, LF or NUL
  reaches the wire outside the line terminators: the request is refused, or
  sent clean (checked on the bytes a real server received).
* Arbitrary bytes fed to the response codec, cut anywhere, only ever raise
  its protocol errors; nothing after a complete response is ever parsed as
  another response; and end to end, bytes a server sends after a response
  never reach the next request.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from servers import ReadRequest, Send, Sleep, Step, http_response
from servers.faults import OK_BODY, ExpectClose, FaultServer, chunked

from client import ClientError, ClientSession, ClientTimeout
from client.exceptions import HttpProcessingError
from client.http1 import END, ResponseCodec, ResponseHead

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TIMEOUT = ClientTimeout(total=5)
# What a caller might type: mostly ordinary text, sometimes with injection pieces.
PLAIN_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=20)
INJECTIONS = st.sampled_from(
    ["\r\n", "\r\nX-Injected: 1", "\n", "\r", "\x00", " HTTP/1.1\r\nX-Injected: 1", "\t",
     "\x01", "\x1f", "\x7f", "%0d%0a", ":", " ", "\u2028", "\x85", "\r\n\r\nGET / HTTP/1.1"]
)  # fmt: skip
HOSTILE_TEXT = st.lists(st.one_of(INJECTIONS, PLAIN_TEXT), min_size=1, max_size=4).map("".join)
NAMES = st.sampled_from(["X-Api", "Accept", "Cookie", "Host", "User-Agent", "Authorization"])
METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "X-CUSTOM"])


@st.composite
def sometimes_hostile(draw: st.DrawFn, plain: st.SearchStrategy[str]) -> str:
    """``plain`` four times in five, else :data:`HOSTILE_TEXT`: most requests get sent."""
    return draw(HOSTILE_TEXT) if draw(st.integers(0, 4)) == 0 else draw(plain)


TEXT = sometimes_hostile(PLAIN_TEXT)
FRAMING = {"content-length", "transfer-encoding", "expect", "connection", "upgrade"}
LINE = re.compile(rb"[^\r\n\x00]*")
AUTOMATIC = {b"host", b"accept", b"accept-encoding", b"user-agent", b"content-length",
             b"content-type"}  # fmt: skip


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- requests --------------------------------------------------------------------------------


async def send_hostile(
    method: str, path: str, query: str, headers: list[tuple[str, str]], params: dict[str, str]
) -> tuple[bool, list[bytes]]:
    server = FaultServer()
    await server.start()
    try:
        async with ClientSession(timeout=TIMEOUT) as session:
            try:
                url = f"{server.base}/{path}?{query}"
                async with session.request(method, url, headers=headers, params=params) as resp:
                    await resp.read()
            except (ValueError, TypeError, ClientError):
                return False, list(server.requests)
        return True, list(server.requests)
    finally:
        await server.close()


@PROPERTY
@given(
    method=sometimes_hostile(METHODS),
    path=TEXT,
    query=TEXT,
    headers=st.lists(st.tuples(sometimes_hostile(NAMES), TEXT), max_size=3),
    params=st.dictionaries(TEXT, TEXT, max_size=2),
)
def test_requests_never_put_ctl_on_the_wire(
    method: str,
    path: str,
    query: str,
    headers: list[tuple[str, str]],
    params: dict[str, str],
) -> None:
    assume(not any(name.strip().lower() in FRAMING for name, _ in headers))
    sent, wire = run(send_hostile(method, path, query, headers, params))
    event("sent" if sent else "refused")
    if not sent:
        assert wire == []  # refused before a byte was written
        return
    [raw] = wire
    head = raw.split(b"\r\n\r\n", 1)[0]
    lines = head.split(b"\r\n")
    for line in lines:
        assert LINE.fullmatch(line), line  # no CR, LF or NUL inside a line
    assert lines[0].split(b" ")[0] == method.upper().encode()
    assert len(lines[0].split(b" ")) == 3
    # Every field on the wire is one the caller passed, verbatim, or an automatic one:
    # a line smuggled in through a value, a name or the URL would be neither.
    fields = [line.split(b": ", 1) for line in lines[1:]]
    given = [[n.encode(), v.encode()] for n, v in headers]
    for field in given:
        assert field in fields
    for field in fields:
        assert field in given or field[0].lower() in AUTOMATIC, field


# -- the response codec ----------------------------------------------------------------------

RESPONSES = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(b"ab", b"c"),
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
]
HTTPISH = st.one_of(
    st.binary(max_size=300),
    st.sampled_from(RESPONSES),
    st.lists(st.sampled_from([b"HTTP/1.1 200 OK\r\n", b"Content-Length: 2\r\n", b"\r\n",
                              b"Transfer-Encoding: chunked\r\n", b"0\r\n", b"2\r\nab\r\n",
                              b"\n", b"\r", b"\x00", b":", b" "]), max_size=12).map(b"".join),
)  # fmt: skip


def feed_cut(codec: ResponseCodec, data: bytes, cuts: list[int]) -> list[object]:
    events: list[object] = []
    start = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        events += codec.feed(data[start:cut])
        start = cut
    return events


@PROPERTY
@given(
    data=HTTPISH,
    cuts=st.lists(st.integers(0, 400), max_size=6),
    method=st.sampled_from(["GET", "HEAD", "POST"]),
)
def test_codec_only_raises_protocol_errors(data: bytes, cuts: list[int], method: str) -> None:
    codec = ResponseCodec()
    codec.start(method)
    try:
        feed_cut(codec, data, cuts)
        codec.feed_eof()
    except HttpProcessingError:
        assert not codec.reusable
        assert codec.feed(b"more") == []  # a failed codec parses nothing more


@PROPERTY
@given(
    first=st.sampled_from(RESPONSES),
    stray=HTTPISH | st.sampled_from(RESPONSES),
    cuts=st.lists(st.integers(0, 400), max_size=6),
)
def test_codec_never_parses_bytes_after_a_response(
    first: bytes, stray: bytes, cuts: list[int]
) -> None:
    assume(stray)
    codec = ResponseCodec()
    codec.start("GET")
    events = feed_cut(codec, first + stray, [len(first), *cuts])
    heads = [e for e in events if isinstance(e, ResponseHead)]
    assert len(heads) == 1  # never a second response without start()
    end = events.index(END)
    assert all(e is not END and not isinstance(e, ResponseHead) for e in events[end + 1 :])
    assert not any(isinstance(e, bytes) for e in events[end + 1 :])
    assert not codec.reusable  # the stray bytes poisoned the connection


async def stray_then_next(stray: bytes, later: bool) -> tuple[bytes, bytes, str]:
    server = FaultServer()
    await server.start()
    first = http_response(200, b"first")
    steps: list[Step] = [ReadRequest(), Send(first)]
    steps += [Sleep(0.01), Send(stray)] if later else [Send(stray)]
    server.faults([*steps, ExpectClose(timeout=2)])
    try:
        async with ClientSession(timeout=TIMEOUT) as session:
            async with session.get(server.url("/1")) as resp:
                one = await resp.read()
            if later:  # the stray bytes must have arrived before the next request
                await server.wait_closed_by_client(0)
            async with session.get(server.url("/2")) as resp:
                return one, await resp.read(), resp.headers["X-Conn"]
    finally:
        await server.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stray=HTTPISH | st.sampled_from(RESPONSES), later=st.booleans())
def test_stray_bytes_never_reach_the_next_request(stray: bytes, later: bool) -> None:
    assume(stray)
    one, two, conn = run(stray_then_next(stray, later))
    assert one == b"first"
    assert (two, conn) == (OK_BODY, "1")  # its own answer, on a fresh connection
