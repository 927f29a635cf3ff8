"""Zstandard frame and block scanner (RFC 8878 §3.1) for ``decoders``.

Split out of ``decoders``: ``_ZstdFramer`` walks the compressed input's frame
and block headers so the zstd decoder can cut its input where the decoded
output stays bounded (security.md C4-C6) and can tell a truncated stream apart.
"""

from __future__ import annotations

from .exceptions import ContentEncodingError

_ZSTD_MAGIC = 0xFD2FB528
_ZSTD_SKIPPABLE = 0x184D2A50  # low nibble is free (RFC 8878 §3.1.2)
_ZSTD_BLOCK_MAX = 128 * 1024  # Block_Maximum_Size caps one block's output
_RAW, _RLE, _COMPRESSED = 0, 1, 2
_DICT_ID_SIZE = (0, 1, 2, 4)
_FCS_SIZE = (0, 2, 4, 8)
# Scanner states.  Header states collect `_need` bytes; the others skip them.
_MAGIC, _FHD, _FRAME_HDR, _BLOCK_HDR, _SKIP_SIZE = range(5)
_BLOCK, _SKIP = 5, 6


class _ZstdFramer:
    """Follows zstd frame and block boundaries (RFC 8878 §3.1) in the input.

    python-zstandard's push API (``decompressobj``) has no output limit, so the
    input is cut where at most ``budget`` decoded bytes can come out: a block's
    output is known up front (raw: its size, RLE: its size, compressed: at most
    128 KiB).  Knowing the boundaries also tells a truncated stream apart.
    """

    __slots__ = ("_btype", "_cost", "_crc", "_frames", "_hdr", "_last", "_max", "_need", "_state")

    def __init__(self, max_frames: int) -> None:
        self._state = _MAGIC
        self._need = 4
        self._hdr = bytearray()
        self._crc = self._last = False
        self._btype = self._cost = 0
        self._frames = 0
        self._max = max_frames

    @property
    def at_boundary(self) -> bool:
        return self._state == _MAGIC and not self._hdr

    def scan(self, buf: memoryview, pos: int, budget: int) -> int:
        """Advance from ``pos``; return the end of a slice decoding <= ``budget``."""
        end = len(buf)
        spent = 0
        state, need = self._state, self._need
        while pos < end:
            if state == _BLOCK:
                take = min(need, end - pos)
                if self._btype == _RAW:  # streamed through as it arrives
                    take = min(take, budget - spent)
                    if not take:
                        break
                    spent += take
                elif take == need:  # this slice would complete the block
                    if spent and spent + self._cost > budget:
                        # Hold back its last byte: it decodes in the next step.
                        pos += take - 1
                        need = 1
                        break
                    spent += self._cost
                pos += take
                need -= take
                if not need:
                    state, need = self._after_block()
            elif state == _SKIP:
                take = min(need, end - pos)
                pos += take
                need -= take
                if not need:
                    state, need = _MAGIC, 4
            elif state == _BLOCK_HDR and end - pos >= 3 and not self._hdr:
                # Fast path: the whole block header is at hand.
                state, need = self._block_header(int.from_bytes(buf[pos : pos + 3], "little"))
                pos += 3
            else:
                take = min(need - len(self._hdr), end - pos)
                self._hdr += buf[pos : pos + take]
                pos += take
                if len(self._hdr) == need:
                    value = int.from_bytes(self._hdr, "little")
                    self._hdr.clear()
                    state, need = self._header(state, value)
        self._state, self._need = state, need
        return pos

    def _header(self, state: int, value: int) -> tuple[int, int]:
        """A complete header field arrived; return the next (state, need)."""
        if state == _MAGIC:
            self._frames += 1
            if self._frames > self._max:
                raise ContentEncodingError(f"zstd: more than {self._max} frames")
            if value == _ZSTD_MAGIC:
                return _FHD, 1
            if value & 0xFFFFFFF0 == _ZSTD_SKIPPABLE:
                return _SKIP_SIZE, 4
            raise ContentEncodingError("zstd: not a zstd frame")
        if state == _FHD:
            single_segment = bool(value & 0x20)
            self._crc = bool(value & 0x04)
            fcs = _FCS_SIZE[value >> 6] or int(single_segment)
            rest = (not single_segment) + _DICT_ID_SIZE[value & 3] + fcs
            return (_FRAME_HDR, rest) if rest else (_BLOCK_HDR, 3)
        if state == _FRAME_HDR:
            return _BLOCK_HDR, 3
        if state == _BLOCK_HDR:
            return self._block_header(value)
        # _SKIP_SIZE: a skippable frame's payload follows.
        return (_SKIP, value) if value else (_MAGIC, 4)

    def _block_header(self, value: int) -> tuple[int, int]:
        self._last = bool(value & 1)
        btype = (value >> 1) & 3
        size = value >> 3
        if btype > _COMPRESSED or size > _ZSTD_BLOCK_MAX:
            raise ContentEncodingError("zstd: invalid block header")
        self._btype = btype
        if btype == _RLE:
            self._cost = size
            return _BLOCK, 1
        self._cost = _ZSTD_BLOCK_MAX if btype == _COMPRESSED else size
        return (_BLOCK, size) if size else self._after_block()

    def _after_block(self) -> tuple[int, int]:
        if not self._last:
            return _BLOCK_HDR, 3
        return (_SKIP, 4) if self._crc else (_MAGIC, 4)
