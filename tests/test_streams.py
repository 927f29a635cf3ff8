"""StreamReader unit tests: fed directly (feed_data / feed_eof / set_exception)."""

from __future__ import annotations

import asyncio
import gzip
import zlib

import pytest

from client import EMPTY_PAYLOAD, ClientPayloadError, StreamReader
from client.decoders import DECODE_STEP, make_decoder


def make_stream(*pieces: bytes, eof: bool = True, limit: int = 2**16) -> StreamReader:
    stream = StreamReader(limit=limit, loop=asyncio.get_running_loop())
    for piece in pieces:
        stream.feed_data(piece)
    if eof:
        stream.feed_eof()
    return stream


def gzip_stream(data: bytes, *, eof: bool = True) -> StreamReader:
    stream = StreamReader(loop=asyncio.get_running_loop(), decoder=make_decoder("gzip"))
    stream.feed_data(gzip.compress(data))
    if eof:
        stream.feed_eof()
    return stream


async def soon(stream: StreamReader) -> None:
    """Let a reader task reach its wait."""
    for _ in range(3):
        await asyncio.sleep(0)


# -- plain reads ---------------------------------------------------------------------------


async def test_read_all_joins_pieces_and_counts() -> None:
    stream = make_stream(b"hello ", b"world")
    assert await stream.read() == b"hello world"
    assert stream.at_eof()
    assert stream.total_bytes == stream.total_raw_bytes == 11
    assert await stream.read() == b""


async def test_read_n_and_readany_return_at_most_what_is_buffered() -> None:
    stream = make_stream(b"abcdef", b"gh")
    assert await stream.read(4) == b"abcd"
    assert await stream.readany() == b"ef"
    assert await stream.read(0) == b""
    assert await stream.read(10) == b"gh"
    assert await stream.readany() == b""


async def test_reader_waits_for_data_then_eof() -> None:
    stream = make_stream(eof=False)
    task = asyncio.create_task(stream.read())
    await soon(stream)
    assert not task.done()
    stream.feed_data(b"late")
    await soon(stream)
    assert not task.done()  # read() wants everything, up to EOF
    stream.feed_eof()
    assert await task == b"late"


async def test_empty_feed_is_ignored() -> None:
    stream = make_stream(b"", b"x", b"")
    assert stream.total_raw_bytes == 1
    assert await stream.read() == b"x"


async def test_readexactly_across_pieces_and_incomplete() -> None:
    stream = make_stream(b"ab", b"cde", b"f")
    assert await stream.readexactly(4) == b"abcd"
    with pytest.raises(asyncio.IncompleteReadError) as info:
        await stream.readexactly(5)
    assert info.value.partial == b"ef"
    assert info.value.expected == 5


async def test_readline_across_chunk_boundaries() -> None:
    stream = make_stream(b"hel", b"lo\nwor", b"ld\r", b"\n", b"tail")
    assert await stream.readline() == b"hello\n"
    assert await stream.readline() == b"world\r\n"
    assert await stream.readline() == b"tail"
    assert await stream.readline() == b""


async def test_readuntil_separator_straddling_pieces() -> None:
    stream = make_stream(b"head\r\n", b"\r", b"\nbody")
    assert await stream.readuntil(b"\r\n\r\n") == b"head\r\n\r\n"
    assert await stream.read() == b"body"


async def test_readuntil_limits() -> None:
    with pytest.raises(ValueError, match="Separator"):
        await make_stream(b"x").readuntil(b"")
    stream = make_stream(b"a" * 10, b"b" * 10, b"\n")
    with pytest.raises(ValueError, match="Chunk too big"):
        await stream.readline(max_line_length=15)


async def test_async_for_yields_lines() -> None:
    stream = make_stream(b"one\ntw", b"o\n", b"three")
    assert [line async for line in stream] == [b"one\n", b"two\n", b"three"]


async def test_iter_chunked_and_iter_any() -> None:
    stream = make_stream(b"abcd", b"ef", b"gh")
    assert [c async for c in stream.iter_chunked(3)] == [b"abc", b"def", b"gh"]
    stream = make_stream(b"abcd", b"ef")
    assert [c async for c in stream.iter_any()] == [b"abcd", b"ef"]


async def test_read_nowait_and_unread_data() -> None:
    stream = make_stream(b"abc", b"def", eof=False)
    assert stream.read_nowait(2) == b"ab"
    stream.unread_data(b"ab")
    assert stream.read_nowait() == b"abcdef"
    assert stream.read_nowait() == b""
    assert not stream.at_eof()
    stream.feed_eof()
    assert stream.at_eof()


async def test_eof_state_and_callbacks() -> None:
    stream = make_stream(b"x", eof=False)
    calls: list[str] = []
    stream.on_eof(lambda: calls.append("early"))
    waiter = asyncio.create_task(stream.wait_eof())
    await soon(stream)
    assert not waiter.done()
    assert not stream.is_eof()
    stream.feed_eof()
    await asyncio.wait_for(waiter, 1)
    assert calls == ["early"]
    assert stream.is_eof()
    assert not stream.at_eof()  # one byte is still buffered
    stream.on_eof(lambda: calls.append("late"))  # already at EOF: runs at once
    assert calls == ["early", "late"]
    assert await stream.read() == b"x"
    assert stream.at_eof()


async def test_empty_payload() -> None:
    assert EMPTY_PAYLOAD.at_eof()
    assert await EMPTY_PAYLOAD.read() == b""
    assert await EMPTY_PAYLOAD.readany() == b""
    assert EMPTY_PAYLOAD.read_nowait() == b""


# -- errors and concurrency -----------------------------------------------------------------


async def test_set_exception_fails_waiting_and_later_reads() -> None:
    stream = make_stream(b"buffered", eof=False)
    assert await stream.read(8) == b"buffered"
    task = asyncio.create_task(stream.readany())
    await soon(stream)
    error = ClientPayloadError("cut")
    stream.set_exception(error)
    with pytest.raises(ClientPayloadError) as info:
        await task
    assert info.value is error
    assert stream.exception() is error
    with pytest.raises(ClientPayloadError):
        await stream.read()
    with pytest.raises(ClientPayloadError):
        stream.read_nowait()


async def test_set_exception_releases_wait_eof() -> None:
    stream = make_stream(eof=False)
    waiter = asyncio.create_task(stream.wait_eof())
    await soon(stream)
    stream.set_exception(ClientPayloadError("gone"))
    await asyncio.wait_for(waiter, 1)  # returns; readers see the error


@pytest.mark.parametrize(
    "second",
    ["read", "readany", "readline", "readexactly", "readchunk"],
)
async def test_concurrent_readers_raise_runtime_error(second: str) -> None:
    stream = make_stream(eof=False)
    first = asyncio.create_task(stream.read())
    await soon(stream)
    calls = {
        "read": stream.read,
        "readany": stream.readany,
        "readline": stream.readline,
        "readexactly": lambda: stream.readexactly(1),
        "readchunk": stream.readchunk,
    }
    with pytest.raises(RuntimeError, match="another coroutine"):
        await calls[second]()
    with pytest.raises(RuntimeError):
        stream.read_nowait()
    stream.feed_data(b"ok")
    stream.feed_eof()
    assert await first == b"ok"


# -- HTTP chunk boundaries ---------------------------------------------------------------------


async def test_readchunk_reports_http_chunk_ends() -> None:
    stream = make_stream(eof=False)
    stream.feed_data(b"abc")
    stream.end_http_chunk_receiving()
    stream.feed_data(b"de")
    stream.feed_data(b"fg")
    stream.end_http_chunk_receiving()
    stream.end_http_chunk_receiving()  # a repeated boundary is one boundary
    stream.feed_data(b"partial")
    stream.feed_eof()
    assert await stream.readchunk() == (b"abc", True)
    assert await stream.readchunk() == (b"de", False)
    assert await stream.readchunk() == (b"fg", True)
    assert await stream.readchunk() == (b"partial", False)
    assert await stream.readchunk() == (b"", False)


async def test_iter_chunks_with_boundaries() -> None:
    stream = make_stream(eof=False)
    for piece in (b"one", b"two", b"three"):
        stream.begin_http_chunk_receiving()
        stream.feed_data(piece)
        stream.end_http_chunk_receiving()
    stream.feed_eof()
    assert [c async for c in stream.iter_chunks()] == [
        (b"one", True),
        (b"two", True),
        (b"three", True),
    ]


async def test_readchunk_after_readuntil_straddle_keeps_boundaries() -> None:
    stream = make_stream(eof=False)
    stream.feed_data(b"ab\r")
    stream.feed_data(b"\ncd")
    stream.end_http_chunk_receiving()
    stream.feed_eof()
    assert await stream.readuntil(b"\r\n") == b"ab\r\n"
    assert await stream.readchunk() == (b"cd", True)


# -- flow control --------------------------------------------------------------------------------


async def test_pause_above_high_water_resume_below_low_water() -> None:
    events: list[str] = []
    stream = StreamReader(
        limit=4,
        loop=asyncio.get_running_loop(),
        on_pause=lambda: events.append("pause"),
        on_resume=lambda: events.append("resume"),
    )
    stream.feed_data(b"12345678")  # == high water (2 * limit): not above it
    assert events == []
    stream.feed_data(b"9")
    stream.feed_data(b"0")
    assert events == ["pause"]  # once, however much more arrives
    assert await stream.read(5) == b"12345"
    assert events == ["pause"]  # 5 left: not below the low water mark
    assert await stream.read(2) == b"67"
    assert events == ["pause", "resume"]


# -- lazy decoding --------------------------------------------------------------------------------


async def test_gzip_decoding_is_lazy() -> None:
    original = bytes(range(256)) * (4 * 1024 * 4)  # 4 MiB, compresses well
    stream = gzip_stream(original)
    compressed_size = stream.total_raw_bytes
    assert stream.total_bytes == 0  # nothing decoded until someone reads
    head = await stream.read(100)
    assert head == original[:100]
    assert stream.total_bytes <= DECODE_STEP  # decoded one step, not the whole body
    rest = await stream.read()
    assert head + rest == original
    assert stream.total_bytes == len(original)
    assert stream.total_raw_bytes == compressed_size
    assert stream.at_eof()


async def test_gzip_decoding_of_split_feeds_with_readline() -> None:
    original = b"".join(b"line %d\n" % i for i in range(2000))
    compressed = gzip.compress(original)
    stream = StreamReader(loop=asyncio.get_running_loop(), decoder=make_decoder("gzip"))
    for start in range(0, len(compressed), 100):
        stream.feed_data(compressed[start : start + 100])
    stream.feed_eof()
    lines = [line async for line in stream]
    assert lines == original.splitlines(keepends=True)


async def test_decoding_error_is_client_payload_error() -> None:
    stream = StreamReader(loop=asyncio.get_running_loop(), decoder=make_decoder("deflate"))
    stream.feed_data(b"\xff\xfe definitely not deflate data")
    stream.feed_eof()
    with pytest.raises(ClientPayloadError, match="content-encoding"):
        await stream.read()
    with pytest.raises(ClientPayloadError):  # sticky
        await stream.read()


async def test_truncated_gzip_is_client_payload_error() -> None:
    compressed = gzip.compress(b"x" * 10000)
    stream = StreamReader(loop=asyncio.get_running_loop(), decoder=make_decoder("gzip"))
    stream.feed_data(compressed[: len(compressed) // 2])
    stream.feed_eof()
    with pytest.raises(ClientPayloadError) as info:
        await stream.read()
    assert info.value.__cause__ is not None


async def test_deflate_reader_waits_for_more_input() -> None:
    compressor = zlib.compressobj()
    first = compressor.compress(b"a" * 1000) + compressor.flush(zlib.Z_SYNC_FLUSH)
    second = compressor.compress(b"b" * 1000) + compressor.flush()
    stream = StreamReader(loop=asyncio.get_running_loop(), decoder=make_decoder("deflate"))
    stream.feed_data(first)
    assert await stream.readexactly(1000) == b"a" * 1000
    task = asyncio.create_task(stream.read())
    await soon(stream)
    assert not task.done()
    stream.feed_data(second)
    stream.feed_eof()
    assert await task == b"b" * 1000
