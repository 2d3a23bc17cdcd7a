"""Check a ZIP archive (Spatie laravel-backup, `zip -r`): every member's data against its CRC-32.

Blocking; reads the central directory one record at a time and each member's data in chunks,
so memory stays flat whatever the number or size of members (`zipfile` would hold every
member's record). ZIP64 archives (over 4 GiB or 65 535 members) are read too. Members are
inflated (deflate), unpacked (bzip2) or read as stored, and their CRC-32 and length compared
with the central directory; encrypted members and other methods are counted, not checked.
"""

from __future__ import annotations

import bz2
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from exporter.collectors.backups.streams import Corrupt

ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
CHUNK = 1 << 20
OUT_MAX = 4 << 20  # cap on bytes one inflate call returns (highly compressible members)
_EOCD = struct.Struct("<4s4H2LH")
_EOCD64_LOCATOR = struct.Struct("<4sLQL")
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_CENTRAL = struct.Struct("<4s6H3L5H2L")
_LOCAL = struct.Struct("<4s5H3L2H")
_MAX_COMMENT = 0xFFFF
_STORED, _DEFLATED, _BZIP2 = 0, 8, 12
_ENCRYPTED = 0x1
_AES = 99


Poll = Callable[[], None]
"""Called between chunks; raises to stop the check (the collector is closing)."""


@dataclass(frozen=True)
class Member:
    """What the central directory says about one member."""

    name: str
    flags: int
    method: int
    crc: int
    compressed: int
    size: int
    offset: int


@dataclass
class ZipReport:
    """Counts of a finished check, for the verdict's detail."""

    members: int = 0
    checked: int = 0
    encrypted: int = 0
    other_method: int = 0


def check_zip(fh: BinaryIO, size: int, poll: Poll) -> ZipReport:
    """Check every member of the ZIP archive `fh` (`size` bytes); raise Corrupt on failure."""
    entries, cd_offset, cd_size, base = _directory(fh, size)
    report = ZipReport()
    position = cd_offset + base
    for _ in range(entries):
        poll()
        member, position = _central_record(fh, position)
        report.members += 1
        _check_member(fh, member, base, report, poll)
    if position != cd_offset + base + cd_size:
        raise Corrupt("central directory size does not match its records")
    return report


def _read_at(fh: BinaryIO, offset: int, length: int) -> bytes:
    fh.seek(offset)
    data = fh.read(length)
    if len(data) != length:
        raise Corrupt(f"truncated: {length} bytes at offset {offset} run past the end")
    return data


def _directory(fh: BinaryIO, size: int) -> tuple[int, int, int, int]:
    """Return (entries, central directory offset, its size, offset of the archive's start)."""
    tail_start = max(0, size - _EOCD.size - _MAX_COMMENT)
    tail = _read_at(fh, tail_start, size - tail_start)
    at = tail.rfind(EMPTY_ZIP_MAGIC)
    if at < 0 or len(tail) - at < _EOCD.size:
        raise Corrupt("no end of central directory record: the archive is cut short")
    _, disk, cd_disk, _, entries, cd_size, cd_offset, _ = _EOCD.unpack_from(tail, at)
    if disk != 0 or cd_disk != 0:
        raise Corrupt("multi-volume archives are not supported")
    eocd = tail_start + at
    directory_end = eocd
    if entries == 0xFFFF or 0xFFFFFFFF in (cd_size, cd_offset):
        entries, cd_size, cd_offset, directory_end = _zip64(fh, eocd)
    # Data before the archive (a self-extractor stub) shifts every offset by the same amount.
    base = directory_end - cd_size - cd_offset
    if base < 0:
        raise Corrupt("central directory offset points past its own position")
    return entries, cd_offset, cd_size, base


def _zip64(fh: BinaryIO, eocd: int) -> tuple[int, int, int, int]:
    locator_at = eocd - _EOCD64_LOCATOR.size
    if locator_at < 0:
        raise Corrupt("ZIP64 end of central directory locator missing")
    sig, _, record_at, _ = _EOCD64_LOCATOR.unpack(_read_at(fh, locator_at, _EOCD64_LOCATOR.size))
    if sig != b"PK\x06\x07":
        raise Corrupt("ZIP64 end of central directory locator missing")
    # The record sits right before the locator; trust its position over the stored offset,
    # which prepended data would shift.
    record_at = locator_at - _EOCD64.size
    fields = _EOCD64.unpack(_read_at(fh, record_at, _EOCD64.size))
    if fields[0] != b"PK\x06\x06":
        raise Corrupt("ZIP64 end of central directory record missing")
    entries, cd_size, cd_offset = fields[7], fields[8], fields[9]
    return entries, cd_size, cd_offset, record_at


def _central_record(fh: BinaryIO, at: int) -> tuple[Member, int]:
    fields = _CENTRAL.unpack(_read_at(fh, at, _CENTRAL.size))
    if fields[0] != b"PK\x01\x02":
        raise Corrupt(f"central directory record at offset {at} is damaged")
    flags, method, crc, compressed, size = fields[3], fields[4], fields[7], fields[8], fields[9]
    name_len, extra_len, comment_len, offset = fields[10], fields[11], fields[12], fields[16]
    name_raw = _read_at(fh, at + _CENTRAL.size, name_len + extra_len)
    name = name_raw[:name_len].decode("utf-8" if flags & 0x800 else "cp437", "replace")
    size, compressed, offset = _zip64_extra(name_raw[name_len:], size, compressed, offset)
    member = Member(name, flags, method, crc, compressed, size, offset)
    return member, at + _CENTRAL.size + name_len + extra_len + comment_len


def _zip64_extra(extra: bytes, size: int, compressed: int, offset: int) -> tuple[int, int, int]:
    """Replace 0xFFFFFFFF sizes and offset with their ZIP64 extra field values, in that order."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<2H", extra, pos)
        if tag == 0x0001:
            values = extra[pos + 4 : pos + 4 + length]
            wanted = [v == 0xFFFFFFFF for v in (size, compressed, offset)]
            found = list(struct.unpack_from(f"<{len(values) // 8}Q", values))
            out = [size, compressed, offset]
            for i, needed in enumerate(wanted):
                if needed:
                    if not found:
                        raise Corrupt("ZIP64 extra field is short")
                    out[i] = found.pop(0)
            return out[0], out[1], out[2]
        pos += 4 + length
    return size, compressed, offset


def _check_member(fh: BinaryIO, member: Member, base: int, report: ZipReport, poll: Poll) -> None:
    where = base + member.offset
    local = _LOCAL.unpack(_read_at(fh, where, _LOCAL.size))
    if local[0] != ZIP_MAGIC:
        raise Corrupt(f"{member.name}: local header missing at offset {where}")
    if member.flags & _ENCRYPTED or member.method == _AES:
        report.encrypted += 1
        return
    unpack = _unpacker(member.method)
    if unpack is None:
        report.other_method += 1
        return
    start = where + _LOCAL.size + local[9] + local[10]
    crc, length = 0, 0
    for piece in unpack(_data(fh, start, member, poll), member.name):
        crc = zlib.crc32(piece, crc)
        length += len(piece)
    if length != member.size:
        raise Corrupt(f"{member.name}: {length} bytes, the directory says {member.size}")
    if crc != member.crc:
        raise Corrupt(f"{member.name}: CRC-32 mismatch (data damaged)")
    report.checked += 1


def _data(fh: BinaryIO, start: int, member: Member, poll: Poll) -> Iterator[bytes]:
    fh.seek(start)
    left = member.compressed
    while left:
        poll()
        chunk = fh.read(min(CHUNK, left))
        if not chunk:
            raise Corrupt(f"{member.name}: truncated (archive ends inside its data)")
        left -= len(chunk)
        yield chunk


Unpack = Callable[[Iterator[bytes], str], Iterator[bytes]]


def _unpacker(method: int) -> Unpack | None:
    return {_STORED: _stored, _DEFLATED: _inflate, _BZIP2: _bunzip}.get(method)


def _stored(raw: Iterator[bytes], _: str) -> Iterator[bytes]:
    yield from raw


def _inflate(raw: Iterator[bytes], name: str) -> Iterator[bytes]:
    decomp = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        for chunk in raw:
            data = chunk
            while data and not decomp.eof:
                yield decomp.decompress(data, OUT_MAX)
                data = decomp.unconsumed_tail
        while not decomp.eof:
            out = decomp.decompress(b"", OUT_MAX)
            if not out:
                break
            yield out
    except zlib.error as exc:
        raise Corrupt(f"{name}: deflate data damaged ({exc})") from None
    if not decomp.eof:
        raise Corrupt(f"{name}: deflate stream cut short")


def _bunzip(raw: Iterator[bytes], name: str) -> Iterator[bytes]:
    decomp = bz2.BZ2Decompressor()
    try:
        for chunk in raw:
            yield decomp.decompress(chunk, OUT_MAX)
            while not decomp.needs_input and not decomp.eof:
                yield decomp.decompress(b"", OUT_MAX)
    except (OSError, EOFError) as exc:
        raise Corrupt(f"{name}: bzip2 data damaged ({exc})") from None
    if not decomp.eof:
        raise Corrupt(f"{name}: bzip2 stream cut short")
