"""Content decoding: round trips, stacking, truncation, garbage and bombs (LIM-04/05)."""

from __future__ import annotations

import gzip
import itertools
import random
import struct
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterable, Iterator

import brotli
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client import decoders
from client.decoders import (
    ACCEPT_ENCODING,
    DECODE_STEP,
    MAX_CODINGS,
    ContentDecoder,
    make_decoder,
)
from client.exceptions import ContentEncodingError

MiB = 1 << 20
CAP = 64 * MiB


# -- helpers -------------------------------------------------------------------------


def gzip_bytes(data: bytes) -> bytes:
    obj = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return obj.compress(data) + obj.flush()


def zlib_deflate(data: bytes) -> bytes:
    return zlib.compress(data)


def raw_deflate(data: bytes) -> bytes:
    obj = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return obj.compress(data) + obj.flush()


def br_bytes(data: bytes) -> bytes:
    return bytes(brotli.compress(data, quality=5))


def zstd_bytes(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(write_checksum=True).compress(data)


ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip_bytes,
    "deflate": zlib_deflate,
    "br": br_bytes,
    "zstd": zstd_bytes,
}


def payload(size: int, seed: int = 1) -> bytes:
    """Half compressible text, half random: exercises both stored and coded blocks."""
    rng = random.Random(seed)
    text = b"".join(b"line %d of the body, lorem ipsum\n" % i for i in range(size // 60 + 1))
    return (text[: size // 2] + rng.randbytes(size - size // 2))[:size]


def split_whole(data: bytes) -> list[bytes]:
    return [data]


def split_bytes(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def split_random(data: bytes, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    out, pos = [], 0
    while pos < len(data):
        step = rng.choice((1, 2, 3, 17, 500, 4096, 70_000))
        out.append(data[pos : pos + step])
        pos += step
    return out


SPLITS = {"whole": split_whole, "bytes": split_bytes, "random": split_random}


def decode(decoder: ContentDecoder, chunks: Iterable[bytes]) -> bytes:
    """Feed every chunk, then flush; check every piece's size on the way."""
    out = bytearray()
    for chunk in chunks:
        for piece in decoder.decompress(chunk):
            assert 0 < len(piece) <= DECODE_STEP
            out += piece
    for piece in decoder.flush():
        assert 0 < len(piece) <= DECODE_STEP
        out += piece
    return bytes(out)


def decoder_for(coding: str, **kwargs: int) -> ContentDecoder:
    decoder = make_decoder(coding, **kwargs)
    assert decoder is not None
    return decoder


def decode_bytes(coding: str, data: bytes, **kwargs: int) -> bytes:
    return decode(decoder_for(coding, **kwargs), [data])


def consume_until(pieces: Iterator[bytes], cap: int) -> int:
    """A consumer counting decoded bytes and stopping at a cap."""
    total = 0
    for piece in pieces:
        assert len(piece) <= DECODE_STEP
        total += len(piece)
        if total >= cap:
            break
    return total


# -- make_decoder parsing ----------------------------------------------------------


def test_accept_encoding_advertises_all_four() -> None:
    assert ACCEPT_ENCODING == "gzip, deflate, br, zstd"
    for token in ACCEPT_ENCODING.split(", "):
        assert make_decoder(token) is not None


@pytest.mark.parametrize("value", ["", "identity", "IDENTITY", " identity , Identity ", ",", " "])
def test_no_decoder_needed(value: str) -> None:
    assert make_decoder(value) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("gzip", ("gzip",)),
        ("X-GZip", ("gzip",)),
        ("\tDeflate ", ("deflate",)),
        ("BR", ("br",)),
        ("zstd", ("zstd",)),
        ("gzip, identity", ("gzip",)),
        ("deflate,gzip", ("deflate", "gzip")),
        ("gzip, , br", ("gzip", "br")),
    ],
)
def test_tokens_are_normalized(value: str, expected: tuple[str, ...]) -> None:
    assert decoder_for(value).encodings == expected


@pytest.mark.parametrize("value", ["compress", "gzip, x-compress", "gzip;q=1", "gzİp", "br, *"])
def test_unknown_coding_is_named(value: str) -> None:
    with pytest.raises(ContentEncodingError, match="unsupported content coding"):
        make_decoder(value)


def test_unknown_coding_message_names_it() -> None:
    with pytest.raises(ContentEncodingError, match="'lzma'"):
        make_decoder("gzip, LZMA")


def test_six_codings_rejected_without_building_decoders(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    real = decoders._new_stage

    def counting(coding: str, max_members: int, window: int) -> ContentDecoder:
        built.append(coding)
        return real(coding, max_members, window)

    monkeypatch.setattr(decoders, "_new_stage", counting)
    # The same list spread over six headers arrives joined with ", ".
    for value in ("gzip, gzip, br, zstd, gzip, deflate", ", ".join(["gzip"] * 6)):
        with pytest.raises(ContentEncodingError, match=f"more than {MAX_CODINGS}"):
            make_decoder(value)
    assert built == []
    assert make_decoder(", ".join(["gzip"] * 5 + ["identity"] * 3)) is not None
    assert len(built) == 5


# -- round trips -----------------------------------------------------------------------


@pytest.mark.parametrize("split", ["whole", "random"])
@pytest.mark.parametrize("coding", list(ENCODERS))
def test_round_trip_large(coding: str, split: str) -> None:
    data = payload(900_000)
    encoded = ENCODERS[coding](data)
    assert decode(decoder_for(coding), SPLITS[split](encoded)) == data


@pytest.mark.parametrize("coding", list(ENCODERS))
def test_round_trip_one_byte_at_a_time(coding: str) -> None:
    data = payload(30_000, seed=3)
    encoded = ENCODERS[coding](data)
    assert decode(decoder_for(coding), split_bytes(encoded)) == data


@pytest.mark.parametrize("coding", list(ENCODERS))
def test_highly_compressible_body_comes_in_bounded_steps(coding: str) -> None:
    data = b"abc" * (2 * MiB)
    pieces = list(decoder_for(coding).decompress(ENCODERS[coding](data)))
    assert b"".join(pieces) == data
    assert max(map(len, pieces)) <= DECODE_STEP
    assert len(pieces) >= len(data) // DECODE_STEP


def test_small_gzip_page_is_one_piece() -> None:
    page = payload(2048, seed=5)
    decoder = decoder_for("gzip")
    assert list(decoder.decompress(gzip_bytes(page))) == [page]
    assert list(decoder.flush()) == []


@pytest.mark.parametrize("coding", list(ENCODERS))
def test_empty_body_is_accepted(coding: str) -> None:
    decoder = decoder_for(coding)
    assert list(decoder.decompress(b"")) == []
    assert list(decoder.flush()) == []


@pytest.mark.parametrize("coding", list(ENCODERS))
def test_compressed_empty_content(coding: str) -> None:
    assert decode_bytes(coding, ENCODERS[coding](b"")) == b""


def test_decompress_is_lazy() -> None:
    decoder = decoder_for("gzip")
    pieces = decoder.decompress(b"definitely not gzip")
    with pytest.raises(ContentEncodingError):  # the work happens on the first pull
        next(pieces)


# -- deflate flavours ----------------------------------------------------------------


@pytest.mark.parametrize("encoder", [zlib_deflate, raw_deflate], ids=["zlib", "raw"])
@pytest.mark.parametrize("split", list(SPLITS))
def test_deflate_zlib_and_raw(encoder: Callable[[bytes], bytes], split: str) -> None:
    data = payload(40_000, seed=9)
    assert decode(decoder_for("deflate"), SPLITS[split](encoder(data))) == data


def test_deflate_one_byte_body_is_truncated() -> None:
    decoder = decoder_for("deflate")
    assert list(decoder.decompress(b"\x78")) == []
    with pytest.raises(ContentEncodingError, match="truncated"):
        list(decoder.flush())


def test_deflate_checks_adler32() -> None:
    encoded = bytearray(zlib_deflate(b"hello world" * 100))
    encoded[-1] ^= 0xFF
    with pytest.raises(ContentEncodingError, match="deflate"):
        decode_bytes("deflate", bytes(encoded))


# -- stacking ------------------------------------------------------------------------


def test_gzip_identity_is_decoded() -> None:
    data = payload(10_000)
    assert decode_bytes("gzip, identity", gzip_bytes(data)) == data
    assert decode_bytes("identity, gzip", gzip_bytes(data)) == data


def test_deflate_then_gzip() -> None:
    data = payload(200_000)
    # "deflate, gzip": deflate applied first, gzip last, so gzip is undone first.
    encoded = gzip_bytes(zlib_deflate(data))
    decoder = decoder_for("deflate, gzip")
    assert decoder.encodings == ("deflate", "gzip")
    assert decode(decoder, split_random(encoded)) == data


def test_five_stacked_codings_split_in_bytes() -> None:
    data = payload(20_000)
    order = ["gzip", "br", "zstd", "deflate", "gzip"]
    encoded = data
    for coding in order:
        encoded = ENCODERS[coding](encoded)
    decoder = decoder_for(", ".join(order))
    assert decode(decoder, split_bytes(encoded)) == data


def test_stack_reports_truncation_of_inner_coding() -> None:
    inner = zstd_bytes(payload(5000))[:-6]
    with pytest.raises(ContentEncodingError, match=r"zstd: .*truncated"):
        decode_bytes("zstd, gzip", gzip_bytes(inner))


def test_stack_reports_truncation_of_outer_coding() -> None:
    encoded = br_bytes(gzip_bytes(payload(5000)))[:-2]
    with pytest.raises(ContentEncodingError):
        decode_bytes("gzip, br", encoded)


# -- gzip members and zstd frames ----------------------------------------------------


@pytest.mark.parametrize("split", list(SPLITS))
def test_gzip_multi_member(split: str) -> None:
    parts = [payload(3000, seed=i) for i in range(3)] + [b""]
    encoded = b"".join(gzip_bytes(p) for p in parts)
    assert decode(decoder_for("gzip"), SPLITS[split](encoded)) == b"".join(parts)


@pytest.mark.parametrize("split", ["whole", "random"])
def test_gzip_large_members_in_bounded_steps(split: str) -> None:
    # Members larger than a step: member ends can fall inside zlib's unconsumed_tail.
    parts = [b"A" * (3 * MiB), payload(400_000, seed=2), b"B" * 999_999]
    encoded = b"".join(gzip_bytes(p) for p in parts)
    assert decode(decoder_for("gzip"), SPLITS[split](encoded)) == b"".join(parts)


def test_gzip_members_up_to_the_cap() -> None:
    encoded = gzip.compress(b"x") * 1024
    assert decode_bytes("gzip", encoded) == b"x" * 1024
    with pytest.raises(ContentEncodingError, match="more than 8 members"):
        decode_bytes("gzip", gzip.compress(b"x") * 9, max_members=8)


def test_gzip_100k_empty_members_fail_fast() -> None:
    encoded = gzip.compress(b"") * 100_000
    started = time.perf_counter()
    with pytest.raises(ContentEncodingError, match="members"):
        decode_bytes("gzip", encoded)
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize("split", list(SPLITS))
def test_zstd_multi_frame_with_skippable_frames(split: str) -> None:
    skippable = struct.pack("<II", 0x184D2A5E, 6) + b"ignore"
    parts = [payload(70_000, seed=i) for i in range(3)]
    plain = zstandard.ZstdCompressor(write_content_size=False).compress(parts[2])
    encoded = zstd_bytes(parts[0]) + skippable + zstd_bytes(parts[1]) + plain
    assert decode(decoder_for("zstd"), SPLITS[split](encoded)) == b"".join(parts)


def test_zstd_100k_empty_frames_fail_fast() -> None:
    encoded = zstd_bytes(b"") * 100_000
    started = time.perf_counter()
    with pytest.raises(ContentEncodingError, match="frames"):
        decode_bytes("zstd", encoded)
    assert time.perf_counter() - started < 0.5


# -- truncation and garbage ----------------------------------------------------------


@pytest.mark.parametrize("coding", list(ENCODERS))
@pytest.mark.parametrize("keep", [0.5, -1, -4])
def test_truncated_stream_fails_at_flush(coding: str, keep: float) -> None:
    encoded = ENCODERS[coding](payload(50_000))
    cut = int(len(encoded) * keep) if isinstance(keep, float) else len(encoded) + int(keep)
    decoder = decoder_for(coding)
    decoded = b"".join(decoder.decompress(encoded[:cut]))
    assert payload(50_000).startswith(decoded)
    with pytest.raises(ContentEncodingError, match="truncated"):
        list(decoder.flush())


def test_gzip_truncated_trailing_member_fails_at_flush() -> None:
    decoder = decoder_for("gzip")
    assert b"".join(decoder.decompress(gzip_bytes(b"ok") + b"\x1f")) == b"ok"
    with pytest.raises(ContentEncodingError, match="truncated"):
        list(decoder.flush())


@pytest.mark.parametrize("coding", list(ENCODERS))
@pytest.mark.parametrize("garbage", [b"\x00", b"garbage!", b"\x1f\x8bjunkjunkjunk"])
def test_trailing_garbage_is_an_error(coding: str, garbage: bytes) -> None:
    encoded = ENCODERS[coding](b"hello") + garbage
    with pytest.raises(ContentEncodingError):
        decode_bytes(coding, encoded)


@pytest.mark.parametrize("coding", list(ENCODERS))
def test_garbage_body_is_an_error(coding: str) -> None:
    with pytest.raises(ContentEncodingError, match=coding):
        decode_bytes(coding, b"<html>not compressed at all</html>")


@pytest.mark.parametrize(
    ("coding", "error"),
    [("gzip", zlib.error), ("br", brotli.error), ("zstd", zstandard.ZstdError)],
)
def test_library_errors_are_chained(coding: str, error: type[Exception]) -> None:
    encoded = bytearray(ENCODERS[coding](payload(5000)))
    if coding == "br":
        encoded[len(encoded) // 2 :] = bytes(len(encoded) - len(encoded) // 2)
    else:  # gzip's CRC-32 / zstd's content checksum: only the library can tell
        encoded[-8 if coding == "gzip" else -4] ^= 0xFF
    with pytest.raises(ContentEncodingError, match=coding) as info:
        decode_bytes(coding, bytes(encoded))
    assert isinstance(info.value.__cause__, error)


# -- bombs (LIM-04) ------------------------------------------------------------------


def zlib_bomb(wbits: int, size: int) -> bytes:
    """~1000:1 zeros, built in milliseconds: after Z_FULL_FLUSH every 1 MiB of
    zeros compresses to the same byte-aligned block, so it can be repeated."""
    zeros = bytes(MiB)
    obj = zlib.compressobj(9, zlib.DEFLATED, wbits)
    head = obj.compress(zeros) + obj.flush(zlib.Z_FULL_FLUSH)
    block = obj.compress(zeros) + obj.flush(zlib.Z_FULL_FLUSH)
    return head + block * ((size - len(head)) // len(block))


def br_bomb() -> bytes:
    compressor = brotli.Compressor(quality=1, lgwin=24)
    zeros = bytes(MiB)
    parts = [compressor.process(zeros) for _ in range(1024)]
    return bytes(b"".join(parts) + compressor.finish())


def zstd_rle_bomb(size: int) -> bytes:
    """Hand-made zstd frame of 4-byte RLE blocks, each expanding to 128 KiB."""
    header = struct.pack("<I", 0xFD2FB528) + bytes([0x00, (17 - 10) << 3])  # 128 KiB window
    rle_block = ((128 * 1024) << 3 | 1 << 1).to_bytes(3, "little") + b"\0"
    return header + rle_block * (size // 4)


BOMBS: dict[str, Callable[[], bytes]] = {
    "gzip": lambda: zlib_bomb(16 + zlib.MAX_WBITS, 10 * MiB),
    "deflate-zlib": lambda: zlib_bomb(zlib.MAX_WBITS, 10 * MiB),
    "deflate-raw": lambda: zlib_bomb(-zlib.MAX_WBITS, 10 * MiB),
    "br": br_bomb,
    "zstd": lambda: zstd_rle_bomb(10 * MiB),
}


@pytest.fixture(scope="module", params=list(BOMBS))
def bomb(request: pytest.FixtureRequest) -> tuple[str, bytes]:
    name: str = request.param
    return name.split("-")[0], BOMBS[name]()


def test_bomb_first_pieces_use_little_memory(bomb: tuple[str, bytes]) -> None:
    coding, body = bomb
    decoder = decoder_for(coding)
    tracemalloc.start()
    try:
        pieces = decoder.decompress(body)
        total = 0
        for _ in range(16):
            piece = next(pieces)
            assert 0 < len(piece) <= DECODE_STEP
            total += len(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total >= 16 * 100_000
    assert peak < 2 * MiB


def test_bomb_stops_at_the_body_cap_quickly(bomb: tuple[str, bytes]) -> None:
    coding, body = bomb
    started = time.perf_counter()
    total = consume_until(decoder_for(coding).decompress(body), CAP)
    assert CAP <= total < CAP + DECODE_STEP
    assert time.perf_counter() - started < 2.0


def test_bomb_inside_a_stack_stays_lazy() -> None:
    body = gzip_bytes(zlib_bomb(16 + zlib.MAX_WBITS, 2 * MiB))
    decoder = decoder_for("gzip, gzip")
    tracemalloc.start()
    try:
        total = consume_until(decoder.decompress(body), 16 * MiB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total >= 16 * MiB
    assert peak < 2 * MiB


def test_bomb_fed_in_network_chunks_stops_at_cap() -> None:
    body = zlib_bomb(16 + zlib.MAX_WBITS, 10 * MiB)
    decoder = decoder_for("gzip")
    total = 0
    for start in range(0, len(body), 65536):
        total += consume_until(decoder.decompress(body[start : start + 65536]), CAP - total)
        if total >= CAP:
            break
    assert CAP <= total < CAP + DECODE_STEP


def zstd_frame_header(window_log: int) -> bytes:
    return struct.pack("<I", 0xFD2FB528) + bytes([0x00, (window_log - 10) << 3])


def test_zstd_window_over_the_limit_is_refused() -> None:
    rle_block = (1000 << 3 | 1 << 1 | 1).to_bytes(3, "little") + b"a"
    with pytest.raises(ContentEncodingError, match="zstd"):
        decode_bytes("zstd", zstd_frame_header(31) + rle_block)  # 2 GiB window
    # Single-segment frame: the declared content size (2 GiB) is the window.
    single = struct.pack("<I", 0xFD2FB528) + bytes([0xA0]) + struct.pack("<I", 1 << 31)
    with pytest.raises(ContentEncodingError, match="zstd"):
        decode_bytes("zstd", single + rle_block)
    # A small window is fine, and the limit is configurable.
    assert decode_bytes("zstd", zstd_frame_header(20) + rle_block) == b"a" * 1000
    with pytest.raises(ContentEncodingError):
        decode_bytes("zstd", zstd_frame_header(20) + rle_block, zstd_max_window=1 << 19)


def test_zstd_rle_blocks_are_cut_into_bounded_steps() -> None:
    sizes = [128 * 1024, 1, 128 * 1024, 128 * 1024, 77, 0, 128 * 1024]
    blocks = b"".join(
        ((size << 3) | (1 << 1) | (i == len(sizes) - 1)).to_bytes(3, "little") + b"z"
        for i, size in enumerate(sizes)
    )
    encoded = zstd_frame_header(17) + blocks
    for split in SPLITS.values():
        assert decode(decoder_for("zstd"), split(encoded)) == b"z" * sum(sizes)


def test_zstd_oversized_block_is_refused() -> None:
    block = ((128 * 1024 + 1) << 3 | 1 << 1 | 1).to_bytes(3, "little") + b"z"
    with pytest.raises(ContentEncodingError, match="block"):
        decode_bytes("zstd", zstd_frame_header(20) + block)


# -- hostile input never leaks library errors ---------------------------------------

CODING_LISTS = [*ENCODERS, "gzip, br", "zstd, deflate", "deflate, gzip, zstd"]


def decode_capped(decoder: ContentDecoder, chunks: Iterable[bytes]) -> None:
    budget = 4 * MiB
    for chunk in chunks:
        budget -= consume_until(decoder.decompress(chunk), budget)
        if budget <= 0:
            return
    consume_until(decoder.flush(), budget)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    coding=st.sampled_from(CODING_LISTS),
    data=st.binary(max_size=2048),
    cuts=st.lists(st.integers(min_value=0, max_value=4096), max_size=6),
)
def test_arbitrary_bytes_raise_only_content_encoding_error(
    coding: str, data: bytes, cuts: list[int]
) -> None:
    try:
        decode_capped(decoder_for(coding), chunked(data, cuts))
    except ContentEncodingError:
        pass


@settings(max_examples=300, deadline=None)
@given(
    coding=st.sampled_from(list(ENCODERS)),
    flips=st.lists(
        st.tuples(st.integers(min_value=0), st.integers(min_value=1, max_value=255)),
        min_size=1,
        max_size=4,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=4096), max_size=4),
)
def test_corrupted_streams_raise_only_content_encoding_error(
    coding: str, flips: list[tuple[int, int]], cuts: list[int]
) -> None:
    encoded = bytearray(ENCODERS[coding](payload(3000, seed=11)))
    for index, mask in flips:
        encoded[index % len(encoded)] ^= mask
    try:
        decode_capped(decoder_for(coding), chunked(bytes(encoded), cuts))
    except ContentEncodingError:
        pass


def test_random_prefixes_of_valid_streams() -> None:
    rng = random.Random(5)
    for coding, encoder in ENCODERS.items():
        encoded = encoder(rng.randbytes(1000) + bytes(5000))
        for _ in range(50):
            cut = rng.randrange(1, len(encoded))
            with pytest.raises(ContentEncodingError):
                decode_bytes(coding, encoded[:cut])
