"""``FrameGuard``: the one wsproto extension a connection runs.

wsproto calls an extension's hooks for every frame header, every piece of
payload and every frame end. The guard uses them to bound what a server can
make us hold (security.md WS-03), all closing with 1009:

* a message larger than ``max_msg_size`` (counted after decompression, and
  refused from the frame header alone when the frame is not compressed);
* more than :data:`MAX_FRAGMENTS` frames in one message (empty fragments
  cost no bytes but do cost work);
* a compression bomb: compressed input is inflated in slices small enough
  that one slice can never exceed the budget by more than a few MiB.

It also hosts permessage-deflate (RFC 7692) when negotiated, delegating to
wsproto's ``PerMessageDeflate`` for data frames only: wsproto's own
extension resets its per-message state on the end of a control frame, so a
ping between the fragments of a compressed message would corrupt it.
"""

from __future__ import annotations

from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.frame_protocol import CloseReason, FrameDecoder, FrameProtocol, Opcode, RsvBits

__all__ = ("MAX_FRAGMENTS", "FrameGuard")

#: Frames per message; beyond this the message is refused (1009).
MAX_FRAGMENTS = 1 << 16
# Deflate's worst-case expansion: a 258-byte match coded in 2 bits.
_MAX_RATIO = 1032
# Compressed bytes inflated per step when the budget is tight (<= ~4 MiB of output).
_SLICE = 4096
_NO_RSV = RsvBits(False, False, False)

Proto = FrameDecoder | FrameProtocol


class FrameGuard(Extension):
    """Message limits for every connection, plus permessage-deflate when agreed."""

    name = "fetchrun-frame-guard"  # never offered: the handshake negotiates deflate

    def __init__(self, max_msg_size: int, deflate: PerMessageDeflate | None = None) -> None:
        self._max = max_msg_size  # 0: unlimited (aiohttp's meaning)
        self._deflate = deflate
        self._control = False  # the frame being read is a control frame
        self._compressed = False  # the message being read is compressed
        self._size = 0  # payload bytes of the message so far, decompressed
        self._fragments = 0
        #: Compress outgoing data messages (a per-message ``compress=0`` clears it).
        self.compress_outbound = deflate is not None

    def enabled(self) -> bool:
        return True

    def offer(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"<FrameGuard max={self._max} deflate={self._deflate!r}>"

    # -- inbound -----------------------------------------------------------------

    def frame_inbound_header(
        self, proto: Proto, opcode: Opcode, rsv: RsvBits, payload_length: int
    ) -> CloseReason | RsvBits:
        self._control = opcode.iscontrol()
        if self._control:
            return _NO_RSV  # RSV1 on a control frame is then a protocol error (1002)
        if opcode is not Opcode.CONTINUATION:
            self._compressed = self._deflate is not None and rsv.rsv1
        if self._max:
            self._fragments += 1
            if self._fragments > MAX_FRAGMENTS:
                return CloseReason.MESSAGE_TOO_BIG
            if not self._compressed and self._size + payload_length > self._max:
                return CloseReason.MESSAGE_TOO_BIG  # refused before buffering any of it
        if self._deflate is None:
            return _NO_RSV
        return self._deflate.frame_inbound_header(proto, opcode, rsv, payload_length)

    def frame_inbound_payload_data(self, proto: Proto, data: bytes) -> bytes | CloseReason:
        if self._control:
            return data
        if self._compressed:
            inflated = self._inflate(proto, data)
            if isinstance(inflated, CloseReason):
                return inflated
            data = inflated
        return self._count(data)

    def frame_inbound_complete(self, proto: Proto, fin: bool) -> bytes | CloseReason | None:
        if self._control:
            return None
        tail: bytes | CloseReason | None = None
        if self._deflate is not None:
            tail = self._deflate.frame_inbound_complete(proto, fin)  # the sync-flush tail
            if isinstance(tail, bytes | bytearray) and tail:
                tail = self._count(bytes(tail))
        if fin:
            self._size = self._fragments = 0
            self._compressed = False
        return tail

    def _count(self, data: bytes) -> bytes | CloseReason:
        self._size += len(data)
        if self._max and self._size > self._max:
            return CloseReason.MESSAGE_TOO_BIG
        return data

    def _inflate(self, proto: Proto, data: bytes) -> bytes | CloseReason:
        deflate = self._deflate
        assert deflate is not None
        budget = self._max - self._size
        if not self._max or len(data) * _MAX_RATIO <= budget:
            return deflate.frame_inbound_payload_data(proto, data)
        pieces: list[bytes] = []
        produced = 0
        for start in range(0, len(data), _SLICE):
            piece = deflate.frame_inbound_payload_data(proto, data[start : start + _SLICE])
            if isinstance(piece, CloseReason):
                return piece
            produced += len(piece)
            if produced > budget:
                return CloseReason.MESSAGE_TOO_BIG  # a bomb: stop inflating now
            pieces.append(piece)
        return b"".join(pieces)

    # -- outbound ----------------------------------------------------------------

    def frame_outbound(
        self, proto: Proto, opcode: Opcode, rsv: RsvBits, data: bytes, fin: bool
    ) -> tuple[RsvBits, bytes]:
        if self._deflate is None or not self.compress_outbound:
            return rsv, data
        return self._deflate.frame_outbound(proto, opcode, rsv, data, fin)
