"""A dependency-free PNG bar chart: a canvas, a 5x7 bitmap font, zlib.

matplotlib would be a 30 MB dependency for one picture; bars and labels are
all the results need, and this keeps ``bench`` runnable with the README's
install alone.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

Color = tuple[int, int, int]
WHITE: Color = (255, 255, 255)
BLACK: Color = (30, 30, 30)
GREY: Color = (200, 200, 200)
PALETTE: dict[str, Color] = {
    "ours": (31, 119, 180),
    "aiohttp": (255, 127, 14),
    "other": (127, 127, 127),
    "ceiling": (44, 160, 44),
}

# Rows of 5 pixels, most significant bit on the left (HD44780-style glyphs).
_FONT: dict[str, tuple[int, ...]] = {
    "0": (14, 17, 19, 21, 25, 17, 14), "1": (4, 12, 4, 4, 4, 4, 14),
    "2": (14, 17, 1, 2, 4, 8, 31), "3": (31, 2, 4, 2, 1, 17, 14),
    "4": (2, 6, 10, 18, 31, 2, 2), "5": (31, 16, 30, 1, 1, 17, 14),
    "6": (6, 8, 16, 30, 17, 17, 14), "7": (31, 1, 2, 4, 8, 8, 8),
    "8": (14, 17, 17, 14, 17, 17, 14), "9": (14, 17, 17, 15, 1, 2, 12),
    "A": (14, 17, 17, 17, 31, 17, 17), "B": (30, 17, 17, 30, 17, 17, 30),
    "C": (14, 17, 16, 16, 16, 17, 14), "D": (28, 18, 17, 17, 17, 18, 28),
    "E": (31, 16, 16, 30, 16, 16, 31), "F": (31, 16, 16, 30, 16, 16, 16),
    "G": (14, 17, 16, 23, 17, 17, 15), "H": (17, 17, 17, 31, 17, 17, 17),
    "I": (14, 4, 4, 4, 4, 4, 14), "J": (7, 2, 2, 2, 2, 18, 12),
    "K": (17, 18, 20, 24, 20, 18, 17), "L": (16, 16, 16, 16, 16, 16, 31),
    "M": (17, 27, 21, 21, 17, 17, 17), "N": (17, 17, 25, 21, 19, 17, 17),
    "O": (14, 17, 17, 17, 17, 17, 14), "P": (30, 17, 17, 30, 16, 16, 16),
    "Q": (14, 17, 17, 17, 21, 18, 13), "R": (30, 17, 17, 30, 20, 18, 17),
    "S": (15, 16, 16, 14, 1, 1, 30), "T": (31, 4, 4, 4, 4, 4, 4),
    "U": (17, 17, 17, 17, 17, 17, 14), "V": (17, 17, 17, 17, 17, 10, 4),
    "W": (17, 17, 17, 21, 21, 21, 10), "X": (17, 17, 10, 4, 10, 17, 17),
    "Y": (17, 17, 17, 10, 4, 4, 4), "Z": (31, 1, 2, 4, 8, 16, 31),
    " ": (0,) * 7, ".": (0, 0, 0, 0, 0, 12, 12), ",": (0, 0, 0, 0, 12, 4, 8),
    "-": (0, 0, 0, 31, 0, 0, 0), "+": (0, 4, 4, 31, 4, 4, 0),
    "/": (0, 1, 2, 4, 8, 16, 0), "(": (2, 4, 8, 8, 8, 4, 2),
    ")": (8, 4, 2, 2, 2, 4, 8), ":": (0, 12, 12, 0, 12, 12, 0),
    "%": (24, 25, 2, 4, 8, 19, 3), "=": (0, 0, 31, 0, 31, 0, 0),
    ">": (8, 4, 2, 1, 2, 4, 8), "<": (2, 4, 8, 16, 8, 4, 2),
    "_": (0, 0, 0, 0, 0, 0, 31), "|": (4,) * 7, "#": (10, 10, 31, 10, 31, 10, 10),
}  # fmt: skip


class Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(WHITE) * (width * height))

    def rect(self, x: int, y: int, w: int, h: int, color: Color) -> None:
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(self.width, x + w), min(self.height, y + h)
        if x1 <= x0:
            return
        row = bytes(color) * (x1 - x0)
        for yy in range(y0, y1):
            start = (yy * self.width + x0) * 3
            self.pixels[start : start + len(row)] = row

    def text(self, x: int, y: int, text: str, color: Color = BLACK, scale: int = 2) -> int:
        """Draw ``text`` (upper-cased); returns the x just past it."""
        for ch in text.upper():
            glyph = _FONT.get(ch, _FONT["#"])
            for r, bits in enumerate(glyph):
                for c in range(5):
                    if bits & (16 >> c):
                        self.rect(x + c * scale, y + r * scale, scale, scale, color)
            x += 6 * scale
        return x

    def png(self) -> bytes:
        raw = b"".join(
            b"\x00" + bytes(self.pixels[y * self.width * 3 : (y + 1) * self.width * 3])
            for y in range(self.height)
        )
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(raw, 9))
            + _chunk(b"IEND", b"")
        )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


Bar = tuple[str, float, str, Color]  # label, value, value text, color


def _scale_top(values: Sequence[float]) -> float:
    """The full-width value: the largest, unless it dwarfs the rest (then 3x the median)."""
    finite = sorted(v for v in values if v == v and v > 0) or [1.0]
    median = finite[len(finite) // 2]
    return min(finite[-1], 3 * median)


def bar_chart(path: Path, title: str, sections: Sequence[tuple[str, Sequence[Bar]]]) -> None:
    """Horizontal bars, one section per metric, each scaled to its own maximum."""
    label_w, bar_w, value_w, row_h, pad = 330, 470, 230, 26, 16
    height = 50 + sum(40 + row_h * len(bars) for _, bars in sections) + pad
    canvas = Canvas(label_w + bar_w + value_w + 2 * pad, height)
    canvas.text(pad, 16, title, scale=3)
    y = 50
    for heading, bars in sections:
        canvas.text(pad, y + 12, heading, scale=2)
        y += 40
        top = _scale_top([v for _, v, _, _ in bars])
        for label, value, shown, color in bars:
            canvas.text(pad, y + 5, label[:27])
            x0 = pad + label_w
            canvas.rect(x0, y + 2, 1, row_h - 4, GREY)
            width = int(bar_w * min(value, top) / top) if value == value else 0  # NaN: none
            canvas.rect(x0, y + 3, max(width, 1), row_h - 8, color)
            if value > top:  # an outlier (wrk, httpx): clipped, marked by a white gap
                canvas.rect(x0 + width - 24, y + 3, 6, row_h - 8, WHITE)
            canvas.text(x0 + width + 8, y + 5, shown)
            y += row_h
    path.write_bytes(canvas.png())
