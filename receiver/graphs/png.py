"""Draw one alert's graph as a PNG for mail (pure): the same curves as the page's SVG, on a
raster written by hand (zlib and struct; mail clients show PNG, few show inline SVG)."""

from __future__ import annotations

import itertools
import struct
import zlib

from receiver.graphs.curves import Curves
from receiver.graphs.svg import BOTTOM, LEFT, RIGHT, TOP, H, W, frame_of, segments, shade

Colour = tuple[int, int, int]
BACKGROUND: Colour = (250, 250, 250)
FIRING: Colour = (246, 221, 225)  # #b00020 at 12 % over the background
VALUE: Colour = (21, 101, 192)
THRESHOLD: Colour = (176, 0, 32)
BORDER: Colour = (221, 221, 221)


class Raster:
    """An RGB image with just the drawing operations the graph needs."""

    def __init__(self, width: int, height: int, fill: Colour) -> None:
        self.width, self.height = width, height
        self.rows = [bytearray(bytes(fill) * width) for _ in range(height)]

    def dot(self, x: int, y: int, colour: Colour, size: int = 1) -> None:
        """Paint a size × size square at (x, y), clipped to the image."""
        for dy in range(size):
            for dx in range(size):
                px, py = x + dx, y + dy
                if 0 <= px < self.width and 0 <= py < self.height:
                    self.rows[py][px * 3 : px * 3 + 3] = bytes(colour)

    def box(self, x0: int, y0: int, x1: int, y1: int, colour: Colour) -> None:
        """Fill the rectangle [x0, x1) × [y0, y1)."""
        for y in range(max(0, y0), min(self.height, y1)):
            left, right = max(0, x0), min(self.width, x1)
            self.rows[y][left * 3 : right * 3] = bytes(colour) * max(0, right - left)

    def line(
        self, a: tuple[float, float], b: tuple[float, float], colour: Colour, dash: int = 0
    ) -> None:
        """Draw a 2-pixel line from a to b; `dash` > 0 leaves every other `dash` pixels out."""
        steps = int(max(abs(b[0] - a[0]), abs(b[1] - a[1]))) + 1
        for i in range(steps + 1):
            if dash and (i // dash) % 2:
                continue
            t = i / steps
            self.dot(round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), colour, 2)

    def encode(self) -> bytes:
        """Return the image as a PNG file."""
        raw = b"".join(b"\x00" + bytes(row) for row in self.rows)  # filter type 0 per row
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return b"\x89PNG\r\n\x1a\n" + b"".join(
            _chunk(kind, data)
            for kind, data in ((b"IHDR", header), (b"IDAT", zlib.compress(raw, 9)), (b"IEND", b""))
        )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(curves: Curves) -> bytes:
    """Return the graph as PNG: firing interval shaded, threshold dashed, value solid."""
    image = Raster(W, H, (255, 255, 255))
    image.box(LEFT, TOP, W - RIGHT, H - BOTTOM, BACKGROUND)
    frame = frame_of(curves)
    x0, x1 = shade(frame, curves.firing)
    image.box(round(x0), TOP, round(x1), H - BOTTOM, FIRING)
    for points, colour, dash in ((curves.threshold, THRESHOLD, 6), (curves.value, VALUE, 0)):
        for run in segments(points, frame):
            for a, b in itertools.pairwise(run):
                image.line(a, b, colour, dash)
    for x in (LEFT, W - RIGHT - 1):
        image.box(x, TOP, x + 1, H - BOTTOM, BORDER)
    for y in (TOP, H - BOTTOM - 1):
        image.box(LEFT, y, W - RIGHT, y + 1, BORDER)
    return image.encode()
