"""Validate a tar stream fed in chunks: header checksums, member sizes, end-of-archive marker.

Pure logic with constant memory (no member list is kept, unlike `tarfile`), so it can follow
a decompressor in the same streaming pass that checks the gzip/zstd CRC.
"""

from __future__ import annotations

BLOCK = 512
_MAX_PAX = 1 << 20  # pax headers are a few hundred bytes; a huge one means corruption
# Types without data blocks (links, devices, directories, FIFOs), as tarfile treats them.
_NO_DATA = frozenset(b"123456")


class TarError(ValueError):
    """The stream is not a complete, well-formed tar archive."""


def header_checksum_ok(header: bytes) -> bool:
    """Return True when a 512-byte header's stored checksum matches its bytes."""
    try:
        stored = int(header[148:156].replace(b"\0", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    unsigned = sum(header[:148]) + 8 * 32 + sum(header[156:BLOCK])
    if stored == unsigned:
        return True
    # Some old writers summed signed chars; accept that variant like GNU tar does.
    high = sum(1 for b in header[:148] if b > 127) + sum(1 for b in header[156:BLOCK] if b > 127)
    return stored == unsigned - 256 * high


def looks_like_tar(head: bytes) -> bool:
    """Return True when `head` starts with a tar header (ustar magic, or a valid v7 checksum)."""
    if len(head) < BLOCK:
        return False
    if head[257:262] == b"ustar":
        return True
    return any(head[:100]) and header_checksum_ok(head[:BLOCK])


def _size(field: bytes, offset: int) -> int:
    if field[0] & 0x80:  # GNU base-256 for members of 8 GiB and more
        return int.from_bytes(field[1:], "big")
    text = field.replace(b"\0", b" ").strip()
    try:
        return int(text or b"0", 8)
    except ValueError:
        raise TarError(f"bad size field in tar header at byte {offset}") from None


def _pax_size(data: bytes) -> int | None:
    """Return the `size` record of a pax extended header, if any."""
    pos = 0
    found: int | None = None
    while pos < len(data) and data[pos] != 0:
        space = data.find(b" ", pos)
        if space < 0:
            break
        length = int(data[pos:space])
        record = data[space + 1 : pos + length - 1]
        key, _, value = record.partition(b"=")
        if key == b"size":
            found = int(value)
        if length <= 0:
            break
        pos += length
    return found


class TarStream:
    """Feed bytes with `feed()`, then call `finish()`; either raises TarError on a bad archive."""

    def __init__(self) -> None:
        self.members = 0
        self.offset = 0  # bytes consumed, for error messages
        self._header = bytearray()
        self._skip = 0  # data bytes (incl. padding) still to pass over
        self._capture: bytearray | None = None  # pax header data being collected
        self._capture_left = 0
        self._next_size: int | None = None  # size override from a pax header
        self._done = False

    def feed(self, data: bytes) -> None:
        """Consume the next chunk of the archive."""
        view = memoryview(data)
        pos, end = 0, len(view)
        # Anything after the end-of-archive marker is record padding, ignored like tar does.
        while pos < end and not self._done:
            if self._skip:
                step = min(self._skip, end - pos)
                if self._capture is not None:
                    self._collect(view[pos : pos + step])
                self._skip -= step
            else:
                step = min(BLOCK - len(self._header), end - pos)
                self._header += view[pos : pos + step]
            pos += step
            self.offset += step
            if len(self._header) == BLOCK:
                self._on_header(bytes(self._header))
                self._header.clear()

    def _collect(self, chunk: memoryview) -> None:
        assert self._capture is not None
        take = min(len(chunk), self._capture_left)
        self._capture += chunk[:take]
        self._capture_left -= take
        if self._capture_left == 0:
            self._next_size = _pax_size(bytes(self._capture))
            self._capture = None

    def _on_header(self, header: bytes) -> None:
        at = self.offset - BLOCK
        if not any(header):
            self._done = True  # end-of-archive marker (GNU tar accepts a lone zero block too)
            return
        if not header_checksum_ok(header):
            raise TarError(f"tar header checksum mismatch at byte {at} (corrupt archive)")
        kind = header[156]
        size = _size(header[124:136], at)
        if kind in b"xX":
            if size > _MAX_PAX:
                raise TarError(f"pax header of {size} bytes at byte {at} (corrupt archive)")
            self._capture, self._capture_left = bytearray(), size
            if size == 0:
                self._capture = None
        elif kind not in b"gLK":  # global pax and GNU long names describe, not hold, files
            self.members += 1
            if self._next_size is not None:
                size, self._next_size = self._next_size, None
            if kind in _NO_DATA:
                size = 0
        self._skip = -(-size // BLOCK) * BLOCK

    def finish(self) -> None:
        """Check the archive ended properly."""
        if self._done:
            return
        if self._skip or self._header:
            raise TarError(f"tar archive truncated inside member {self.members} (stream ended)")
        raise TarError("tar archive has no end-of-archive marker (truncated?)")
