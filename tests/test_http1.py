"""Bytes-level tests of the HTTP/1.1 response codec (client/http1.py).

Every wire case is fed whole, one byte at a time and split at random points;
a correct codec gives the same events (body bytes coalesced) in every mode.
The security.md PARSE-01..12 and LIM-01/02 checks are exercised here at the
codec level.
"""

from __future__ import annotations

import gzip
import itertools
import random
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client.exceptions import (
    BadHttpMessage,
    BadStatusLine,
    ContentLengthError,
    HttpProcessingError,
    InvalidHeader,
    LineTooLong,
    TransferEncodingError,
)
from client.http1 import (
    CHUNK_END,
    END,
    EndOfMessage,
    Event,
    InformationalHead,
    Phase,
    ResponseCodec,
    ResponseHead,
)

MODES = ["whole", "bytewise", "random-1", "random-2"]
OK = b"HTTP/1.1 200 OK\r\n"
CHUNKED = OK + b"Transfer-Encoding: chunked\r\n\r\n"
NEXT_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


def pieces(data: bytes, mode: str) -> Iterator[bytes]:
    """Split ``data`` as the mode says (lazily, so 1 MiB bytewise stays cheap)."""
    if mode == "whole":
        yield data
    elif mode == "bytewise":
        for i in range(len(data)):
            yield data[i : i + 1]
    else:
        rng = random.Random(f"{mode}:{len(data)}")
        cuts = sorted(rng.sample(range(1, len(data)), min(12, max(0, len(data) - 1))))
        for start, stop in zip([0, *cuts], [*cuts, len(data)], strict=True):
            yield data[start:stop]


def coalesce(events: list[Event]) -> list[Event]:
    """Merge adjacent body chunks and drop chunk boundaries, so events compare
    equal across modes (boundaries are checked in their own test)."""
    out: list[Event] = []
    for event in events:
        if event is CHUNK_END:
            continue
        if isinstance(event, bytes) and out and isinstance(out[-1], bytes):
            out[-1] += event
        else:
            out.append(event)
    return out


def respond(
    data: bytes,
    mode: str = "whole",
    *,
    method: str = "GET",
    eof: bool = False,
    expect_upgrade: bool = False,
    limits: dict[str, int] | None = None,
) -> tuple[list[Event], ResponseCodec]:
    codec = ResponseCodec(**(limits or {}))
    codec.start(method, expect_upgrade=expect_upgrade)
    events: list[Event] = []
    for piece in pieces(data, mode):
        events += codec.feed(piece)
    if eof:
        events += codec.feed_eof()
    return coalesce(events), codec


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- well-formed responses -------------------------------------------------------


@dataclass(frozen=True)
class Case:
    wire: bytes
    body: bytes = b""
    status: int = 200
    method: str = "GET"
    informational: tuple[int, ...] = ()
    keep_alive: bool = True
    until_close: bool = False


GZ = gzip.compress(b"hello world " * 50)
CASES = {
    "content-length": Case(OK + b"Content-Length: 5\r\n\r\nhello", b"hello"),
    "content-length-0": Case(OK + b"Content-Length: 0\r\n\r\n"),
    "head-with-content-length": Case(OK + b"Content-Length: 10\r\n\r\n", method="HEAD"),
    "head-with-chunked": Case(CHUNKED, method="HEAD"),
    "head-without-length": Case(OK + b"\r\n", method="HEAD"),
    "204-with-content-length": Case(
        b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", status=204
    ),
    "304-with-content-length": Case(
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", status=304
    ),
    "100-and-103-first": Case(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
        + OK
        + b"Content-Length: 2\r\n\r\nok",
        b"ok",
        informational=(100, 103),
    ),
    "chunked-with-trailers": Case(
        CHUNKED + b"5;name=value\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\n",
        b"hello world",
    ),
    "chunked-empty": Case(CHUNKED + b"0\r\n\r\n"),
    "chunked-gzip-bytes": Case(
        OK
        + b"Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in (GZ[:10], GZ[10:20], GZ[20:]))
        + b"0\r\n\r\n",
        GZ,
    ),
    "until-close": Case(
        OK + b"Content-Type: text/plain\r\n\r\nall of it",
        b"all of it",
        keep_alive=False,
        until_close=True,
    ),
    "http10-keep-alive": Case(
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", b"ok"
    ),
    "http10-default-close": Case(
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", b"ok", keep_alive=False
    ),
    "connection-close": Case(
        OK + b"Connection: close\r\nContent-Length: 2\r\n\r\nok", b"ok", keep_alive=False
    ),
    "connection-token-list": Case(
        OK + b"Connection: Upgrade, Keep-Alive\r\nContent-Length: 0\r\n\r\n"
    ),
    "connection-close-in-list": Case(
        OK + b"Connection: keep-alive\r\nConnection: x, CLOSE\r\nContent-Length: 0\r\n\r\n",
        keep_alive=False,
    ),
    "417-to-expect-continue": Case(
        b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n", status=417
    ),
    "no-reason": Case(b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"),
    "empty-reason": Case(b"HTTP/1.1 599 \r\nContent-Length: 0\r\n\r\n", status=599),
}


def check_case(case: Case, events: list[Event]) -> None:
    n_info = len(case.informational)
    assert [e.status for e in events[:n_info] if isinstance(e, InformationalHead)] == list(
        case.informational
    )
    head = events[n_info]
    assert isinstance(head, ResponseHead)
    assert head.status == case.status
    assert head.keep_alive is case.keep_alive
    assert events[n_info + 1 :] == ([case.body] if case.body else []) + [END]


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_well_formed_response(case: Case, mode: str) -> None:
    events, codec = respond(case.wire, mode, method=case.method, eof=case.until_close)
    check_case(case, events)
    assert codec.complete
    assert codec.started
    assert codec.reusable is (case.keep_alive and not case.until_close)


STRAY = {
    "response": NEXT_RESPONSE,
    "crlf": b"\r\n",
    "garbage": b"0123456789",
    "chunked-response": CHUNKED + b"5\r\nEVIL!\r\n0\r\n\r\n",
    "101-response": b"HTTP/1.1 101 S\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\nEVIL",
}


@pytest.mark.parametrize(
    "case", [c for c in CASES.values() if not c.until_close],
    ids=[k for k, c in CASES.items() if not c.until_close],
)  # fmt: skip
@pytest.mark.parametrize("extra", STRAY.values(), ids=STRAY.keys())
def test_bytes_after_the_end_poison_the_connection(case: Case, extra: bytes, mode: str) -> None:
    # PARSE-12 / CONN-03: never parsed as the next response, never reused.
    events, codec = respond(case.wire + extra, mode, method=case.method)
    check_case(case, events)
    assert codec.complete
    assert not codec.reusable
    with pytest.raises(RuntimeError):
        codec.start("GET")


def test_until_close_body_completes_only_at_eof() -> None:
    codec = ResponseCodec()
    codec.start("GET")
    events = codec.feed(OK + b"\r\npart one ")
    assert isinstance(events[0], ResponseHead)
    assert events[1:] == [b"part one "]
    assert codec.feed(b"part two") == [b"part two"]
    assert not codec.complete
    assert codec.feed_eof() == [END]
    assert codec.complete
    assert not codec.reusable


def test_head_fields_and_header_decoding() -> None:
    wire = (
        b"HTTP/1.1 201 Cr\xc3\xa9\xff\r\nContent-Length: 0\r\nSet-Cookie: a=1\r\n"
        b"X-Latin: caf\xe9\r\nset-cookie: b=2\r\nX-Pad:   padded \t \r\n\r\n"
    )
    [head, end], _ = respond(wire)
    assert end is END
    assert isinstance(head, ResponseHead)
    assert (head.status, head.version, head.content_length, head.chunked) == (201, (1, 1), 0, False)
    assert head.reason == "Cré\udcff"  # utf-8 with surrogateescape, as aiohttp
    assert head.headers.getall("SET-COOKIE") == ["a=1", "b=2"]
    assert head.headers["x-latin"] == "caf\udce9"
    assert head.headers["X-Pad"] == "padded"
    assert head.raw_headers[1] == (b"Set-Cookie", b"a=1")
    assert len(head.raw_headers) == 5
    assert not head.upgrade


def test_trailers_never_reach_the_headers(mode: str) -> None:
    wire = CHUNKED + b"3\r\nabc\r\n0\r\nX-Checksum: 99\r\nSet-Cookie: evil=1\r\n\r\n"
    [head, body, end], codec = respond(wire, mode)
    assert isinstance(head, ResponseHead)
    assert body == b"abc"
    assert end is END
    assert "Set-Cookie" not in head.headers
    assert "X-Checksum" not in head.headers
    assert head.chunked
    assert head.content_length is None
    assert codec.reusable


def test_content_length_body_is_not_copied() -> None:
    codec = ResponseCodec()
    codec.start("GET")
    codec.feed(OK + b"Content-Length: 100000\r\n\r\n")
    chunk = b"x" * 60000
    [event] = codec.feed(chunk)
    assert event is chunk


def test_bytearray_and_memoryview_input() -> None:
    codec = ResponseCodec()
    codec.start("GET")
    events = codec.feed(bytearray(OK + b"Content-Length: 6\r\n\r\nab"))
    events += codec.feed(memoryview(b"cd")) + codec.feed(memoryview(b"ef"))
    assert coalesce(events)[1:] == [b"abcdef", END]
    assert all(type(e) is bytes for e in events[1:-1])


# -- state, reuse and end of input --------------------------------------------------


def test_pipelined_response_is_parsed_only_after_start(mode: str) -> None:
    codec = ResponseCodec()
    for body in (b"one", b"two"):
        codec.start("GET")
        assert not codec.started
        assert not codec.complete
        events: list[Event] = []
        for piece in pieces(OK + b"Content-Length: 3\r\n\r\n" + body, mode):
            events += codec.feed(piece)
        assert coalesce(events)[1:] == [body, END]
        assert codec.reusable


def test_start_while_in_progress_raises() -> None:
    codec = ResponseCodec()
    codec.start("GET")
    with pytest.raises(RuntimeError):
        codec.start("GET")
    codec.feed(OK + b"Content-Length: 5\r\n\r\nab")
    with pytest.raises(RuntimeError, match="in progress"):
        codec.start("GET")


def test_start_after_a_non_reusable_response_raises() -> None:
    _, codec = respond(OK + b"Connection: close\r\nContent-Length: 0\r\n\r\n")
    assert codec.complete
    assert not codec.reusable
    with pytest.raises(RuntimeError):
        codec.start("GET")


def test_unsolicited_bytes_on_an_idle_connection() -> None:
    _, codec = respond(NEXT_RESPONSE)
    assert codec.reusable
    assert codec.feed(NEXT_RESPONSE) == []  # swallowed, never parsed
    assert not codec.reusable
    fresh = ResponseCodec()
    assert fresh.feed(b"HTTP/1.1 200 OK\r\n\r\n") == []  # before any request
    assert not fresh.reusable
    with pytest.raises(RuntimeError):
        fresh.start("GET")


def test_eof_before_any_byte_is_retryable() -> None:
    codec = ResponseCodec()
    codec.start("GET")
    assert codec.feed_eof() == []
    assert not codec.started
    assert not codec.complete
    assert not codec.reusable


def test_eof_in_the_middle_of_a_head() -> None:
    codec = ResponseCodec()
    codec.start("GET")
    assert codec.feed(b"HTTP/1.1 200 OK\r\nContent-Le") == []
    assert codec.feed_eof() == []
    assert codec.started
    assert not codec.complete


def test_eof_after_completion_makes_it_unreusable() -> None:
    _, codec = respond(NEXT_RESPONSE)
    assert codec.feed_eof() == []
    assert codec.complete
    assert not codec.reusable


@pytest.mark.parametrize(
    ("wire", "error"),
    [
        (OK + b"Content-Length: 10\r\n\r\nhello", ContentLengthError),
        (CHUNKED + b"5\r\nhello\r\n", TransferEncodingError),
        (CHUNKED + b"5\r\nhel", TransferEncodingError),
        (CHUNKED + b"0\r\nX-Trailer: 1\r\n", TransferEncodingError),
    ],
    ids=["content-length-short", "no-last-chunk", "mid-chunk", "mid-trailers"],
)
def test_body_cut_short_by_eof(wire: bytes, error: type[Exception], mode: str) -> None:
    with pytest.raises(error):
        respond(wire, mode, eof=True)


def test_codec_is_dead_after_an_error() -> None:
    codec = ResponseCodec()
    codec.start("GET")
    with pytest.raises(BadStatusLine):
        codec.feed(b"HTTP/2.0 200 OK\r\n\r\n")
    assert codec.phase is Phase.FAILED
    assert codec.feed(NEXT_RESPONSE) == []
    assert not codec.reusable
    with pytest.raises(RuntimeError):
        codec.start("GET")
    assert "failed" in repr(codec)


# -- upgrades and tunnels --------------------------------------------------------------


def test_accepted_101_hands_over_trailing_bytes(mode: str) -> None:
    wire = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    events, codec = respond(wire + b"\x81\x02hi", mode, expect_upgrade=True)
    [head, end] = events
    assert isinstance(head, ResponseHead)
    assert end is END
    assert head.status == 101
    assert head.upgrade
    assert not head.keep_alive
    assert codec.complete
    assert not codec.reusable
    assert codec.take_trailing() == b"\x81\x02hi"
    assert codec.take_trailing() == b""


def test_expect_upgrade_still_accepts_a_normal_response() -> None:
    events, codec = respond(
        b"HTTP/1.1 100 Continue\r\n\r\n" + OK + b"Content-Length: 1\r\n\r\nx",
        expect_upgrade=True,
    )
    assert [type(e) for e in events] == [InformationalHead, ResponseHead, bytes, EndOfMessage]
    assert codec.reusable
    assert codec.take_trailing() == b""


def test_connect_2xx_is_a_tunnel(mode: str) -> None:
    events, codec = respond(b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03", mode,
                            method="CONNECT")  # fmt: skip
    [head, end] = events
    assert isinstance(head, ResponseHead)
    assert head.upgrade
    assert end is END
    assert codec.take_trailing() == b"\x16\x03"


def test_connect_refused_has_a_normal_body() -> None:
    wire = b"HTTP/1.1 407 Proxy Auth\r\nContent-Length: 4\r\n\r\nnope"
    events, codec = respond(wire, method="CONNECT")
    assert events[1:] == [b"nope", END]
    assert codec.reusable


@pytest.mark.parametrize("framing", [b"Content-Length: 5\r\n", b"Transfer-Encoding: chunked\r\n"])
def test_connect_2xx_declaring_a_body_is_an_error(framing: bytes, mode: str) -> None:
    # PRX-03: a tunnel answer with body framing is not trusted.
    with pytest.raises(BadHttpMessage):
        respond(OK + framing + b"\r\n", mode, method="CONNECT")


# -- security.md section 3: PARSE-01..12 ---------------------------------------------


def head_with(*fields: bytes) -> bytes:
    return OK + b"".join(f + b"\r\n" for f in fields) + b"\r\n"


BAD_FRAMING = {
    # PARSE-01
    "cl-and-te": head_with(b"Content-Length: 4", b"Transfer-Encoding: chunked") + b"4\r\nabcd",
    "te-and-cl": head_with(b"Transfer-Encoding: chunked", b"Content-Length: 4"),
    # PARSE-02
    "cl-list": head_with(b"Content-Length: 5, 6"),
    "cl-same-list": head_with(b"Content-Length: 5, 5"),
    "cl-two-different": head_with(b"Content-Length: 5", b"Content-Length: 6"),
    "cl-plus": head_with(b"Content-Length: +5"),
    "cl-minus": head_with(b"Content-Length: -1"),
    "cl-hex": head_with(b"Content-Length: 0x5"),
    "cl-underscore": head_with(b"Content-Length: 1_0"),
    "cl-arabic-indic": head_with("Content-Length: \u0665".encode()),
    "cl-30-digits": head_with(b"Content-Length: " + b"9" * 30),
    "cl-19-digits": head_with(b"Content-Length: 1" + b"0" * 18),
    "cl-empty": head_with(b"Content-Length: "),
    "cl-obs-fold": head_with(b"Content-Length:", b" 5"),
    # PARSE-03
    "te-chunked-identity": head_with(b"Transfer-Encoding: chunked, identity"),
    "te-xchunked": head_with(b"Transfer-Encoding: xchunked"),
    "te-gzip-chunked": head_with(b"Transfer-Encoding: gzip, chunked"),
    "te-identity": head_with(b"Transfer-Encoding: identity") + b"body",
    "te-twice": head_with(b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"),
    "te-obs-fold": head_with(b"Transfer-Encoding:", b" chunked"),
    # PARSE-04
    "chunk-bare-lf": CHUNKED + b"5\nhello\r\n0\r\n\r\n",
    "chunk-space-after-size": CHUNKED + b"5 \r\nhello\r\n0\r\n\r\n",
    "chunk-0x": CHUNKED + b"0x5\r\nhello\r\n0\r\n\r\n",
    "chunk-negative": CHUNKED + b"-1\r\nhello\r\n0\r\n\r\n",
    "chunk-17-hex-digits": CHUNKED + b"10000000000000000\r\nhello\r\n0\r\n\r\n",
    "chunk-data-not-crlf": CHUNKED + b"5\r\nhelloXX0\r\n\r\n",
    "chunk-ext-bare-cr": CHUNKED + b"5;a=b\rc\r\nhello\r\n0\r\n\r\n",
    "chunk-ext-bare-lf": CHUNKED + b"5;a\n=b\r\nhello\r\n0\r\n\r\n",
    "chunk-empty-size": CHUNKED + b"\r\nhello\r\n0\r\n\r\n",
    # PARSE-06 (NUL in a trailer)
    "trailer-nul": CHUNKED + b"0\r\nX: a\x00b\r\n\r\n",
    "trailer-content-length": CHUNKED + b"0\r\nContent-Length: 5\r\n\r\n",
    "trailer-obs-fold": CHUNKED + b"0\r\nX: a\r\n b\r\n\r\n",
    # PARSE-07
    "value-nul": head_with(b"X: a\x00b"),
    "value-ctl": head_with(b"X: a\x01b"),
    "value-del": head_with(b"X: a\x7fb"),
    "value-bare-cr": head_with(b"X: a\rTransfer-Encoding: chunked"),
    "block-ends-cr-x": OK + b"A: b\r\n\rX\r\n\r\n",
    # PARSE-08
    "bare-lf-head": b"HTTP/1.1 200 OK\nContent-Length: 5\n\nhello",
    "bare-lf-after-field": OK + b"Content-Length: 5\n\r\nhello",
    "space-before-colon": head_with(b"Content-Length : 5") + b"hello",
    "leading-space-first-field": OK + b" Content-Length: 5\r\n\r\nhello",
    "empty-field-name": head_with(b": x"),
    "field-without-colon": head_with(b"NoColon"),
    # PARSE-09
    "obs-fold": head_with(b"X-A: 1", b" 2"),
    "obs-fold-tab": head_with(b"X-A: 1", b"\t2"),
}


@pytest.mark.parametrize("wire", BAD_FRAMING.values(), ids=BAD_FRAMING.keys())
def test_bad_framing_is_a_protocol_error(wire: bytes, mode: str) -> None:
    with pytest.raises(HttpProcessingError):
        respond(wire, mode, eof=True)


@pytest.mark.parametrize("name", ["cl-plus", "cl-19-digits", "cl-two-different", "value-nul"])
def test_bad_headers_raise_invalid_header(name: str, mode: str) -> None:
    with pytest.raises(InvalidHeader):
        respond(BAD_FRAMING[name], mode)


@pytest.mark.parametrize("name", ["te-chunked-identity", "te-xchunked", "te-twice"])
def test_bad_transfer_coding_raises_transfer_encoding_error(name: str, mode: str) -> None:
    with pytest.raises(TransferEncodingError):
        respond(BAD_FRAMING[name], mode)


@pytest.mark.parametrize("name", [k for k in BAD_FRAMING if k.startswith("chunk-")])
def test_bad_chunk_framing_raises_transfer_encoding_error(name: str, mode: str) -> None:
    with pytest.raises(TransferEncodingError):
        respond(BAD_FRAMING[name], mode)


def test_eighteen_digit_content_length_is_accepted() -> None:
    [head], codec = respond(head_with(b"Content-Length: 999999999999999999"))
    assert isinstance(head, ResponseHead)
    assert head.content_length == 10**18 - 1
    assert codec.phase is Phase.BODY_LENGTH  # streamed, never preallocated


BAD_STATUS = {
    "status-2-digits": b"HTTP/1.1 99 X\r\n\r\n",
    "status-4-digits": b"HTTP/1.1 2000 OK\r\n\r\n",
    "status-000": b"HTTP/1.1 000 OK\r\n\r\n",
    "status-600": b"HTTP/1.1 600 X\r\n\r\n",
    "status-negative": b"HTTP/1.1 -1 X\r\n\r\n",
    "version-1.10": b"HTTP/1.10 200 OK\r\n\r\n",
    "version-2.0": b"HTTP/2.0 200 OK\r\n\r\n",
    "version-0.9": b"HTTP/0.9 200 OK\r\n\r\n",
    "version-lowercase": b"http/1.1 200 OK\r\n\r\n",
    "http-0.9-body": b"<html><body>no status line</body></html>",
    "reason-cr": b"HTTP/1.1 200 O\rK\r\n\r\n",
    "reason-ctl": b"HTTP/1.1 200 O\x01K\r\n\r\n",
    "double-space": b"HTTP/1.1  200 OK\r\n\r\n",
    "leading-crlf": b"\r\nHTTP/1.1 200 OK\r\n\r\n",
    "bare-lf-status": b"HTTP/1.1 200 OK\n\r\n",
}


@pytest.mark.parametrize("wire", BAD_STATUS.values(), ids=BAD_STATUS.keys())
def test_bad_status_line(wire: bytes, mode: str) -> None:
    # PARSE-10
    with pytest.raises(BadStatusLine):
        respond(wire, mode, eof=True)


def test_http09_body_fails_without_waiting_for_more() -> None:
    codec = ResponseCodec()
    codec.start("GET")
    with pytest.raises(BadStatusLine):
        codec.feed(b"<")


def test_informational_flood_errors_after_the_limit(mode: str) -> None:
    # PARSE-11
    cont = b"HTTP/1.1 100 Continue\r\n\r\n"
    events, _ = respond(cont * 10 + NEXT_RESPONSE, mode)
    assert len(events) == 12
    assert isinstance(events[10], ResponseHead)
    with pytest.raises(BadHttpMessage, match="informational"):
        respond(cont * 1000 + NEXT_RESPONSE, mode)


def test_unrequested_101_is_an_error(mode: str) -> None:
    wire = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
    with pytest.raises(BadHttpMessage, match="101"):
        respond(wire, mode)


@pytest.mark.parametrize("status", [b"204 No Content", b"304 Not Modified"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_no_body_responses_complete_without_waiting(status: bytes, method: str) -> None:
    # PARSE-12: the head alone completes the response; the stray bytes poison.
    codec = ResponseCodec()
    codec.start(method)
    [head, end] = codec.feed(b"HTTP/1.1 " + status + b"\r\nContent-Length: 10\r\n\r\n")
    assert isinstance(head, ResponseHead)
    assert end is END
    assert codec.reusable
    assert codec.feed(b"0123456789") == []
    assert not codec.reusable


# -- security.md section 3: PARSE-05/06, LIM-01/02 ----------------------------------


def test_chunk_extension_flood_hits_the_line_limit(mode: str) -> None:
    # PARSE-05: 1-byte chunks, each with a 16 KiB extension.
    chunk = b"1;" + b"e" * 16384 + b"\r\nx\r\n"
    with pytest.raises(LineTooLong, match="chunk-size line"):
        respond(CHUNKED + chunk * 64 + b"0\r\n\r\n", mode)


def test_chunk_extension_one_chunk_per_feed_hits_the_line_limit() -> None:
    codec = ResponseCodec()
    codec.start("GET")
    codec.feed(CHUNKED)
    with pytest.raises(LineTooLong):
        codec.feed(b"1;" + b"e" * 9000 + b"\r\nx\r\n")


@pytest.mark.parametrize(("size", "ok"), [(8190, True), (8191, False)])
def test_chunk_size_line_limit_is_exact(size: int, ok: bool, mode: str) -> None:
    line = b"3;" + b"e" * (size - 2)
    wire = CHUNKED + line + b"\r\nabc\r\n0\r\n\r\n"
    if ok:
        events, _ = respond(wire, mode)
        assert events[1:] == [b"abc", END]
    else:
        with pytest.raises(LineTooLong):
            respond(wire, mode)


@pytest.mark.parametrize(
    "trailers",
    [b"T: 1\r\n" * 1000, b"T: " + b"v" * (1 << 20) + b"\r\n", (b"T: " + b"v" * 8000 + b"\r\n") * 9],
    ids=["1000-fields", "1MiB-field", "over-64KiB"],
)
def test_trailer_limits(trailers: bytes, mode: str) -> None:
    # PARSE-06
    with pytest.raises((LineTooLong, BadHttpMessage)):
        respond(CHUNKED + b"1\r\nx\r\n0\r\n" + trailers + b"\r\n", mode)


def test_trailers_at_the_limits_are_accepted(mode: str) -> None:
    trailers = b"".join(b"T%d: %s\r\n" % (i, b"v" * 400) for i in range(128))
    events, codec = respond(CHUNKED + b"1\r\nx\r\n0\r\n" + trailers + b"\r\n", mode)
    assert events[1:] == [b"x", END]
    assert codec.reusable


def limits_case(kind: str) -> bytes:
    big = b"a" * (1 << 20)
    return {
        "1MiB-reason": b"HTTP/1.1 200 " + big + b"\r\n\r\n",
        "1MiB-value": head_with(b"X-Big: " + big),
        "200KiB-headers": head_with(*[b"X-%d: %s" % (i, b"v" * 2000) for i in range(100)]),
        "10000-headers": head_with(*[b"X: 1"] * 10000),
        "5000-set-cookie": head_with(*[b"Set-Cookie: a=;"] * 5000),
    }[kind]


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("1MiB-reason", LineTooLong),
        ("1MiB-value", LineTooLong),
        ("200KiB-headers", LineTooLong),
        ("10000-headers", BadHttpMessage),
        ("5000-set-cookie", BadHttpMessage),
    ],
)
def test_head_limits(kind: str, error: type[Exception], mode: str) -> None:
    # LIM-01 / LIM-02, whole and one byte per feed (aiohttp CVE-2026-54277).
    match = "header fields" if error is BadHttpMessage else "longer|larger"
    with pytest.raises(error, match=match):
        respond(limits_case(kind), mode)


@pytest.mark.parametrize("kind", ["1MiB-reason", "1MiB-value", "200KiB-headers"])
def test_head_limit_memory_stays_bounded(kind: str) -> None:
    data = limits_case(kind)
    codec = ResponseCodec()
    codec.start("GET")
    tracemalloc.start()
    try:
        with pytest.raises(LineTooLong):
            codec.feed(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * 65536


def sized_head(kind: str, extra: int) -> tuple[dict[str, int], bytes]:
    """A head exactly at a limit (extra=0) or one past it (extra=1)."""
    if kind == "status-line":  # 13 + 87 = 100 bytes
        return {"max_line_size": 100}, b"HTTP/1.1 200 " + b"r" * (87 + extra) + b"\r\n\r\n"
    if kind == "field":  # 3 + 97 = 100 bytes
        return {"max_field_size": 100}, head_with(b"X: " + b"v" * (97 + extra))
    if kind == "count":
        return {"max_headers": 3}, head_with(*[b"A: 1"] * (3 + extra))
    # block: 17 (status line) + 179 (field) + 2 + 2 = 200 bytes
    return {"max_header_block": 200}, head_with(b"X: " + b"v" * (176 + extra))


@pytest.mark.parametrize("kind", ["status-line", "field", "count", "block"])
def test_head_limits_are_exact(kind: str, mode: str) -> None:
    limits, wire = sized_head(kind, 0)
    [head, end], _ = respond(wire, mode, eof=True, limits=limits)
    assert isinstance(head, ResponseHead)
    assert end is END
    limits, wire = sized_head(kind, 1)
    error = BadHttpMessage if kind == "count" else LineTooLong
    with pytest.raises(error):
        respond(wire, mode, eof=True, limits=limits)


# -- properties ----------------------------------------------------------------------

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(data=st.binary(max_size=600), cuts=st.lists(st.integers(0, 600), max_size=6),
       method=st.sampled_from(["GET", "HEAD", "CONNECT"]), upgrade=st.booleans())  # fmt: skip
def test_arbitrary_bytes_only_raise_protocol_errors(
    data: bytes, cuts: list[int], method: str, upgrade: bool
) -> None:
    for prefix in (b"", b"HTTP/1.1 200 OK\r\n", CHUNKED):
        feed_arbitrary(prefix + data, cuts, method, upgrade)


def feed_arbitrary(data: bytes, cuts: list[int], method: str, upgrade: bool) -> None:
    codec = ResponseCodec(max_line_size=64, max_field_size=64, max_headers=4,
                          max_header_block=256, max_informational=2)  # fmt: skip
    codec.start(method, expect_upgrade=upgrade)
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    try:
        for start, stop in itertools.pairwise(bounds):
            for event in codec.feed(data[start:stop]):
                assert isinstance(event, ResponseHead | InformationalHead | bytes) or event in (
                    END,
                    CHUNK_END,
                )
        codec.feed_eof()
    except HttpProcessingError:
        assert not codec.reusable


body_parts = st.lists(st.binary(min_size=1, max_size=40), max_size=5)


@FUZZ
@given(parts=body_parts, framing=st.sampled_from(["length", "chunked", "close"]),
       seed=st.integers(0, 2**32))  # fmt: skip
def test_any_split_gives_the_same_events(parts: list[bytes], framing: str, seed: int) -> None:
    body = b"".join(parts)
    if framing == "length":
        wire = head_with(b"Content-Length: %d" % len(body)) + body
    elif framing == "chunked":
        wire = CHUNKED + b"".join(b"%x;e=1\r\n%b\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    else:
        wire = head_with(b"X: y") + body
    expected, _ = respond(wire, eof=framing == "close")
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(len(wire) + 1), min(len(wire), rng.randint(1, 10))))
    codec = ResponseCodec()
    codec.start("GET")
    events: list[Event] = []
    for start, stop in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        events += codec.feed(wire[start:stop])
    if framing == "close":
        events += codec.feed_eof()
    assert coalesce(events) == expected
    assert expected[1:] == ([body] if body else []) + [END]


SEED_RESPONSES = [
    OK + b"Content-Length: 5\r\n\r\nhello",
    CHUNKED + b"5;a=b\r\nhello\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nbody",
    b"HTTP/1.1 101 Switching\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\nWS",
    b"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n",
]


def verdict(data: bytes, mode: str, method: str, upgrade: bool) -> tuple[object, ...]:
    limits = {"max_line_size": 24, "max_field_size": 16, "max_headers": 2, "max_header_block": 64}
    try:
        events, codec = respond(data, mode, method=method, eof=True, expect_upgrade=upgrade,
                                limits=limits)  # fmt: skip
    except HttpProcessingError:
        return ("error",)
    return (*events, codec.reusable, codec.take_trailing())


@FUZZ
@given(
    seed=st.sampled_from(SEED_RESPONSES),
    edits=st.lists(st.tuples(st.integers(0, 120), st.binary(max_size=3)), max_size=4),
    method=st.sampled_from(["GET", "HEAD", "CONNECT"]),
    upgrade=st.booleans(),
)
def test_segmentation_never_changes_the_verdict(
    seed: bytes, edits: list[tuple[int, bytes]], method: str, upgrade: bool
) -> None:
    # Differential check: the same bytes, fed whole, bytewise or split, give the
    # same events or the same failure (a fragmented-delivery bypass shows here).
    data = bytearray(seed)
    for at, insert in edits:
        data[at : at + 1] = insert
    wire = bytes(data)
    expected = verdict(wire, "whole", method, upgrade)
    for mode in MODES[1:]:
        assert verdict(wire, mode, method, upgrade) == expected


@pytest.mark.parametrize("mode", MODES)
def test_chunk_boundaries_are_reported(mode: str) -> None:
    """Each chunk's end is an event (``iter_chunks`` needs it), whatever the split."""
    wire = OK + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    codec = ResponseCodec()
    codec.start("GET")
    events: list[Event] = []
    for piece in pieces(wire, mode):
        events += codec.feed(piece)
    body_and_ends: list[object] = []
    for event in events[1:]:
        if isinstance(event, bytes) and body_and_ends and isinstance(body_and_ends[-1], bytes):
            body_and_ends[-1] += event
        else:
            body_and_ends.append(event)
    assert body_and_ends[:4] == [b"hello", CHUNK_END, b" world", CHUNK_END]
    assert body_and_ends[-1] is END
