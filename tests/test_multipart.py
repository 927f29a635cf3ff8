"""MultipartWriter: byte-exact layout, sizes, well-formedness (stdlib email parser),
part encodings, reuse and header-injection checks."""

from __future__ import annotations

import base64
import binascii
import email.parser
import email.policy
import gzip
import io
import re
import zlib
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from client.multipart import MultipartWriter
from client.payload import BytesPayload, Payload, StringPayload


class Collector:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        self.chunks.append(bytes(data))

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


async def written(payload: Payload) -> bytes:
    sink = Collector()
    await payload.write(sink)
    return sink.body


def parse(content_type: str, body: bytes) -> EmailMessage:
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    assert isinstance(message, EmailMessage)
    assert message.is_multipart()
    assert not message.defects
    return message


# -- boundary ---------------------------------------------------------------------------


def test_default_boundary_is_random_uuid_hex() -> None:
    first, second = MultipartWriter(), MultipartWriter()
    assert re.fullmatch(r"[0-9a-f]{32}", first.boundary)
    assert first.boundary != second.boundary
    assert first.content_type == f"multipart/mixed; boundary={first.boundary}"
    assert MultipartWriter("form-data").content_type.startswith("multipart/form-data; ")


def test_boundary_that_is_not_a_token_is_quoted() -> None:
    writer = MultipartWriter(boundary="a b:c")
    assert writer.content_type == 'multipart/mixed; boundary="a b:c"'
    assert writer.boundary == "a b:c"


@pytest.mark.parametrize(
    "boundary", ["", "x" * 71, "ends-in-space ", "a\r\nb", 'a"b', "a\\b", "é", "a;b", "a\x00"]
)
def test_invalid_boundary_rejected(boundary: str) -> None:
    with pytest.raises(ValueError, match="boundary"):
        MultipartWriter(boundary=boundary)


def test_boundary_must_be_str() -> None:
    with pytest.raises(TypeError):
        MultipartWriter(boundary=b"abc")  # type: ignore[arg-type]


def test_subtype_must_be_a_token() -> None:
    with pytest.raises(ValueError, match="subtype"):
        MultipartWriter("mixed\r\nX: y")


# -- layout and size --------------------------------------------------------------------


async def test_byte_exact_mixed_body() -> None:
    writer = MultipartWriter(boundary="B")
    writer.append("hello")
    writer.append(b"\x00bin")
    writer.append_json({"a": 1})
    writer.append_form([("x", "1"), ("y", "a b")])
    body = await written(writer)
    assert body == (
        b"--B\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n\r\n"
        b"hello\r\n"
        b"--B\r\nContent-Type: application/octet-stream\r\nContent-Length: 4\r\n\r\n"
        b"\x00bin\r\n"
        b"--B\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n"
        b'{"a": 1}\r\n'
        b"--B\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\n"
        b"x=1&y=a+b\r\n"
        b"--B--\r\n"
    )
    assert writer.size == len(body)


async def test_empty_writer() -> None:
    writer = MultipartWriter(boundary="B")
    assert bool(writer)
    assert len(writer) == 0
    assert await written(writer) == b"--B--\r\n"
    assert writer.size == 7


async def test_nested_writer_and_file_parse_back(tmp_path: Path) -> None:
    path = tmp_path / "my file.txt"
    path.write_bytes(b"Hello World\nHello Python\n")
    outer = MultipartWriter()
    outer.append("text part")
    with MultipartWriter("related") as inner:
        inner.append("inner one")
        inner.append(b"inner two", {"Content-Type": "application/x-two"})
    outer.append(inner)
    with path.open("rb") as fh:
        outer.append(fh)
        body = await written(outer)
    assert outer.size == len(body)
    message = parse(outer.content_type, body)
    text, related, attachment = message.iter_parts()
    assert text.get_content() == "text part"
    assert related.get_content_type() == "multipart/related"
    one, two = related.iter_parts()
    assert one.get_content() == "inner one"
    assert two.get_content_type() == "application/x-two"
    assert two.get_content() == b"inner two"
    assert attachment.get_content_disposition() == "attachment"
    assert attachment.get_param("filename", header="content-disposition") == "my%20file.txt"
    assert attachment.get_payload(decode=True) == b"Hello World\nHello Python\n"


async def test_size_unknown_when_a_part_is_unsized() -> None:
    async def gen() -> AsyncIterator[bytes]:
        yield b"streamed"

    writer = MultipartWriter(boundary="B")
    writer.append(b"sized")
    part = writer.append(gen())
    assert writer.size is None
    assert "Content-Length" not in part.headers
    body = await written(writer)
    assert b"\r\n\r\nstreamed\r\n--B--\r\n" in body


async def test_close_boundary_false_omits_the_final_delimiter() -> None:
    writer = MultipartWriter(boundary="B")
    writer.append("x")
    sink = Collector()
    await writer.write(sink, close_boundary=False)
    assert sink.body.endswith(b"\r\n\r\nx\r\n")
    assert b"--B--" not in sink.body


def test_iteration_yields_aiohttp_style_triples() -> None:
    writer = MultipartWriter()
    first = writer.append("a")
    second = writer.append(b"b", {"Content-Encoding": "gzip"})
    assert list(writer) == [(first, None, None), (second, "gzip", None)]
    assert len(writer) == 2


# -- form-data ------------------------------------------------------------------------------


async def test_form_data_parts_get_names_and_no_length() -> None:
    writer = MultipartWriter("form-data", boundary="F")
    part = writer.append("v")
    assert part.headers["Content-Disposition"] == 'form-data; name="section-0"'
    assert "Content-Length" not in part.headers
    named = StringPayload("w")
    named.set_content_disposition("form-data", name="field")
    writer.append_payload(named)
    body = await written(writer)
    assert body == (
        b"--F\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b'Content-Disposition: form-data; name="section-0"\r\n\r\nv\r\n'
        b"--F\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b'Content-Disposition: form-data; name="field"\r\n\r\nw\r\n'
        b"--F--\r\n"
    )
    assert writer.size == len(body)


@pytest.mark.parametrize(
    "header", ["Content-Length", "Content-Encoding", "Content-Transfer-Encoding"]
)
def test_form_data_rejects_coding_and_length_headers(header: str) -> None:
    writer = MultipartWriter("form-data")
    with pytest.raises(ValueError, match="RFC 7578"):
        writer.append(b"x", {header: "gzip"})


# -- part encodings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "decode"),
    [
        ({"Content-Encoding": "gzip"}, gzip.decompress),
        ({"Content-Encoding": "deflate"}, lambda b: zlib.decompress(b, -zlib.MAX_WBITS)),
        ({"Content-Transfer-Encoding": "base64"}, base64.b64decode),
        ({"Content-Transfer-Encoding": "quoted-printable"}, binascii.a2b_qp),
        (
            {"Content-Encoding": "gzip", "Content-Transfer-Encoding": "base64"},
            lambda b: gzip.decompress(base64.b64decode(b)),
        ),
    ],
)
async def test_part_encodings_round_trip(headers: dict[str, str], decode: object) -> None:
    data = bytes(range(256)) * 50 + b"tail=\xff"
    writer = MultipartWriter(boundary="E")
    part = writer.append(io.BytesIO(data), headers)
    assert "Content-Length" not in part.headers
    assert writer.size is None
    body = await written(writer)
    start = body.index(b"\r\n\r\n") + 4
    encoded = body[start : body.rindex(b"\r\n--E--\r\n")]
    assert callable(decode)
    assert decode(encoded) == data


async def test_identity_encodings_are_plain() -> None:
    writer = MultipartWriter(boundary="E")
    part = writer.append(
        b"abc", {"Content-Encoding": "identity", "Content-Transfer-Encoding": "binary"}
    )
    assert part.headers["Content-Length"] == "3"
    assert list(writer) == [(part, None, None)]


@pytest.mark.parametrize(
    "headers", [{"Content-Encoding": "br"}, {"Content-Transfer-Encoding": "7bit-ish"}]
)
def test_unknown_part_encoding_rejected(headers: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="unsupported part encoding"):
        MultipartWriter().append(b"x", headers)


# -- reuse and close ---------------------------------------------------------------------------


async def test_reusable_writer_writes_identically_twice(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"file body")
    writer = MultipartWriter(boundary="R")
    writer.append("a")
    with path.open("rb") as fh:
        writer.append(fh)
        assert writer.reusable
        assert not writer.consumed
        assert await written(writer) == await written(writer)


async def test_one_shot_part_makes_the_writer_one_shot() -> None:
    async def gen() -> AsyncIterator[bytes]:
        yield b"once"

    writer = MultipartWriter()
    writer.append(gen())
    assert not writer.reusable
    assert not writer.consumed
    await written(writer)
    assert writer.consumed


async def test_close_closes_file_parts(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"x")
    writer = MultipartWriter()
    fh = path.open("rb")
    writer.append(fh)
    writer.append(b"bytes")
    await writer.close()
    assert fh.closed
    assert writer.consumed


# -- header injection ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Note": "a\r\nContent-Type: text/html"},
        {"Content-Type": "text/plain\r\n\r\nbody"},
        {"X-Note": "nul\x00"},
        {"Bad Name": "v"},
        {"X-Note\n": "v"},
    ],
)
def test_part_header_injection_rejected_at_append(headers: dict[str, str]) -> None:
    writer = MultipartWriter()
    with pytest.raises(ValueError):
        writer.append(b"x", headers)
    with pytest.raises(ValueError):
        writer.append(BytesPayload(b"x"), headers)
    assert len(writer) == 0


async def test_header_changed_after_append_rejected_at_write() -> None:
    writer = MultipartWriter()
    part = writer.append(b"x")
    part.headers["X-Late"] = "a\r\nX-Injected: 1"
    sink = Collector()
    with pytest.raises(ValueError, match="control character"):
        await writer.write(sink)
    assert b"X-Injected" not in sink.body


def test_append_rejects_unsupported_values() -> None:
    with pytest.raises(TypeError, match="unsupported body type"):
        MultipartWriter().append(12)
