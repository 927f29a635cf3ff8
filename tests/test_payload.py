"""Payload classes and ``get_payload``: types, sizes, streaming, reuse and header safety."""

from __future__ import annotations

import array
import asyncio
import io
import json
import os
import threading
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from client.exceptions import ClientPayloadError
from client.payload import (
    CHUNK_SIZE,
    AsyncIterablePayload,
    BufferedReaderPayload,
    BytesIOPayload,
    BytesPayload,
    IOBasePayload,
    IOPayload,
    JsonBytesPayload,
    JsonPayload,
    Order,
    Payload,
    PayloadRegistry,
    StreamReaderPayload,
    StringIOPayload,
    StringPayload,
    TextIOPayload,
    content_disposition_header,
    get_payload,
    guess_filename,
    payload_type,
    streamer,
)
from client.streams import StreamReader


class Collector:
    """A BodyWriter that records every chunk."""

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


BIG = os.urandom(2**20)


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    path = tmp_path / "big.bin"
    path.write_bytes(BIG)
    return path


# -- bytes and text ----------------------------------------------------------------


@pytest.mark.parametrize("value", [b"hello", bytearray(b"hello"), memoryview(b"hello")])
async def test_bytes_like_values(value: Any) -> None:
    payload = get_payload(value)
    assert type(payload) is BytesPayload
    assert payload.content_type == "application/octet-stream"
    assert payload.size == 5
    assert payload.reusable
    assert not payload.consumed
    assert await written(payload) == b"hello"
    assert await written(payload) == b"hello"  # reusable: same bytes again


async def test_memoryview_of_wider_items_is_sized_in_bytes() -> None:
    view = memoryview(array.array("i", [1, 2, 3]))
    payload = get_payload(view)
    assert payload.size == 3 * view.itemsize
    assert await written(payload) == view.tobytes()


def test_bytes_payload_ignores_filename_for_content_type() -> None:
    # aiohttp keeps application/octet-stream for raw bytes even with a filename.
    payload = get_payload(b"x", filename="r.png")
    assert payload.content_type == "application/octet-stream"
    assert payload.filename == "r.png"


def test_bytes_payload_rejects_non_bytes() -> None:
    with pytest.raises(TypeError, match="byte-ish"):
        BytesPayload("text")  # type: ignore[arg-type]


async def test_str_is_utf8_text() -> None:
    payload = get_payload("héllo")
    assert type(payload) is StringPayload
    assert payload.content_type == "text/plain; charset=utf-8"
    assert payload.encoding == "utf-8"
    assert payload.size == len("héllo".encode())
    assert await written(payload) == "héllo".encode()


async def test_str_charset_taken_from_content_type() -> None:
    payload = get_payload("héllo", content_type="text/html; charset=latin-1")
    assert payload.content_type == "text/html; charset=latin-1"
    assert await written(payload) == "héllo".encode("latin-1")
    assert payload.size == 5


async def test_str_explicit_encoding_sets_content_type() -> None:
    payload = StringPayload("hé", encoding="latin-1")
    assert payload.content_type == "text/plain; charset=latin-1"
    assert await written(payload) == b"h\xe9"


async def test_stringio_read_from_its_position() -> None:
    buf = io.StringIO("skip-me|body")
    buf.seek(8)
    payload = get_payload(buf)
    assert type(payload) is StringIOPayload
    assert payload.content_type == "text/plain; charset=utf-8"
    assert await written(payload) == b"body"


async def test_json_payload() -> None:
    payload = JsonPayload({"é": 1})
    assert payload.content_type == "application/json"
    body = await written(payload)
    assert body == json.dumps({"é": 1}).encode()
    assert payload.size == len(body)


async def test_json_payload_custom_dumps_and_type() -> None:
    payload = JsonPayload([1], dumps=lambda v: "custom", content_type="application/vnd+json")
    assert payload.content_type == "application/vnd+json"
    assert await written(payload) == b"custom"
    raw = JsonBytesPayload({"a": 1}, dumps=lambda v: b'{"a":1}')
    assert (raw.content_type, await written(raw)) == ("application/json", b'{"a":1}')


# -- files ---------------------------------------------------------------------------


async def test_binary_file_streams_in_bounded_chunks(big_file: Path) -> None:
    with big_file.open("rb") as fh:
        payload = get_payload(fh)
        assert type(payload) is BufferedReaderPayload
        assert isinstance(payload, IOPayload)
        assert payload.size == 2**20
        sink = Collector()
        await payload.write(sink)
    assert len(sink.chunks) >= 4
    assert all(0 < len(chunk) <= CHUNK_SIZE for chunk in sink.chunks)
    assert sink.body == BIG


async def test_file_size_and_body_start_at_current_position(big_file: Path) -> None:
    data = BIG
    with big_file.open("rb") as fh:
        fh.seek(1000)
        payload = get_payload(fh)
        assert payload.size == len(data) - 1000
        assert await written(payload) == data[1000:]


async def test_seekable_file_rewinds_for_each_write(big_file: Path) -> None:
    data = BIG
    with big_file.open("rb") as fh:
        fh.seek(10)
        payload = get_payload(fh)
        assert payload.reusable
        assert await written(payload) == data[10:]
        assert not payload.consumed
        assert await written(payload) == data[10:]  # e.g. a 307 redirect replay


async def test_file_reads_run_in_the_executor() -> None:
    threads: set[int] = set()

    class Recording(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            threads.add(threading.get_ident())
            return super().read(size)

    raw = Recording(b"x" * 10)
    payload = IOBasePayload(raw)  # a BytesIO subclass via the generic file path
    assert await written(payload) == b"x" * 10
    assert threads
    assert threading.get_ident() not in threads


async def test_file_metadata_and_disposition(tmp_path: Path) -> None:
    path = tmp_path / "my report.txt"
    path.write_bytes(b"Hello")
    with path.open("rb") as fh:
        body = get_payload(fh)  # a request body gets no Content-Disposition
        assert body.filename == "my report.txt"
        assert body.content_type == "text/plain"
        assert "Content-Disposition" not in body.headers
        part = get_payload(fh, disposition="attachment")
        assert part.headers["Content-Disposition"] == 'attachment; filename="my%20report.txt"'
        direct = BufferedReaderPayload(fh)  # aiohttp's constructor default
        assert direct.headers["Content-Disposition"].startswith("attachment;")


async def test_close_closes_the_file_and_blocks_reuse(big_file: Path) -> None:
    fh = big_file.open("rb")
    payload = get_payload(fh)
    await payload.close()
    assert fh.closed
    assert payload.consumed
    with pytest.raises(RuntimeError, match="consumed"):
        await payload.write(Collector())


async def test_file_shrinking_after_build_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 100)
    with path.open("rb") as fh:
        payload = get_payload(fh)
        assert payload.size == 100
        with path.open("r+b") as other:
            other.truncate(40)
        with pytest.raises(ClientPayloadError, match="60 bytes short"):
            await payload.write(Collector())


async def test_file_growing_after_build_sends_only_the_declared_size(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"a" * 10)
    with path.open("rb") as fh:
        payload = get_payload(fh)
        with path.open("ab") as other:
            other.write(b"b" * 10)
        assert await written(payload) == b"a" * 10  # matches the Content-Length sent


async def test_empty_regular_file_is_unsized(tmp_path: Path) -> None:
    # Files that report size 0 (such as /proc entries) are read until EOF, chunked.
    path = tmp_path / "empty"
    path.write_bytes(b"")
    with path.open("rb") as fh:
        payload = get_payload(fh)
        assert payload.size is None
        assert await written(payload) == b""


async def test_pipe_is_one_shot() -> None:
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"through a pipe")
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as reader:
        payload = get_payload(reader)
        assert payload.size is None
        assert payload.filename is None  # an fd's name is an int
        assert not payload.reusable
        assert not payload.consumed
        assert await written(payload) == b"through a pipe"
        assert payload.consumed
        with pytest.raises(RuntimeError, match="consumed"):
            await payload.write(Collector())


async def test_cancelled_write_does_not_corrupt_the_replay() -> None:
    """A read left running in a worker thread by a cancelled write must not move the
    file position under the replay (e.g. after a retry or a 307)."""
    started, release, stale_done = threading.Event(), threading.Event(), threading.Event()
    replay_reading, gate = threading.Event(), threading.Event()

    class Slow(io.BytesIO):
        calls = 0

        def read(self, size: int | None = -1) -> bytes:
            Slow.calls += 1
            call = Slow.calls
            if call == 1:  # the write that gets cancelled
                started.set()
                release.wait(5)
                result = super().read(size)
                stale_done.set()
                return result
            if call == 3:  # the replay's second chunk
                replay_reading.set()
                gate.wait(5)
            return super().read(size)

    data = bytes(range(256)) * 4096  # 1 MiB: several chunks
    payload = IOBasePayload(Slow(data))
    task = asyncio.create_task(payload.write(Collector()))
    await asyncio.to_thread(started.wait, 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    replay = asyncio.create_task(written(payload))
    # Unguarded code would let the replay run now, alongside the stale read.
    await asyncio.to_thread(replay_reading.wait, 0.3)
    release.set()
    await asyncio.to_thread(stale_done.wait, 5)
    gate.set()
    assert await replay == data


async def test_bytesio_payload(tmp_path: Path) -> None:
    data = os.urandom(CHUNK_SIZE * 2 + 7)
    buf = io.BytesIO(data)
    buf.seek(7)
    payload = get_payload(buf)
    assert type(payload) is BytesIOPayload
    assert payload.size == len(data) - 7
    sink = Collector()
    await payload.write(sink)
    assert sink.body == data[7:]
    assert [len(c) for c in sink.chunks] == [CHUNK_SIZE, CHUNK_SIZE]
    assert await written(payload) == data[7:]
    await payload.close()
    assert not buf.closed  # as aiohttp: a BytesIO is left open


async def test_text_file_is_encoded_and_unsized(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("línea\r\nzwei\n", encoding="utf-8", newline="")
    with path.open("r", encoding="utf-8") as fh:  # universal newlines: \r\n -> \n
        payload = get_payload(fh)
        assert type(payload) is TextIOPayload
        assert payload.size is None  # the encoded length is not the on-disk length
        assert payload.content_type == "text/plain; charset=utf-8"
        assert await written(payload) == "línea\nzwei\n".encode()
        assert await written(payload) == "línea\nzwei\n".encode()


async def test_text_file_stateful_encoding_restarts_on_replay(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("hi", encoding="utf-8")
    with path.open("r", encoding="utf-8") as fh:
        payload = get_payload(fh, content_type="text/plain; charset=utf-16")
        first = await written(payload)
        assert first == "hi".encode("utf-16")  # one BOM
        assert await written(payload) == first


def test_guess_filename() -> None:
    class Named:
        def __init__(self, name: object) -> None:
            self.name = name

    assert guess_filename(Named("/a/b/c.txt")) == "c.txt"
    assert guess_filename(Named("<stdin>"), "d") == "d"
    assert guess_filename(Named(3), "d") == "d"
    assert guess_filename(object()) is None


# -- async iterables and streams -------------------------------------------------------


async def test_async_generator_is_one_shot_and_chunked() -> None:
    async def gen() -> AsyncIterator[bytes]:
        yield b"a"
        yield b""  # an empty chunk would end a chunked body: dropped
        yield b"bc"

    payload = get_payload(gen())
    assert type(payload) is AsyncIterablePayload
    assert payload.size is None
    assert payload.content_type == "application/octet-stream"
    assert not payload.reusable
    assert not payload.consumed
    sink = Collector()
    await payload.write(sink)
    assert sink.chunks == [b"a", b"bc"]
    assert payload.consumed
    with pytest.raises(RuntimeError, match="consumed"):
        await payload.write(Collector())


async def test_async_generator_marked_consumed_as_soon_as_writing_starts() -> None:
    seen: list[bool] = []
    payload: Payload | None = None

    async def gen() -> AsyncIterator[bytes]:
        assert payload is not None
        seen.append(payload.consumed)
        yield b"x"

    payload = get_payload(gen())
    await written(payload)
    assert seen == [True]


async def test_async_generator_yielding_str_is_a_type_error() -> None:
    async def gen() -> AsyncIterator[Any]:
        yield "text"

    with pytest.raises(TypeError, match="yielded str"):
        await written(get_payload(gen()))


async def test_close_runs_an_unfinished_generators_cleanup() -> None:
    cleaned: list[str] = []

    async def gen() -> AsyncIterator[bytes]:
        try:
            yield b"a"
            yield b"b"
        finally:
            cleaned.append("done")

    class FailingWriter:
        async def write(self, data: bytes | bytearray | memoryview) -> None:
            raise ConnectionResetError

    payload = get_payload(gen())
    with pytest.raises(ConnectionResetError):
        await payload.write(FailingWriter())
    assert cleaned == []
    await payload.close()
    assert cleaned == ["done"]


async def test_stream_reader_is_forwarded_as_raw_bytes() -> None:
    stream = StreamReader()
    stream.feed_data(b"line1\nline")
    stream.feed_data(b"2\n")
    stream.feed_eof()
    payload = get_payload(stream)
    assert isinstance(payload, StreamReaderPayload)
    assert not payload.reusable
    assert await written(payload) == b"line1\nline2\n"


async def test_old_style_streamer_decorator() -> None:
    @streamer
    def sender(writer: Any, name: str = "") -> Generator[Any, None, None]:
        yield from writer.write(b"hello ")
        yield from writer.write(name.encode())

    payload = get_payload(sender(name="world"))
    assert payload.reusable
    assert await written(payload) == b"hello world"
    assert await written(payload) == b"hello world"  # the function runs again


async def test_async_streamer_decorator() -> None:
    @streamer
    async def sender(writer: Any) -> None:
        await writer.write(b"async")

    assert await written(sender()) == b"async"


# -- dispatch ----------------------------------------------------------------------------


def test_payload_instances_pass_through() -> None:
    payload = BytesPayload(b"x")
    assert get_payload(payload, content_type="text/plain") is payload


def _sync_gen() -> Iterator[bytes]:
    yield b"x"


@pytest.mark.parametrize("value", [1, None, {"a": "b"}, [b"a"], _sync_gen(), object()])
def test_unsupported_types_raise_type_error(value: Any) -> None:
    with pytest.raises(TypeError, match="unsupported body type"):
        get_payload(value)


def test_payload_type_registration() -> None:
    class Point:
        pass

    @payload_type(Point)
    class PointPayload(BytesPayload):
        def __init__(self, value: Point, **kwargs: Any) -> None:
            super().__init__(b"point", **kwargs)

    assert type(get_payload(Point())) is PointPayload


async def test_registry_order() -> None:
    class Shouting(BytesPayload):
        pass

    registry = PayloadRegistry()
    registry.register(BytesPayload, bytes)
    assert type(registry.get(b"x")) is BytesPayload
    registry.register(Shouting, bytes, order=Order.try_first)
    assert type(registry.get(b"x")) is Shouting  # try_first beats the exact match
    registry.register(StringPayload, object, order=Order.try_last)
    assert type(registry.get("s")) is StringPayload  # the fallback for anything else


# -- header safety -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "quote_fields", "expected"),
    [
        ({"name": "f"}, True, 'form-data; name="f"'),
        ({"name": 'a"b\\c'}, True, 'form-data; name="a\\"b\\\\c"'),
        ({"name": "ném"}, True, "form-data; name*=utf-8''n%C3%A9m"),
        (
            {"name": "f", "filename": 'a "b".txt'},
            True,
            'form-data; name="f"; filename="a%20%22b%22.txt"',
        ),
        ({"name": "ném", "filename": 'é"'}, False, 'form-data; name="ném"; filename="é\\""'),
        ({"name": "tab\there"}, True, 'form-data; name="tab\there"'),
    ],
)
def test_content_disposition_header(
    params: dict[str, str], quote_fields: bool, expected: str
) -> None:
    assert content_disposition_header("form-data", quote_fields, **params) == expected


@pytest.mark.parametrize("quote_fields", [True, False])
@pytest.mark.parametrize(
    "evil", ['a"\r\nContent-Type: x', "a\nb", "a\rb", "a\x00b", "a\x1bb", "a\x7fb"]
)
def test_content_disposition_rejects_control_characters(evil: str, quote_fields: bool) -> None:
    with pytest.raises(ValueError, match="control character"):
        content_disposition_header("form-data", quote_fields, name="f", filename=evil)
    with pytest.raises(ValueError, match="control character"):
        content_disposition_header("form-data", quote_fields, name=evil)


@pytest.mark.parametrize("disptype", ["", "form data", "a;b", "x\r\n"])
def test_content_disposition_type_must_be_a_token(disptype: str) -> None:
    with pytest.raises(ValueError, match="disposition type"):
        content_disposition_header(disptype)


@pytest.mark.parametrize(
    "headers",
    [{"X-A": "b\r\nX-Injected: 1"}, {"X A": "b"}, {"X-A\r\n": "b"}, {"X-A": "\x00"}],
)
def test_payload_headers_are_checked_at_build(headers: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        BytesPayload(b"x", headers=headers)


def test_payload_content_type_with_crlf_rejected() -> None:
    with pytest.raises(ValueError, match="control character"):
        get_payload(b"x", content_type="text/plain\r\nX-Evil: 1")


def test_set_content_disposition_replaces_header() -> None:
    payload = BytesPayload(b"x", headers={"X-Tag": "1"})
    payload.set_content_disposition("attachment", filename="a.bin")
    payload.set_content_disposition("inline")
    assert payload.headers.getall("Content-Disposition") == ["inline"]
    assert payload.headers["X-Tag"] == "1"
