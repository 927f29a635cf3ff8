"""ClientResponse and its ``content`` StreamReader against real bodies.

httpbin serves the ordinary cases (JSON, HTML, gzip/deflate/br, line
streams); the scripted server serves exact bytes: raw header lists, chunk
boundaries, zstd and stacked Content-Encodings, one-byte chunks.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import brotli
import pytest
import zstandard
from multidict import CIMultiDictProxy
from servers import (
    Endpoint,
    ReadRequest,
    ScriptedConnection,
    ScriptedServer,
    Send,
    SendSlowly,
    Sleep,
    Step,
    http_response,
)
from yarl import URL

import client as aiohttp

ALPHABET = b"abcdefghijklmnopqrstuvwxyz"


def alphabet(n: int) -> bytes:
    """httpbin's /range/n body."""
    return (ALPHABET * (n // 26 + 1))[:n]


def chunked(*chunks: bytes) -> bytes:
    """A chunked body with exactly these chunks."""
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


def chunked_response(body: bytes, headers: list[tuple[str, str]] | None = None) -> bytes:
    head = http_response(
        200, headers=[*(headers or []), ("Transfer-Encoding", "chunked")], content_length=False
    )
    return head + body


@asynccontextmanager
async def get(url: str, **kwargs: Any) -> AsyncIterator[aiohttp.ClientResponse]:
    """One GET on a fresh session; the response is open inside the block."""
    async with aiohttp.ClientSession() as session:
        async with session.get(url, **kwargs) as resp:
            yield resp


def serve(server: ScriptedServer, response: bytes) -> None:
    server.script([ReadRequest(), Send(response)])


# -- status line and headers ---------------------------------------------------------


async def test_status_reason_version_ok(httpbin: Endpoint) -> None:
    async with get(httpbin.url("/get")) as resp:
        assert resp.status == 200
        assert resp.reason == "OK"
        assert resp.ok is True
        assert resp.version == aiohttp.HttpVersion11
        assert resp.version == (1, 1)
        assert resp.method == "GET"
        assert resp.content_type == "application/json"
        assert resp.content_length == len(await resp.read())
    async with get(httpbin.url("/status/418")) as resp:
        assert resp.status == 418
        assert resp.ok is False
    async with get(httpbin.url("/status/399")) as resp:
        assert resp.ok is True  # aiohttp: ok means status < 400


async def test_headers_case_insensitive_multidict(scripted_server: ScriptedServer) -> None:
    serve(
        scripted_server,
        http_response(
            200,
            b"hi",
            headers=[
                ("Content-Type", "text/plain; charset=iso-8859-1"),
                ("X-Dup", "1"),
                ("x-dup", "2"),
            ],
            reason="Fine Thanks",
        ),
    )
    async with get(scripted_server.url("/")) as resp:
        assert resp.reason == "Fine Thanks"
        assert isinstance(resp.headers, CIMultiDictProxy)
        assert resp.headers["content-type"] == resp.headers["CONTENT-TYPE"]
        assert resp.headers.getall("X-DUP") == ["1", "2"]
        assert resp.charset == "iso-8859-1"
        assert resp.content_type == "text/plain"
        with pytest.raises(TypeError):
            resp.headers["X-New"] = "no"  # type: ignore[index]
        assert resp.raw_headers == (
            (b"Content-Type", b"text/plain; charset=iso-8859-1"),
            (b"X-Dup", b"1"),
            (b"x-dup", b"2"),
            (b"Content-Length", b"2"),
        )


async def test_http10_response_version(scripted_server: ScriptedServer) -> None:
    serve(scripted_server, b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nold")
    async with get(scripted_server.url("/")) as resp:
        assert resp.version == aiohttp.HttpVersion10
        assert await resp.read() == b"old"


async def test_url_real_url_history_request_info(httpbin: Endpoint) -> None:
    async with get(httpbin.url("/get?x=1#section")) as resp:
        assert resp.url == URL(httpbin.url("/get?x=1"))
        assert resp.real_url == URL(httpbin.url("/get?x=1#section"))
        assert resp.host == "127.0.0.1"
        assert resp.history == ()
        info = resp.request_info
        assert info.url == resp.url
        assert info.real_url == resp.real_url
        assert info.method == "GET"
        assert info.headers["Accept"] == "*/*"
        assert isinstance(info.headers, CIMultiDictProxy)


async def test_links(httpbin: Endpoint) -> None:
    link = '</page/2>; rel="next"; title="Next", <http://other.test/first>; rel=first'
    async with get(httpbin.url("/response-headers"), params={"Link": link}) as resp:
        links = resp.links
    assert set(links) == {"next", "first"}
    assert links["next"]["url"] == URL(httpbin.url("/page/2"))
    assert links["next"]["title"] == "Next"
    assert links["first"]["url"] == URL("http://other.test/first")


async def test_no_links_and_no_disposition(httpbin: Endpoint) -> None:
    async with get(httpbin.url("/get")) as resp:
        assert len(resp.links) == 0
        assert resp.content_disposition is None


async def test_content_disposition(httpbin: Endpoint) -> None:
    value = "attachment; filename=\"fallback.txt\"; filename*=UTF-8''na%C3%AFve.txt"
    async with get(httpbin.url("/response-headers"), params={"Content-Disposition": value}) as r:
        disposition = r.content_disposition
    assert disposition is not None
    assert disposition.type == "attachment"
    assert disposition.filename == "naïve.txt"  # RFC 6266: filename* wins
    assert disposition.parameters["filename"] == "fallback.txt"


async def test_cookies_of_response(httpbin: Endpoint) -> None:
    async with get(httpbin.url("/cookies/set?a=1&b=2"), allow_redirects=False) as resp:
        assert resp.status == 302
        assert {k: m.value for k, m in resp.cookies.items()} == {"a": "1", "b": "2"}


# -- body accessors ----------------------------------------------------------------------


async def test_read_is_cached(httpbin: Endpoint) -> None:
    async with get(httpbin.url("/range/1000")) as resp:
        body = await resp.read()
        assert body == alphabet(1000)
        assert await resp.read() is body
        assert await resp.text() == body.decode()


async def test_text_encoding_and_errors(scripted_server: ScriptedServer) -> None:
    serve(scripted_server, http_response(200, "café".encode("latin-1")))
    async with get(scripted_server.url("/")) as resp:
        with pytest.raises(UnicodeDecodeError):
            await resp.text()  # no charset: fallback is utf-8
        assert await resp.text(encoding="latin-1") == "café"
        assert await resp.text(errors="replace") == "caf\ufffd"
        assert await resp.text("ascii", "ignore") == "caf"


async def test_text_uses_declared_charset(httpbin: Endpoint) -> None:
    async with get(httpbin.url("/encoding/utf8")) as resp:
        text = await resp.text()
    assert resp.charset == "utf-8"
    assert "∮ E⋅da = Q" in text


async def test_json_and_custom_loads(httpbin: Endpoint) -> None:
    async with get(httpbin.url("/json")) as resp:
        data = await resp.json()
        assert data["slideshow"]["title"] == "Sample Slide Show"
        seen: list[str] = []

        def loads(text: str) -> Any:
            seen.append(text)
            return json.loads(text)

        assert await resp.json(loads=loads) == data
        assert len(seen) == 1
        assert json.loads(seen[0]) == data


async def test_json_content_type_check(httpbin: Endpoint) -> None:
    async with get(httpbin.url("/html")) as resp:
        with pytest.raises(aiohttp.ContentTypeError) as info:
            await resp.json()
        exc = info.value
        assert isinstance(exc, aiohttp.ClientResponseError)
        assert exc.status == 200
        assert "text/html" in exc.message
        assert exc.request_info is not None
        assert exc.request_info.url == URL(httpbin.url("/html"))
        # content_type=None skips the check (and then the HTML is not JSON).
        with pytest.raises(json.JSONDecodeError):
            await resp.json(content_type=None)


async def test_json_with_other_expected_type(scripted_server: ScriptedServer) -> None:
    body = b'{"ok": true}'
    serve(scripted_server, http_response(200, body, headers=[("Content-Type", "text/plain")]))
    async with get(scripted_server.url("/")) as resp:
        assert await resp.json(content_type="text/plain") == {"ok": True}
        assert await resp.json(content_type=None) == {"ok": True}


@pytest.mark.parametrize("body", [b"", b"  \r\n "])
async def test_json_of_empty_body_is_none(scripted_server: ScriptedServer, body: bytes) -> None:
    serve(scripted_server, http_response(200, body, headers=[("Content-Type", "application/json")]))
    async with get(scripted_server.url("/")) as resp:
        assert await resp.json() is None


async def test_json_vendor_type_accepted(scripted_server: ScriptedServer) -> None:
    body = b'{"a": 1}'
    ctype = ("Content-Type", "application/problem+json")
    serve(scripted_server, http_response(400, body, headers=[ctype]))
    async with get(scripted_server.url("/")) as resp:
        assert await resp.json() == {"a": 1}


async def test_raise_for_status_unread(httpbin: Endpoint) -> None:
    async with aiohttp.ClientSession() as session:
        resp = await session.get(httpbin.url("/status/404"))
        with pytest.raises(aiohttp.ClientResponseError) as info:
            resp.raise_for_status()
    exc = info.value
    assert exc.status == 404
    assert exc.message == resp.reason
    assert exc.headers is not None
    assert exc.headers["Content-Type"] == resp.headers["Content-Type"]
    assert exc.request_info is not None
    assert exc.request_info.url == URL(httpbin.url("/status/404"))
    assert exc.request_info.method == "GET"
    assert exc.history == ()
    assert exc.body is None  # nothing was read
    assert "404" in str(exc)


async def test_raise_for_status_body_snippet(scripted_server: ScriptedServer) -> None:
    body = b"E" * 5000
    serve(scripted_server, http_response(503, body))
    async with get(scripted_server.url("/")) as resp:
        assert await resp.read() == body
        with pytest.raises(aiohttp.ClientResponseError) as info:
            resp.raise_for_status()
    assert info.value.status == 503
    assert info.value.message == "Service Unavailable"
    assert info.value.body == body[:2048]


async def test_raise_for_status_ok_does_nothing(httpbin: Endpoint) -> None:
    async with get(httpbin.url("/status/302"), allow_redirects=False) as resp:
        resp.raise_for_status()
        assert resp.status == 302


async def test_release_reuses_drained_connection(scripted_server: ScriptedServer) -> None:
    scripted_server.script(
        [
            ReadRequest(),
            Send(http_response(200, b"one")),
            ReadRequest(),
            Send(http_response(200, b"two")),
        ]
    )
    async with aiohttp.ClientSession() as session:
        first = await session.get(scripted_server.url("/"))
        assert await first.read() == b"one"
        first.release()
        assert first.closed
        second = await session.get(scripted_server.url("/"))
        assert await second.read() == b"two"
        second.release()
    assert scripted_server.accepted == 1


async def test_release_unread_body_closes_connection(scripted_server: ScriptedServer) -> None:
    serve(scripted_server, http_response(200, b"x" * 2_000_000))
    async with aiohttp.ClientSession() as session:
        first = await session.get(scripted_server.url("/"))
        assert first.connection is not None
        first.release()
        assert first.connection is None
        connector = session.connector
        assert connector is not None
        assert connector.stats()["in_use"] == 0
        async with session.get(scripted_server.url("/")) as second:
            assert len(await second.read()) == 2_000_000
    assert scripted_server.accepted == 2


async def test_head_response_has_no_body(httpbin: Endpoint) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.head(httpbin.url("/range/100")) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Length"] == "100"
            assert await resp.read() == b""
            assert resp.content.at_eof()


# -- the content StreamReader --------------------------------------------------------------


async def test_content_read_n_and_at_eof(httpbin: Endpoint) -> None:
    async with get(httpbin.url("/range/100")) as resp:
        assert not resp.content.at_eof()
        first = await resp.content.read(10)
        assert first == alphabet(10)
        rest = await resp.content.read()
        assert first + rest == alphabet(100)
        assert resp.content.at_eof()
        assert await resp.content.read(5) == b""
        assert await resp.content.readany() == b""


async def test_content_readany(httpbin: Endpoint) -> None:
    async with get(httpbin.url("/range/70000")) as resp:
        pieces = []
        while piece := await resp.content.readany():
            pieces.append(piece)
    assert all(pieces)
    assert b"".join(pieces) == alphabet(70000)


async def test_content_readexactly(httpbin: Endpoint) -> None:
    async with get(httpbin.url("/range/30")) as resp:
        assert await resp.content.readexactly(26) == ALPHABET
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await resp.content.readexactly(10)
    assert info.value.partial == b"abcd"
    assert info.value.expected == 10


async def test_content_readline_and_async_for(httpbin: Endpoint) -> None:
    async with get(httpbin.url("/stream/3")) as resp:
        line = await resp.content.readline()
        assert line.endswith(b"\n")
        assert json.loads(line)["id"] == 0
    async with get(httpbin.url("/stream/20")) as resp:
        lines = [line async for line in resp.content]
    assert len(lines) == 20
    assert [json.loads(line)["id"] for line in lines] == list(range(20))
    assert all(line.endswith(b"\n") for line in lines)


async def test_content_readline_without_final_newline(scripted_server: ScriptedServer) -> None:
    serve(scripted_server, http_response(200, b"one\ntwo\nthree"))
    async with get(scripted_server.url("/")) as resp:
        assert [line async for line in resp.content] == [b"one\n", b"two\n", b"three"]


async def test_content_iter_chunked_sizes(httpbin: Endpoint) -> None:
    async with get(httpbin.url("/range/1000")) as resp:
        blocks = [block async for block in resp.content.iter_chunked(300)]
    assert [len(b) for b in blocks] == [300, 300, 300, 100]
    assert b"".join(blocks) == alphabet(1000)


async def test_content_iter_any(httpbin: Endpoint) -> None:
    async with get(httpbin.url("/bytes/100000?seed=7")) as resp:
        blocks = [block async for block in resp.content.iter_any()]
        assert resp.content.at_eof()
    assert all(blocks)
    assert sum(map(len, blocks)) == 100000


async def test_content_iter_chunks_yields_the_body(scripted_server: ScriptedServer) -> None:
    serve(scripted_server, chunked_response(chunked(b"ab", b"cde", b"f")))
    async with get(scripted_server.url("/")) as resp:
        pieces = [piece async for piece in resp.content.iter_chunks()]
        assert resp.content.at_eof()
    assert b"".join(data for data, _ in pieces) == b"abcdef"
    assert all(data for data, _ in pieces)


async def test_content_iter_chunks_follows_http_chunks(scripted_server: ScriptedServer) -> None:
    serve(scripted_server, chunked_response(chunked(b"ab", b"cde", b"f")))
    async with get(scripted_server.url("/")) as resp:
        pieces = [piece async for piece in resp.content.iter_chunks()]
    assert pieces == [(b"ab", True), (b"cde", True), (b"f", True)]


async def test_content_iter_chunks_partial_reads(scripted_server: ScriptedServer) -> None:
    serve(scripted_server, chunked_response(chunked(b"hello", b"world")))
    async with get(scripted_server.url("/")) as resp:
        assert await resp.content.read(2) == b"he"
        pieces = [piece async for piece in resp.content.iter_chunks()]
    assert pieces == [(b"llo", True), (b"world", True)]


async def test_second_concurrent_reader_refused(scripted_server: ScriptedServer) -> None:
    head = http_response(200, b"late")[:-4]
    scripted_server.script([ReadRequest(), Send(head), Sleep(0.1), Send(b"late")])
    async with get(scripted_server.url("/")) as resp:
        first = asyncio.ensure_future(resp.content.read(1))
        await asyncio.sleep(0.01)
        with pytest.raises(RuntimeError, match="already waiting"):
            await resp.content.read(1)
        assert await first == b"l"


# -- content codings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "flag"), [("/gzip", "gzipped"), ("/deflate", "deflated"), ("/brotli", "brotli")]
)
async def test_httpbin_codings_decoded(httpbin: Endpoint, path: str, flag: str) -> None:
    async with get(httpbin.url(path)) as resp:
        data = await resp.json()
        assert data[flag] is True
        # Compressed size on the wire, decoded size read.
        assert resp.content.total_raw_bytes == int(resp.headers["Content-Length"])
        assert resp.content.total_bytes > resp.content.total_raw_bytes


async def test_accept_encoding_seen_by_server(httpbin: Endpoint) -> None:
    async with get(httpbin.url("/headers")) as resp:
        headers = (await resp.json())["headers"]
    assert headers["Accept-Encoding"] == "gzip, deflate, br, zstd"


PLAIN = b"stacked codings work " * 40


def _encode(coding: str, data: bytes) -> bytes:
    if coding == "gzip":
        return gzip.compress(data)
    if coding == "deflate":
        return zlib.compress(data)
    if coding == "br":
        return bytes(brotli.compress(data))
    if coding == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    assert coding == "identity"
    return data


CODINGS = ["zstd", "gzip, br", "gzip, identity", "deflate, zstd", "br, gzip, deflate"]


def _encoded(header: str) -> bytes:
    body = PLAIN
    for coding in header.split(", "):  # applied in the order listed (RFC 9110 §8.4)
        body = _encode(coding, body)
    return body


@pytest.mark.parametrize("header", CODINGS)
async def test_stacked_codings_decoded(scripted_server: ScriptedServer, header: str) -> None:
    body = _encoded(header)
    serve(scripted_server, http_response(200, body, headers=[("Content-Encoding", header)]))
    async with get(scripted_server.url("/")) as resp:
        assert await resp.read() == PLAIN
        assert resp.content.total_raw_bytes == len(body)


@pytest.mark.parametrize("header", CODINGS)
async def test_codings_with_one_byte_chunks(scripted_server: ScriptedServer, header: str) -> None:
    body = _encoded(header)
    head = http_response(
        200,
        headers=[("Content-Encoding", header), ("Transfer-Encoding", "chunked")],
        content_length=False,
    )
    one_byte_chunks = chunked(*(body[i : i + 1] for i in range(len(body))))
    # Each 1-byte chunk frame ("1\r\nX\r\n") in its own write.
    script: list[Step] = [ReadRequest(), Send(head), SendSlowly(one_byte_chunks, 6, 0.0005)]
    scripted_server.script(script)
    async with get(scripted_server.url("/")) as resp:
        pieces = [piece async for piece in resp.content.iter_any()]
    assert b"".join(pieces) == PLAIN


async def test_auto_decompress_off_per_request(scripted_server: ScriptedServer) -> None:
    body = _encoded("gzip, br")
    serve(scripted_server, http_response(200, body, headers=[("Content-Encoding", "gzip, br")]))
    async with get(scripted_server.url("/"), auto_decompress=False) as resp:
        assert await resp.read() == body


async def test_corrupt_coding_is_payload_error(scripted_server: ScriptedServer) -> None:
    serve(scripted_server, http_response(200, b"not gzip", headers=[("Content-Encoding", "gzip")]))
    async with get(scripted_server.url("/")) as resp:
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()


async def test_read_after_early_release_raises(scripted_server: ScriptedServer) -> None:
    """release() before the body arrived: a later read fails fast, never hangs."""
    async def handler(conn: ScriptedConnection) -> None:
        await conn.read_request()
        await conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        await conn.hang()
    scripted_server.serve(handler)
    async with aiohttp.ClientSession() as session:
        resp = await session.get(scripted_server.url("/"))
        resp.release()
        with pytest.raises(aiohttp.ClientConnectionError):
            await asyncio.wait_for(resp.read(), 5)
        assert isinstance(session.connector, aiohttp.BaseConnector)
        assert session.connector.stats()["in_use"] == 0


async def test_session_fallback_charset_resolver(scripted_server: ScriptedServer) -> None:
    """A body without a charset is decoded with the session's resolver (latin-1 here)."""
    serve(
        scripted_server,
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 4\r\n\r\ncaf\xe9",
    )
    seen: list[bytes] = []

    def resolver(resp: aiohttp.ClientResponse, body: bytes) -> str:
        seen.append(body)
        return "latin-1"

    async with aiohttp.ClientSession(fallback_charset_resolver=resolver) as session:
        async with session.get(scripted_server.url("/")) as resp:
            assert await resp.text() == "café"
    assert seen == [b"caf\xe9"]
