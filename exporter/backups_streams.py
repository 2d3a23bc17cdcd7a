"""Streaming integrity layers: gzip (isal) and zstd decompression, SQL dump trailer checks.

Each layer takes an iterable of byte chunks and yields decompressed chunks, raising `Corrupt`
with a readable reason; memory stays bounded because no layer holds more than one chunk and
every decompress call has an output cap.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator
from typing import cast

import zstandard
from isal import igzip_lib
from isal.igzip_lib import DECOMP_GZIP, IgzipDecompressor

# isal's stub declares `IsalError: Exception` (an instance); at run time it is the class.
_IsalError = cast(type[Exception], igzip_lib.IsalError)

OUT_MAX = 4 << 20  # cap on bytes one decompress call returns (highly compressible input)
_ZSTD_FEED = 256 << 10  # zstd's decompressobj has no output cap: feed it small slices instead
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class Corrupt(Exception):
    """The file failed its integrity check; the message says why."""


def gunzip(raw: Iterable[bytes]) -> Iterator[bytes]:
    """Decompress every member of a gzip stream, checking each member's CRC32 and length."""
    decomp: IgzipDecompressor | None = None
    between = b""  # bytes after a member, before we know what follows
    members = 0
    padding = False  # zeros after the last member (tape/dd padding) are accepted, like gzip
    for data in raw:
        while data:
            if decomp is None:
                between += data
                data = b""
                if padding or len(between) >= 2:
                    padding = _after_member(between, members)
                    if not padding:
                        decomp, data, between = IgzipDecompressor(flag=DECOMP_GZIP), between, b""
                        members += 1
                    else:
                        between = b""
                continue
            try:
                yield decomp.decompress(data, OUT_MAX)
                while not decomp.needs_input and not decomp.eof:
                    yield decomp.decompress(b"", OUT_MAX)
            except _IsalError as exc:
                raise Corrupt(f"gzip member {members}: {exc}") from None
            data = b""
            if decomp.eof:
                data, decomp = decomp.unused_data, None
    if decomp is not None:
        raise Corrupt(f"gzip member {members} truncated (unexpected end of file)")
    if members == 0:
        raise Corrupt("not a gzip file")
    if between and any(between):
        raise Corrupt("trailing garbage after the last gzip member")


def _after_member(between: bytes, members: int) -> bool:
    """Return True for zero padding, False for the start of a member; raise on garbage."""
    if between.startswith(GZIP_MAGIC):
        return False
    if not any(between):
        return True
    if members == 0:
        raise Corrupt("not a gzip file (bad magic bytes)")
    raise Corrupt("trailing garbage after the last gzip member")


def unzstd(raw: Iterable[bytes]) -> Iterator[bytes]:
    """Decompress every frame of a zstd stream; frames with a checksum are verified by libzstd."""
    dctx = zstandard.ZstdDecompressor()
    decomp: zstandard.ZstdDecompressionObj | None = None
    between = b""
    frames = 0
    for data in raw:
        while data:
            if decomp is None:
                between += data
                data = b""
                if len(between) >= 4:
                    if not _is_zstd_frame(between):
                        what = "not a zstd file" if frames == 0 else "trailing garbage"
                        raise Corrupt(f"{what} (bad magic bytes after frame {frames})")
                    decomp, data, between = dctx.decompressobj(), between, b""
                    frames += 1
                continue
            data = yield from _zstd_feed(decomp, data, frames)
            if decomp.eof:
                decomp = None
    if decomp is not None:
        raise Corrupt(f"zstd frame {frames} truncated (unexpected end of file)")
    if frames == 0 or between:
        raise Corrupt("not a zstd file" if frames == 0 else "trailing garbage after zstd frame")


def _is_zstd_frame(data: bytes) -> bool:
    # Skippable frames (0x184D2A50-5F, written by pzstd) are frames too.
    return data.startswith(ZSTD_MAGIC) or (data[0] & 0xF0 == 0x50 and data[1:4] == b"\x2a\x4d\x18")


def _zstd_feed(
    decomp: zstandard.ZstdDecompressionObj, data: bytes, frame: int
) -> Generator[bytes, None, bytes]:
    """Feed `data` in slices; return what follows the frame's end (b"" if it did not end)."""
    view = memoryview(data)
    for start in range(0, len(view), _ZSTD_FEED):
        try:
            out = decomp.decompress(view[start : start + _ZSTD_FEED])
        except zstandard.ZstdError as exc:
            raise Corrupt(f"zstd frame {frame}: {exc}") from None
        if out:
            yield out
        if decomp.eof:
            return bytes(decomp.unused_data) + bytes(view[start + _ZSTD_FEED :])
    return b""


# (header that names the tool, trailer it writes last when the dump completed, tool name).
# The cluster variant comes first: a pg_dumpall file also holds per-database headers.
_DIALECTS = (
    (
        b"-- PostgreSQL database cluster dump",
        b"-- PostgreSQL database cluster dump complete",
        "pg_dumpall",
    ),
    (b"-- PostgreSQL database dump", b"-- PostgreSQL database dump complete", "pg_dump"),
    (b"-- MariaDB dump", b"-- Dump completed", "mariadb-dump"),
    (b"-- MySQL dump", b"-- Dump completed", "mysqldump"),
)
HEAD = 8192
TAIL = 4096  # pg_dump ≥ 15.14 writes a `\unrestrict <key>` line after its trailer


def sql_dialect(head: bytes) -> str | None:
    """Return the dump tool named in the first bytes of a plain SQL dump, or None."""
    for header, _, tool in _DIALECTS:
        if header in head:
            return tool
    return None


def check_sql_tail(head: bytes, tail: bytes) -> str:
    """Return the tool whose completion trailer ends the dump; raise Corrupt when it is missing."""
    tool = sql_dialect(head)
    for _, trailer, name in _DIALECTS:
        if (tool is None or tool == name) and trailer in tail:
            return name
    expected = next((t.decode() for _, t, n in _DIALECTS if n == tool), "a dump completion line")
    who = tool or "SQL dump"
    raise Corrupt(f"{who} has no '{expected}' trailer (dump incomplete or truncated)")


class SqlTail:
    """Keep the first and last bytes of a streamed SQL dump to check its trailer at the end."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.tail = b""
        self.tool = ""

    def feed(self, chunk: bytes) -> None:
        """Consume the next decompressed chunk."""
        if len(self.head) < HEAD:
            self.head += chunk[: HEAD - len(self.head)]
        if len(chunk) >= TAIL:
            self.tail = bytes(chunk[-TAIL:])
        else:
            self.tail = (self.tail + bytes(chunk))[-TAIL:]

    def finish(self) -> None:
        """Raise Corrupt unless the dump ends with its completion trailer."""
        self.tool = check_sql_tail(bytes(self.head), self.tail)
