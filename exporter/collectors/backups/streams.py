"""Streaming integrity layers: gzip (isal) and zstd decompression, SQL dump trailer checks.

Each layer takes an iterable of byte chunks and yields decompressed chunks, raising `Corrupt`
with a readable reason; memory stays bounded because no layer holds more than one chunk and
every decompress call has an output cap.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import cast

import zstandard
from isal import igzip_lib
from isal.igzip_lib import DECOMP_GZIP, IgzipDecompressor

# isal's stub declares `IsalError: Exception` (an instance); at run time it is the class.
_IsalError = cast(type[Exception], igzip_lib.IsalError)

OUT_MAX = 4 << 20  # cap on bytes one decompress call returns (highly compressible input)
# zstd's decompressobj has no output cap: it is fed whole blocks, at most this many at a time
# (each decodes to 128 KiB at most, so one call returns at most OUT_MAX), or this many bytes.
_ZSTD_BLOCKS = OUT_MAX // (128 << 10)
_ZSTD_BLOCK_MAX = 128 << 10
_ZSTD_FEED = 256 << 10
# The largest window a frame may ask for: zstd's own default limit when decoding (`zstd -d`
# refuses more without --memory), enough for --ultra -22 and --long=27. A bigger one is read
# as corrupt or hostile: the decoder would hold that much memory for it.
ZSTD_MAX_WINDOW = 128 << 20
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


def unzstd(raw: Iterable[bytes], max_window: int = ZSTD_MAX_WINDOW) -> Iterator[bytes]:
    """Decompress every frame of a zstd stream; frames with a checksum are verified by libzstd.

    The frame and block headers are walked here, so each decompress call gets at most
    `_ZSTD_BLOCKS` whole blocks (a block never decodes to more than 128 KiB, whatever its
    compressed size: 4 bytes of RLE block make 128 KiB of zeros), and a frame asking for a
    window over `max_window` is refused before libzstd allocates it.
    """
    src = _Bytes(raw)
    dctx = zstandard.ZstdDecompressor(max_window_size=max_window)
    frames = 0
    while magic := src.take(4):
        if len(magic) == 4 and _is_skippable(magic):
            frames += 1
            size = src.take(4)
            if len(size) < 4 or not src.skip(int.from_bytes(size, "little")):
                raise Corrupt(f"zstd frame {frames} truncated (unexpected end of file)")
            continue
        if magic != ZSTD_MAGIC:
            what = "not a zstd file" if frames == 0 else "trailing garbage"
            raise Corrupt(f"{what} (bad magic bytes after frame {frames})")
        frames += 1
        yield from _zstd_frame(src, dctx.decompressobj(), frames, max_window)
    if frames == 0:
        raise Corrupt("not a zstd file")


def _is_skippable(magic: bytes) -> bool:
    # Skippable frames (0x184D2A50-5F, written by pzstd) carry no data to check.
    return magic[0] & 0xF0 == 0x50 and magic[1:4] == b"\x2a\x4d\x18"


def _zstd_frame(
    src: _Bytes, decomp: zstandard.ZstdDecompressionObj, frame: int, max_window: int
) -> Iterator[bytes]:
    truncated = Corrupt(f"zstd frame {frame} truncated (unexpected end of file)")
    descriptor = src.take(1)
    if not descriptor:
        raise truncated
    header = ZSTD_MAGIC + descriptor + src.take(_header_rest(descriptor[0]))
    try:
        params = zstandard.get_frame_parameters(header)
    except zstandard.ZstdError as exc:
        if len(header) < 5 + _header_rest(descriptor[0]):
            raise truncated from None
        raise Corrupt(f"zstd frame {frame}: {exc}") from None
    if params.window_size > max_window:
        raise Corrupt(
            f"zstd frame {frame}: window of {_mib(params.window_size)} over the "
            f"{_mib(max_window)} limit (corrupt or hostile)"
        )
    batch, blocks, last = bytearray(header), 0, False
    while not last:
        head = src.take(3)
        if len(head) < 3:
            raise truncated
        value = int.from_bytes(head, "little")
        last, kind, size = bool(value & 1), (value >> 1) & 3, value >> 3
        if kind == 3:
            raise Corrupt(f"zstd frame {frame}: reserved block type")
        if size > _ZSTD_BLOCK_MAX:
            raise Corrupt(f"zstd frame {frame}: block of {size} bytes over the 128 KiB maximum")
        body = src.take(1 if kind == 1 else size)  # an RLE block stores its byte once
        if len(body) < (1 if kind == 1 else size):
            raise truncated
        batch += head
        batch += body
        blocks += 1
        if last and params.has_checksum:
            checksum = src.take(4)
            if len(checksum) < 4:
                raise truncated
            batch += checksum
        if last or blocks == _ZSTD_BLOCKS or len(batch) >= _ZSTD_FEED:
            try:
                out = decomp.decompress(bytes(batch))
            except zstandard.ZstdError as exc:
                raise Corrupt(f"zstd frame {frame}: {exc}") from None
            if out:
                yield out
            batch, blocks = bytearray(), 0
    if not decomp.eof:
        raise Corrupt(f"zstd frame {frame}: the decoder did not reach the frame's end")


def _header_rest(descriptor: int) -> int:
    """Return the header bytes after the frame header descriptor (RFC 8878, 3.1.1.1)."""
    single_segment = descriptor >> 5 & 1
    content_size = (1 if single_segment else 0, 2, 4, 8)[descriptor >> 6]
    return (0 if single_segment else 1) + (0, 1, 2, 4)[descriptor & 3] + content_size


def _mib(size: int) -> str:
    return f"{size / (1 << 20):g} MiB"


class _Bytes:
    """Exact-size reads over a stream of chunks (short only at its end)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = bytearray()
        self._pos = 0

    def take(self, size: int) -> bytes:
        """Return the next `size` bytes, or fewer when the stream ends first."""
        while len(self._buffer) - self._pos < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            if self._pos:
                del self._buffer[: self._pos]
                self._pos = 0
            self._buffer += chunk
        out = bytes(self._buffer[self._pos : self._pos + size])
        self._pos += len(out)
        return out

    def skip(self, size: int) -> bool:
        """Drop the next `size` bytes; return False when the stream ends first."""
        while size:
            got = len(self.take(min(size, 1 << 20)))
            if not got:
                return False
            size -= got
        return True


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
