"""The hot-path shortcuts of issue 6 keep the generic path's behaviour.

``Deadline`` must act as ``asyncio.timeout_at`` (cancel bookkeeping included);
the copy-on-write request headers must never leak into the session's
defaults; the synchronous pooled checkout and head write must leave the pool
exactly as ``connect`` would; the lazily loaded names must be the real ones.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict
from servers import Endpoint
from yarl import URL

import client
from client import serialize
from client.connection import Connection, ConnectionKey
from client.deadline import Deadline
from client.exceptions import HttpProcessingError
from client.exchange import ReadSettings
from client.http1 import ResponseCodec
from client.http1_events import InformationalHead, ResponseHead
from client.request import ClientRequest

# -- Deadline: the asyncio.timeout_at protocol -------------------------------------------


async def _guarded(when_delta: float | None, work: float) -> str:
    loop = asyncio.get_running_loop()
    guard = Deadline(loop, None if when_delta is None else loop.time() + when_delta)
    try:
        await asyncio.sleep(work)
    except BaseException as exc:
        guard.exit(exc)
        raise
    guard.exit(None)
    return "done"


async def test_deadline_turns_its_own_cancel_into_timeout_error() -> None:
    task = asyncio.current_task()
    assert task is not None
    with pytest.raises(TimeoutError) as info:
        await _guarded(0.01, 5)
    assert isinstance(info.value.__cause__, asyncio.CancelledError)
    assert task.cancelling() == 0  # the cancel request it made was taken back


async def test_deadline_in_the_past_fires_at_the_next_iteration() -> None:
    with pytest.raises(TimeoutError):
        await _guarded(-1, 5)


async def test_deadline_none_or_far_never_fires() -> None:
    assert await _guarded(None, 0.01) == "done"
    assert await _guarded(60, 0.01) == "done"


async def test_deadline_leaves_no_live_timer() -> None:
    loop = asyncio.get_running_loop()
    guard = Deadline(loop, loop.time() + 60)
    handle = guard._handle
    assert handle is not None
    assert not handle.cancelled()
    guard.exit(None)
    assert handle.cancelled()
    assert not guard.expired()


async def test_outside_cancel_wins_over_an_expired_deadline() -> None:
    """As asyncio.Timeout: a pending outside cancel keeps CancelledError."""

    async def body() -> None:
        loop = asyncio.get_running_loop()
        guard = Deadline(loop, loop.time() + 0.01)
        try:
            await asyncio.sleep(0.05)  # the deadline cancels us here
        except BaseException as exc:
            this = asyncio.current_task()
            assert this is not None
            this.cancel()  # ...and someone else asks too
            guard.exit(exc)
            raise

    task = asyncio.ensure_future(body())
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_deadline_matches_asyncio_timeout_at_on_the_same_scenarios() -> None:
    async def with_asyncio(delta: float, work: float) -> str:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout_at(loop.time() + delta):
            await asyncio.sleep(work)
        return "done"

    for delta, work in ((0.01, 1), (1, 0.001), (-1, 1)):
        outcomes = []
        for run in (with_asyncio, _guarded):
            try:
                outcomes.append(await run(delta, work))
            except TimeoutError:
                outcomes.append("timeout")
        assert outcomes[0] == outcomes[1], (delta, work, outcomes)


def test_deadline_needs_a_task() -> None:
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(RuntimeError, match="inside a task"):
            Deadline(loop, None)
    finally:
        loop.close()


# -- the session's hot path --------------------------------------------------------------


async def test_plain_get_does_not_touch_the_session_default_headers(httpbin: Endpoint) -> None:
    async with client.ClientSession(headers={"X-Default": "1"}) as session:
        before = list(session.headers.items())
        async with session.get(httpbin.url("/redirect-to?url=/headers")) as resp:
            seen = (await resp.json())["headers"]
        assert seen["X-Default"] == "1"
        assert "Host" in seen
        assert list(session.headers.items()) == before  # no Host/Accept/... added


async def test_cross_origin_redirect_strips_credentials_without_editing_defaults(
    httpbin: Endpoint,
) -> None:
    """The redirect edits its own copy of the (shared) default headers."""
    other = httpbin.url("/headers").replace("127.0.0.1", "localhost")
    async with client.ClientSession(headers={"Authorization": "Bearer s3cret"}) as session:
        url = httpbin.url("/redirect-to")
        async with session.get(url, params={"url": other}) as resp:
            seen = (await resp.json())["headers"]
        assert "Authorization" not in seen
        assert session.headers["Authorization"] == "Bearer s3cret"
        async with session.get(httpbin.url("/headers")) as resp:
            assert (await resp.json())["headers"]["Authorization"] == "Bearer s3cret"


async def test_pooled_checkout_reuses_and_counts_like_connect(httpbin: Endpoint) -> None:
    connector = client.TCPConnector(limit=4)
    seen = []
    async with client.ClientSession(connector=connector) as session:
        for _ in range(3):
            async with session.get(httpbin.url("/get")) as resp:
                assert resp.status == 200
                await resp.read()
            assert connector.stats() == {"in_use": 0, "idle": 1, "waiting": 0}
            (stack,) = connector._idle.values()
            seen.append((stack[0], stack[0].requests))
    assert [conn for conn, _ in seen] == [seen[0][0]] * 3  # one socket, checked out 3 times
    assert [count for _, count in seen] == [1, 2, 3]
    assert connector.closed


async def test_closed_connector_refuses_the_direct_checkout(httpbin: Endpoint) -> None:
    connector = client.TCPConnector()
    session = client.ClientSession(connector=connector, connector_owner=False)
    async with session.get(httpbin.url("/get")) as resp:
        await resp.read()
    await connector.close()
    with pytest.raises(RuntimeError):
        await session.get(httpbin.url("/get"))
    await session.close()


async def test_total_timeout_still_raises_total_timeout_error(httpbin: Endpoint) -> None:
    async with client.ClientSession() as session:
        with pytest.raises(client.TotalTimeoutError):
            await session.get(httpbin.url("/delay/2"), timeout=client.ClientTimeout(total=0.2))
        async with session.get(httpbin.url("/get")) as resp:  # the session still works
            assert resp.status == 200


async def test_custom_connect_is_still_called(httpbin: Endpoint) -> None:
    calls: list[ConnectionKey] = []

    class Counting(client.TCPConnector):
        async def connect(
            self, key: ConnectionKey, timeout: client.ClientTimeout, traces: Any = None
        ) -> Connection:
            calls.append(key)
            return await super().connect(key, timeout, traces)

    async with client.ClientSession(connector=Counting()) as session:
        for _ in range(2):
            async with session.get(httpbin.url("/get")) as resp:
                await resp.read()
    assert len(calls) == 2


# -- records and lazy names ----------------------------------------------------------------


def test_event_records_compare_and_print_by_value() -> None:
    headers: CIMultiDict[str] = CIMultiDict(a="1")
    one = ResponseHead(200, "OK", (1, 1), headers, ((b"a", b"1"),), True, False, False, 0)
    two = ResponseHead(200, "OK", (1, 1), headers, ((b"a", b"1"),), True, False, False, 0)
    assert one == two
    assert one != InformationalHead(200, headers)
    assert repr(one).startswith("ResponseHead(status=200, reason='OK', version=(1, 1),")
    assert ReadSettings(1, True, (1, 2, 3)) == ReadSettings(1, True, (1, 2, 3), upgrade=False)
    assert ReadSettings(1, True, (1, 2, 3)) != ReadSettings(1, True, (1, 2, 3), upgrade=True)
    with pytest.raises(TypeError):
        hash(one)


def test_lazy_names_are_the_real_objects() -> None:
    from client import trace_params, ws_models

    assert client.TraceRequestStartParams is trace_params.TraceRequestStartParams
    assert client.tracing.TraceDnsCacheHitParams is trace_params.TraceDnsCacheHitParams
    assert dataclasses.is_dataclass(client.TraceRequestEndParams)
    assert client.WSMsgType is ws_models.WSMsgType
    assert client.ClientWSTimeout is ws_models.ClientWSTimeout
    assert set(client.__all__) <= set(dir(client)) | set(client._LAZY)
    for name in client.__all__:
        assert getattr(client, name) is not None
    with pytest.raises(AttributeError):
        client.NoSuchThing  # noqa: B018


def test_import_client_loads_no_optional_modules() -> None:
    code = (
        "import sys, client; "
        "print(' '.join(m for m in ('client.trace_params', 'client.ws_models', 'calendar', "
        "'uuid', 'netrc', 'mimetypes', 'hashlib', 'publicsuffixlist', 'brotli', 'zstandard', "
        "'http.cookies', 'client.cookiejar', 'client.formdata', 'client.multipart') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_star_import_still_exports_everything() -> None:
    namespace: dict[str, object] = {}
    exec("from client import *", namespace)
    missing = [name for name in client.__all__ if name not in namespace]
    assert missing == []
    assert importlib.import_module("client").TraceConfig is namespace["TraceConfig"]


# -- response heads: the ASCII decoding shortcut -------------------------------------------

_VALUE_CHARS = st.sampled_from(
    [b"a", b"Z", b"0", b" ", b"\t", b",", b":", b'"', b"\xc3\xa9", b"\xff"]
)


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.lists(_VALUE_CHARS, max_size=6).map(b"".join), min_size=1, max_size=5),
    reason=st.sampled_from([b"OK", b"OK ", b"", b"D\xc3\xa9j\xc3\xa0"]),
)
def test_whole_head_decodes_like_a_head_in_pieces(values: list[bytes], reason: bytes) -> None:
    """One feed takes the shortcut when it can; byte-by-byte feeds never do."""
    fields = b"".join(b"X-F%d: %s\r\n" % (i, v) for i, v in enumerate(values))
    head = b"HTTP/1.1 200 " + reason + b"\r\n" + fields + b"Content-Length: 0\r\n\r\n"
    whole, pieces = ResponseCodec(), ResponseCodec()
    whole.start("GET")
    pieces.start("GET")
    try:
        events = whole.feed(head)
    except HttpProcessingError:
        with pytest.raises(HttpProcessingError):  # llhttp judged both the same way
            _feed_bytewise(pieces, head)
        return
    split = _feed_bytewise(pieces, head)
    first, second = events[0], split[0]
    assert isinstance(first, ResponseHead)
    assert isinstance(second, ResponseHead)
    assert list(first.headers.items()) == list(second.headers.items())
    assert first.raw_headers == second.raw_headers
    assert first.reason == second.reason
    expected = [v.decode("utf-8", "surrogateescape").strip(" \t") for v in values]
    assert [first.headers[f"X-F{i}"] for i in range(len(values))] == expected


def _feed_bytewise(codec: ResponseCodec, data: bytes) -> list[object]:
    events: list[object] = []
    for i in range(len(data)):
        events += codec.feed(data[i : i + 1])
    return events


# -- request heads: the validated-block cache ----------------------------------------------


def test_head_block_cache_never_keeps_credentials_or_user_headers() -> None:
    serialize._BLOCKS.clear()
    req = ClientRequest("GET", URL("http://a.example:8080/x?y=1"), headers=CIMultiDict())
    first = req.encode_head()
    assert first.startswith(b"GET /x?y=1 HTTP/1.1\r\nHost: a.example:8080\r\n")
    assert len(serialize._BLOCKS) == 1
    assert req.encode_head() == first
    req.headers["Authorization"] = "Bearer s3cret"  # added after construction
    assert b"Authorization: Bearer s3cret\r\n" in req.encode_head()
    given = ClientRequest("GET", URL("http://a.example/"), headers=CIMultiDict({"X-Key": "k"}))
    assert b"X-Key: k\r\n" in given.encode_head()
    cached = [value for fields in serialize._BLOCKS for _, value in fields]
    assert "Bearer s3cret" not in cached
    assert "k" not in cached


def test_cached_and_uncached_heads_are_the_same_bytes_and_checks() -> None:
    fields = [("Host", "a"), ("Accept", "*/*"), ("X-É", "é")]
    for cacheable in (False, True, True):
        with pytest.raises(ValueError, match="X-É"):
            serialize.encode_request_head("GET", "/", (1, 1), fields, cacheable=cacheable)
    fields = [("Host", "a"), ("Accept", "*/*"), ("X-Name", "é")]
    heads = {
        serialize.encode_request_head("GET", "/p", (1, 0), fields, cacheable=cacheable)
        for cacheable in (False, True, True)
    }
    assert heads == {"GET /p HTTP/1.0\r\nHost: a\r\nAccept: */*\r\nX-Name: é\r\n\r\n".encode()}
    with pytest.raises(ValueError, match="forbidden"):
        serialize.encode_request_head("GET", "/", (1, 1), [("A", "x\r\ny")], cacheable=True)


# -- 2026-11-21 (second pass): inlined codec, request, stream and pool steps ---------------

_FIELD_LINES = st.sampled_from(
    [
        b"Connection: close",
        b"Connection: keep-alive",
        b"Connection: Keep-Alive, Upgrade",
        b"connection: upgrade",
        b"Content-Length: 3",
        b"Content-Length: 0",
        b"Content-Length: +3",
        b"Transfer-Encoding: chunked",
        b"Upgrade: websocket",
        b"X-A: v \t",
        b"X-B:\tx:y",
        b"X B: bad",
        b"X-C: a\x01b",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    version=st.sampled_from([b"1.1", b"1.0"]),
    status=st.sampled_from([b"200", b"204", b"304", b"101", b"100", b"404"]),
    method=st.sampled_from(["GET", "HEAD", "CONNECT"]),
    lines=st.lists(_FIELD_LINES, max_size=4),
)
def test_whole_and_pieced_heads_reach_the_same_verdicts(
    version: bytes, status: bytes, method: str, lines: list[bytes]
) -> None:
    """The inlined whole-head path: same errors, heads, framing and keep-alive."""
    head = b"HTTP/" + version + b" " + status + b" X\r\n" + b"".join(f + b"\r\n" for f in lines)
    data = head + b"\r\nabc"
    whole, pieces = ResponseCodec(), ResponseCodec()
    results: list[tuple[object, object, bool]] = []
    for codec, feed in ((whole, ResponseCodec.feed), (pieces, _feed_bytewise)):
        codec.start(method, expect_upgrade=status == b"101")
        try:
            results.append((feed(codec, data), codec.phase, codec.reusable))
        except HttpProcessingError as exc:
            results.append((type(exc), codec.phase, codec.reusable))
    (events, *state), (split, *split_state) = results
    assert state == split_state
    if isinstance(events, type):
        assert events is split
        return
    assert isinstance(events, list)
    assert isinstance(split, list)
    heads = [e for e in events if isinstance(e, ResponseHead | InformationalHead)]
    assert heads == [e for e in split if isinstance(e, ResponseHead | InformationalHead)]
    assert b"".join(e for e in events if type(e) is bytes) == b"".join(
        e for e in split if type(e) is bytes
    )


def test_one_codec_keeps_each_heads_own_raw_fields() -> None:
    """The field list is reused between heads; each head keeps its own snapshot."""
    codec = ResponseCodec()
    codec.start("GET")
    first = codec.feed(b"HTTP/1.1 100 Continue\r\nX-Info: 1\r\n\r\n")
    assert isinstance(first[0], InformationalHead)
    events = codec.feed(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n"
        b"1\r\na\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    head = events[0]
    assert isinstance(head, ResponseHead)
    assert head.raw_headers == ((b"Transfer-Encoding", b"chunked"), (b"X-A", b"1"))
    codec.start("GET")
    second = codec.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-B: 2\r\n\r\n")[0]
    assert isinstance(second, ResponseHead)
    assert second.raw_headers == ((b"Content-Length", b"0"), (b"X-B", b"2"))
    assert head.raw_headers == ((b"Transfer-Encoding", b"chunked"), (b"X-A", b"1"))
    assert codec.reusable


def test_non_ascii_reason_still_decodes_with_surrogateescape() -> None:
    codec = ResponseCodec()
    codec.start("GET")
    head = codec.feed(b"HTTP/1.1 200 \xffK\r\nContent-Length: 0\r\n\r\n")[0]
    assert isinstance(head, ResponseHead)
    assert head.reason == "\udcffK"


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_plain_request_shortcuts_match_the_general_path(method: str) -> None:
    """No user header: framing, key and request_info as the general steps build them."""
    url = URL("http://a.example:8080/p?q=1#frag")
    plain = ClientRequest(method, url, headers=CIMultiDict())
    # A skipped header nobody sends forces the general (non-fresh) path.
    general = ClientRequest(
        method, url, headers=CIMultiDict(), skip_auto_headers=frozenset({"x-none"})
    )
    assert list(plain.headers.items()) == list(general.headers.items())
    assert plain.chunked is general.chunked is False
    assert ("Content-Length" in plain.headers) is (method in ("POST", "PUT", "PATCH", "DELETE"))
    key = plain.connection_key()
    expected = ConnectionKey("a.example", 8080, False, True, None, None, None, None, None)
    assert type(key) is ConnectionKey
    assert key == expected
    assert hash(key) == hash(expected)
    assert key.connect_headers is None
    assert key.server_hostname is None
    info = plain.request_info
    assert type(info) is client.RequestInfo
    assert info == client.RequestInfo(url.with_fragment(None), method, info.headers, url)
    assert info.real_url is url
    assert info.method == method


async def test_complete_single_block_read_is_the_general_read() -> None:
    """read() of one buffered block: the shortcut, or _take when a hook must run."""
    loop = asyncio.get_running_loop()
    calls: list[str] = []
    for on_read in (None, lambda: calls.append("read")):
        stream = client.StreamReader(loop=loop, on_read=on_read)
        stream.feed_data(b"body")
        stream.feed_eof()
        assert await stream.read() == b"body"
        assert stream.at_eof()
        assert stream.total_bytes == 4
        stream.unread_data(b"dy")
        assert await stream.read() == b"dy"
    assert calls == ["read", "read"]


async def test_release_wakes_a_queued_request(httpbin: Endpoint) -> None:
    """The pool skips the waiter scan only when nobody waits."""
    connector = client.TCPConnector(limit=1)
    async with client.ClientSession(connector=connector) as session:

        async def get() -> int:
            async with session.get(httpbin.url("/bytes/10")) as resp:
                await resp.read()
                return resp.status

        statuses = await asyncio.wait_for(asyncio.gather(get(), get(), get()), 10)
        assert list(statuses) == [200] * 3
        assert len(connector._idle) == 1
