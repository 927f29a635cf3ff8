"""Request bodies end to end: what httpbin decoded and what went over the wire.

Waitress de-chunks uploads before httpbin sees them, so framing (chunked vs
Content-Length, chunk sizes, compression) is checked on the raw bytes the
scripted server recorded.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict
from servers import (
    Endpoint,
    ReadRequest,
    ScriptedConnection,
    ScriptedServer,
    Send,
    http_response,
    parse_wire,
)

import client as aiohttp


def dechunk(body: bytes) -> list[bytes]:
    """The chunks of a chunked body; asserts the framing is exact (RFC 9112 §7.1)."""
    chunks: list[bytes] = []
    while True:
        size_line, sep, body = body.partition(b"\r\n")
        assert sep, "chunk size line must end with CRLF"
        size = int(size_line, 16)
        if size == 0:
            assert body == b"\r\n", "last-chunk, no trailers, final CRLF"
            return chunks
        assert size_line == b"%x" % size, "no extensions, no padding"
        chunks.append(body[:size])
        assert body[size : size + 2] == b"\r\n"
        body = body[size + 2 :]


async def post_to(server: ScriptedServer, **kwargs: Any) -> tuple[CIMultiDict[str], bytes]:
    """POST to the scripted server; return the headers and raw body it received."""
    async with aiohttp.ClientSession() as session:
        async with session.post(server.url("/up"), **kwargs) as resp:
            assert resp.status == 200
            await resp.read()
    _, headers, body = parse_wire(server.requests[-1])
    return headers, body


async def echo(httpbin: Endpoint, method: str = "POST", **kwargs: Any) -> dict[str, Any]:
    """Send to httpbin's /anything and return what it saw."""
    async with aiohttp.ClientSession() as session:
        async with session.request(method, httpbin.url("/anything"), **kwargs) as resp:
            assert resp.status == 200
            result: dict[str, Any] = await resp.json()
    return result


async def agen(*chunks: bytes, delay: float = 0) -> AsyncIterator[bytes]:
    for chunk in chunks:
        if delay:
            await asyncio.sleep(delay)
        yield chunk


# -- simple bodies --------------------------------------------------------------------


async def test_bytes_body(httpbin: Endpoint, scripted_server: ScriptedServer) -> None:
    seen = await echo(httpbin, data=b"\x00\x01binary")
    assert seen["headers"]["Content-Type"] == "application/octet-stream"
    assert seen["headers"]["Content-Length"] == "8"
    headers, body = await post_to(scripted_server, data=bytearray(b"\x00\x01binary"))
    assert body == b"\x00\x01binary"
    assert headers["Content-Length"] == "8"
    assert "Transfer-Encoding" not in headers


async def test_str_body(httpbin: Endpoint) -> None:
    seen = await echo(httpbin, data="héllo wörld")
    assert seen["data"] == "héllo wörld"
    assert seen["headers"]["Content-Type"] == "text/plain; charset=utf-8"
    assert seen["headers"]["Content-Length"] == str(len("héllo wörld".encode()))


async def test_dict_is_urlencoded(httpbin: Endpoint) -> None:
    seen = await echo(httpbin, data={"a": "1", "b": "x y&z", "c": "é"})
    assert seen["form"] == {"a": "1", "b": "x y&z", "c": "é"}
    assert seen["headers"]["Content-Type"] == "application/x-www-form-urlencoded"


async def test_list_of_pairs_is_urlencoded_with_repeats(httpbin: Endpoint) -> None:
    seen = await echo(httpbin, data=[("k", "1"), ("k", "2")])
    assert seen["form"] == {"k": ["1", "2"]}


async def test_json_body(httpbin: Endpoint) -> None:
    payload = {"a": [1, 2, {"b": None}], "s": "é"}
    seen = await echo(httpbin, json=payload)
    assert seen["json"] == payload
    assert seen["headers"]["Content-Type"] == "application/json"


async def test_json_with_custom_session_serializer(scripted_server: ScriptedServer) -> None:
    def dumps(obj: Any) -> str:
        return json.dumps(obj, separators=(",", ":"))

    async with aiohttp.ClientSession(json_serialize=dumps) as session:
        async with session.put(scripted_server.url("/"), json={"x": [1, 2]}) as resp:
            await resp.read()
    line, headers, body = parse_wire(scripted_server.requests[0])
    assert line.startswith("PUT ")
    assert body == b'{"x":[1,2]}'
    assert headers["Content-Length"] == str(len(body))


async def test_json_none_sends_no_body(scripted_server: ScriptedServer) -> None:
    headers, body = await post_to(scripted_server, json=None)
    assert body == b""
    assert headers["Content-Length"] == "0"


async def test_data_and_json_together_refused(scripted_server: ScriptedServer) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ValueError, match="data and json"):
            await session.post(scripted_server.url("/"), data=b"x", json={"a": 1})
    assert scripted_server.accepted == 0


async def test_unsupported_body_type_refused(scripted_server: ScriptedServer) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(TypeError):
            await session.post(scripted_server.url("/"), data=object())
    assert scripted_server.accepted == 0


# -- files and forms --------------------------------------------------------------------


async def test_file_object_streamed_with_length(
    tmp_path: Path, httpbin: Endpoint, scripted_server: ScriptedServer
) -> None:
    content = bytes(range(256)) * 2048  # 512 KiB: several executor reads
    path = tmp_path / "blob.bin"
    path.write_bytes(content)
    with path.open("rb") as fh:
        headers, body = await post_to(scripted_server, data=fh)
        assert fh.closed  # closed once sent, as aiohttp does
    assert body == content
    assert headers["Content-Length"] == str(len(content))
    assert "Transfer-Encoding" not in headers
    with path.open("rb") as fh:
        seen = await echo(httpbin, data=fh)
    assert seen["headers"]["Content-Length"] == str(len(content))


async def test_text_file_sent_chunked(tmp_path: Path, scripted_server: ScriptedServer) -> None:
    path = tmp_path / "t.txt"
    path.write_text("line é\n" * 10, encoding="utf-8")
    with path.open(encoding="utf-8") as fh:
        headers, body = await post_to(scripted_server, data=fh)
    assert headers["Transfer-Encoding"] == "chunked"
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert b"".join(dechunk(body)) == ("line é\n" * 10).encode()


async def test_bytesio_and_stringio_have_length(scripted_server: ScriptedServer) -> None:
    headers, body = await post_to(scripted_server, data=io.BytesIO(b"abc"))
    assert (headers["Content-Length"], body) == ("3", b"abc")
    headers, body = await post_to(scripted_server, data=io.StringIO("é"))
    assert (headers["Content-Length"], body) == ("2", "é".encode())


async def test_dict_with_file_is_multipart(tmp_path: Path, httpbin: Endpoint) -> None:
    path = tmp_path / "report.csv"
    path.write_text("a,b\n1,2\n")
    with path.open("rb") as fh:
        seen = await echo(httpbin, data={"field": "value", "upload": fh})
    assert seen["form"] == {"field": "value"}
    assert seen["files"] == {"upload": "a,b\n1,2\n"}
    assert seen["headers"]["Content-Type"].startswith("multipart/form-data; boundary=")


async def test_formdata_filename_and_content_type(
    httpbin: Endpoint, scripted_server: ScriptedServer
) -> None:
    def form() -> aiohttp.FormData:
        data = aiohttp.FormData()
        data.add_field("name", "x")
        data.add_field("pic", b"\x89PNG..", filename="a.png", content_type="image/png")
        data.add_field("doc", io.BytesIO(b"text"), filename="d.txt")
        return data

    seen = await echo(httpbin, data=form())
    assert seen["form"] == {"name": "x"}
    assert set(seen["files"]) == {"pic", "doc"}
    assert seen["files"]["doc"] == "text"

    headers, body = await post_to(scripted_server, data=form())
    boundary = headers["Content-Type"].split("boundary=", 1)[1].strip('"')
    parts = body.split(b"--" + boundary.encode())
    assert parts[-1] == b"--\r\n"
    pic = next(part for part in parts if b'name="pic"' in part)
    assert b'filename="a.png"' in pic
    assert b"Content-Type: image/png\r\n" in pic
    assert pic.endswith(b"\r\n\r\n\x89PNG..\r\n")
    assert headers["Content-Length"] == str(len(body))


async def test_formdata_urlencoded_without_files(httpbin: Endpoint) -> None:
    form = aiohttp.FormData({"a": "1"})
    form.add_field("b", "2")
    seen = await echo(httpbin, data=form)
    assert seen["form"] == {"a": "1", "b": "2"}
    assert seen["headers"]["Content-Type"] == "application/x-www-form-urlencoded"


# -- streamed bodies and framing ----------------------------------------------------------


async def test_async_generator_sent_chunked(
    httpbin: Endpoint, scripted_server: ScriptedServer
) -> None:
    headers, body = await post_to(scripted_server, data=agen(b"abc", b"", b"defgh", b"i" * 300))
    assert headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in headers
    assert headers["Content-Type"] == "application/octet-stream"
    # One chunk per yielded piece; the empty piece is skipped (it would end the body).
    assert dechunk(body) == [b"abc", b"defgh", b"i" * 300]
    assert body.startswith(b"3\r\nabc\r\n5\r\ndefgh\r\n12c\r\n")
    seen = await echo(httpbin, data=agen(b"x" * 10, b"y" * 5, delay=0.01))
    assert seen["data"] == "x" * 10 + "y" * 5


async def test_response_content_proxied_as_upload(
    httpbin: Endpoint, scripted_server: ScriptedServer
) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(httpbin.url("/range/50000")) as download:
            assert download.status == 200
            async with session.post(scripted_server.url("/up"), data=download.content) as up:
                assert up.status == 200
        async with session.get(httpbin.url("/range/3000")) as download:
            async with session.put(httpbin.url("/anything"), data=download.content) as up:
                seen = await up.json()
    alphabet = b"abcdefghijklmnopqrstuvwxyz"
    expected = (alphabet * (50000 // 26 + 1))[:50000]
    _, headers, body = parse_wire(scripted_server.requests[0])
    assert headers["Transfer-Encoding"] == "chunked"
    assert b"".join(dechunk(body)) == expected
    assert seen["data"] == (alphabet * 200)[:3000].decode()


@pytest.mark.parametrize(
    ("compress", "coding"), [("gzip", "gzip"), ("deflate", "deflate"), (True, "deflate")]
)
async def test_compress(
    httpbin: Endpoint, scripted_server: ScriptedServer, compress: str | bool, coding: str
) -> None:
    original = b"compress me please " * 500
    headers, body = await post_to(scripted_server, data=original, compress=compress)
    assert headers["Content-Encoding"] == coding
    assert headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in headers
    raw = b"".join(dechunk(body))
    assert len(raw) < len(original) // 10
    decoded = gzip.decompress(raw) if coding == "gzip" else zlib.decompress(raw)
    assert decoded == original
    seen = await echo(httpbin, data=original, compress=compress)
    assert seen["headers"]["Content-Encoding"] == coding


@pytest.mark.parametrize("compress", ["br", "zstd", "identity"])
async def test_compress_other_codings_refused(
    scripted_server: ScriptedServer, compress: str
) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ValueError, match="compress"):
            await session.post(scripted_server.url("/"), data=b"x", compress=compress)
    assert scripted_server.accepted == 0


async def test_compress_with_content_encoding_header_refused(
    scripted_server: ScriptedServer,
) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ValueError, match="Content-Encoding"):
            await session.post(
                scripted_server.url("/"),
                data=b"x",
                compress="gzip",
                headers={"Content-Encoding": "gzip"},
            )
    assert scripted_server.accepted == 0


async def test_chunked_true_with_bytes(scripted_server: ScriptedServer) -> None:
    headers, body = await post_to(scripted_server, data=b"hello", chunked=True)
    assert headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in headers
    assert body == b"5\r\nhello\r\n0\r\n\r\n"


async def test_chunked_with_content_length_header_refused(
    scripted_server: ScriptedServer,
) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ValueError, match="chunked"):
            await session.post(
                scripted_server.url("/"), data=b"x", chunked=True, headers={"Content-Length": "1"}
            )
    assert scripted_server.accepted == 0


async def test_explicit_transfer_encoding_header_frames_body(
    scripted_server: ScriptedServer,
) -> None:
    headers, body = await post_to(
        scripted_server, data=b"abc", headers={"Transfer-Encoding": "chunked"}
    )
    assert headers.getall("Transfer-Encoding") == ["chunked"]
    assert "Content-Length" not in headers
    assert dechunk(body) == [b"abc"]


@pytest.mark.parametrize(
    ("make_body", "framing"),
    [
        (lambda: b"12345", "length"),
        (lambda: "text", "length"),
        (lambda: {"a": "1"}, "length"),
        (lambda: io.BytesIO(b"12345"), "length"),
        (lambda: agen(b"1"), "chunked"),
        (lambda: aiohttp.FormData({"f": io.BytesIO(b"x")}), "length"),
    ],
)
async def test_content_length_or_chunked(
    scripted_server: ScriptedServer, make_body: Any, framing: str
) -> None:
    headers, body = await post_to(scripted_server, data=make_body())
    if framing == "length":
        assert headers["Content-Length"] == str(len(body))
        assert "Transfer-Encoding" not in headers
    else:
        assert headers["Transfer-Encoding"] == "chunked"
        assert "Content-Length" not in headers
        dechunk(body)


async def test_explicit_content_length_header_is_kept(scripted_server: ScriptedServer) -> None:
    headers, body = await post_to(scripted_server, data=b"abc", headers={"Content-Length": "3"})
    assert headers.getall("Content-Length") == ["3"]
    assert body == b"abc"


# -- Expect: 100-continue -------------------------------------------------------------------


async def test_expect100_against_httpbin(httpbin: Endpoint) -> None:
    seen = await echo(httpbin, data=b"payload", expect100=True)
    assert seen["headers"]["Expect"] == "100-continue"
    assert seen["data"] == "payload"


async def _continue_then_answer(conn: ScriptedConnection) -> None:
    head = await conn.reader.readuntil(b"\r\n\r\n")
    assert b"Expect: 100-continue" in head
    # Nothing of the body may arrive before the interim answer.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(conn.reader.readexactly(1), 0.05)
    await conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
    body = await conn.reader.readexactly(7)
    conn.requests.append(head + body)
    await conn.send(http_response(200, body))


async def test_expect100_waits_for_continue(scripted_server: ScriptedServer) -> None:
    scripted_server.serve(_continue_then_answer)
    async with aiohttp.ClientSession() as session:
        async with session.post(scripted_server.url("/"), data=b"payload", expect100=True) as r:
            assert r.status == 200
            assert await r.read() == b"payload"


async def _refuse_expectation(conn: ScriptedConnection) -> None:
    head = await conn.reader.readuntil(b"\r\n\r\n")
    conn.requests.append(head)
    await conn.send(http_response(417, b"no"))
    # The client must not send the body; it closes the connection instead.
    conn.requests.append(await asyncio.wait_for(conn.reader.read(), 2))


async def test_expect100_refused_body_not_sent(scripted_server: ScriptedServer) -> None:
    scripted_server.serve(_refuse_expectation)
    async with aiohttp.ClientSession() as session:
        async with session.post(scripted_server.url("/"), data=b"x" * 1000, expect100=True) as r:
            assert r.status == 417
            assert await r.read() == b"no"
        async with session.post(scripted_server.url("/"), data=b"second") as r2:
            assert r2.status == 417
    first = scripted_server.connections[0]
    assert b"Expect: 100-continue" in first.requests[0]
    assert first.requests[1] == b""  # EOF without a single body byte
    assert scripted_server.accepted == 2  # the next request used a new connection
    assert scripted_server.connections[1].requests[0].startswith(b"POST / HTTP/1.1\r\n")


async def test_body_less_request_with_expect100(scripted_server: ScriptedServer) -> None:
    scripted_server.script([ReadRequest(), Send(http_response(200, b"ok"))])
    headers, body = await post_to(scripted_server, expect100=True)
    assert headers["Expect"] == "100-continue"
    assert body == b""
