"""Check one backup file's integrity, by its configured type or by sniffing its first bytes.

Blocking (run it in a worker thread); reads the file once, front to back, in fixed-size chunks,
and asks its `Pace` between chunks whether to go on (so shutdown is prompt, and the worker can
share its threads fairly between sets and stop a check over its budget). `verify_file` returns
None when the file's format offers nothing to check.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from exporter.collectors.backups.streams import (
    GZIP_MAGIC,
    HEAD,
    TAIL,
    ZSTD_MAGIC,
    Corrupt,
    SqlTail,
    check_sql_tail,
    gunzip,
    sql_dialect,
    unzstd,
)
from exporter.collectors.backups.tar import TarError, TarStream, looks_like_tar
from exporter.collectors.backups.zip import EMPTY_ZIP_MAGIC, ZIP_MAGIC, check_zip
from exporter.paths import open_regular

CHUNK = 1 << 20
PGDMP = b"PGDMP"
_PG_CUSTOM_FORMAT = 1  # ArchiveFormat archCustom, byte 10 of a custom-format header

# verify type → (compression, content); content "auto" means sniff the decompressed bytes.
PLANS: dict[str, tuple[str, str]] = {
    "gzip": ("gzip", "auto"),
    "zstd": ("zstd", "auto"),
    "tar": ("none", "tar"),
    "tar.gz": ("gzip", "tar"),
    "tar.zst": ("zstd", "tar"),
    "sql": ("none", "sql"),
    "sql.gz": ("gzip", "sql"),
    "sql.zst": ("zstd", "sql"),
    "pgdump": ("none", "pgdump"),
    "zip": ("none", "zip"),
}


@dataclass(frozen=True)
class Verdict:
    """Outcome of one check: `format` as detected (e.g. `gzip+sql`), `detail` why or how."""

    ok: bool
    format: str
    detail: str


class Cancelled(Exception):
    """The check was stopped because the collector is closing or the file is obsolete."""


class OverBudget(Corrupt):
    """The check used up its time budget: a failed verdict (corrupt, hostile or too big)."""


class Pace:
    """Asked between chunks whether a check goes on; raises to stop it.

    This one stops on `cancel` only; the background worker's adds turns shared fairly between
    backup sets and a time budget per file.
    """

    def __init__(self, cancel: threading.Event | None = None) -> None:
        self.cancel = cancel if cancel is not None else threading.Event()

    def check(self) -> None:
        """Raise Cancelled when the check must stop."""
        if self.cancel.is_set():
            raise Cancelled


class _Content(Protocol):
    def feed(self, chunk: bytes) -> None: ...

    def finish(self) -> None: ...


class _NoContent:
    """Compressed data with no recognised content: the compression CRC is the whole check."""

    def feed(self, chunk: bytes) -> None:
        """Ignore the chunk."""

    def finish(self) -> None:
        """Accept."""


def verify_file(
    path: str,
    cancel: threading.Event | Pace,
    *,
    verify: str = "auto",
    pg_restore: str = "pg_restore",
) -> Verdict | None:
    """Check `path`; return a Verdict, or None when nothing can be checked for this format."""
    pace = cancel if isinstance(cancel, Pace) else Pace(cancel)
    try:
        fh = open_regular(path)
    except FileNotFoundError:
        raise  # rotated away: the caller drops the check instead of recording a failure
    except OSError as exc:
        return Verdict(False, "unreadable", f"cannot open: {exc.strerror}")
    with fh:
        head = fh.read(HEAD)
        if not head:
            return Verdict(False, "empty", "file is empty")
        compression, content = _plan(verify, head)
        if compression == "none" and content == "auto":
            content = _sniff(head, compressed=False)  # so a failure names what was checked
        try:
            if compression == "none":
                return _check_plain(fh, path, head, content, pg_restore, pace)
            return _check_compressed(fh, head, compression, content, pace)
        except Corrupt as exc:
            return Verdict(False, _label(compression, content), str(exc))
        except OSError as exc:
            return Verdict(False, _label(compression, content), f"read error: {exc.strerror}")


def _plan(verify: str, head: bytes) -> tuple[str, str]:
    sniffed = _compression(head)
    if verify == "auto":
        return sniffed, "auto"
    compression, content = PLANS[verify]
    if compression != sniffed and compression != "none":
        # Raised as a verdict by the caller: a file that is not what it claims is a failure.
        return compression, f"mismatch:{content}"
    return compression, content


def _compression(head: bytes) -> str:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "none"


def _label(compression: str, content: str) -> str:
    content = content.removeprefix("mismatch:")
    if compression == "none":
        return content
    return compression if content in ("auto", "none") else f"{content}.{compression}"


def _check_plain(
    fh: BinaryIO, path: str, head: bytes, content: str, pg_restore: str, pace: Pace
) -> Verdict | None:
    if content == "pgdump":
        return check_pgdump(path, head, pg_restore, pace)
    if content == "sql":
        # No checksum to verify in a plain dump: the trailer at the very end is the evidence.
        fh.seek(max(0, os.fstat(fh.fileno()).st_size - TAIL))
        tool = check_sql_tail(head, fh.read(TAIL))
        return Verdict(True, "sql", f"{tool} completion trailer present")
    if content == "tar":
        tar = TarStream()
        _pump(_chunks(fh, head, pace), tar, pace)
        return Verdict(True, "tar", f"{tar.members} members, end-of-archive marker present")
    if content == "zip":
        return _check_zip(fh, pace)
    return None


def _check_zip(fh: BinaryIO, pace: Pace) -> Verdict:
    report = check_zip(fh, os.fstat(fh.fileno()).st_size, pace.check)
    detail = f"{report.checked} of {report.members} members CRC ok"
    skipped = [
        f"{count} {why}"
        for count, why in (
            (report.encrypted, "encrypted (not checkable without the password)"),
            (report.other_method, "with an unsupported compression method"),
        )
        if count
    ]
    return Verdict(True, "zip", "; ".join([detail, *skipped]))


def _check_compressed(
    fh: BinaryIO, head: bytes, compression: str, content: str, pace: Pace
) -> Verdict:
    if content.startswith("mismatch:"):
        raise Corrupt(f"not a {compression} file (its first bytes say otherwise)")
    layer = gunzip if compression == "gzip" else unzstd
    stream = layer(_chunks(fh, head, pace))
    first, stream = _peek(stream, HEAD)
    if content == "auto":
        content = _sniff(first, compressed=True)
    checker: _Content = _checker(content)
    _pump(_prepend(first, stream), checker, pace)
    label = _label(compression, content)
    if isinstance(checker, SqlTail):
        return Verdict(True, label, f"CRC ok, {checker.tool} completion trailer present")
    if isinstance(checker, TarStream):
        return Verdict(True, label, f"CRC ok, {checker.members} tar members, end marker present")
    return Verdict(True, label, "CRC ok")


def _sniff(head: bytes, compressed: bool) -> str:
    if head.startswith(PGDMP) and not compressed:
        return "pgdump"
    if head.startswith((ZIP_MAGIC, EMPTY_ZIP_MAGIC)) and not compressed:
        return "zip"
    if looks_like_tar(head):
        return "tar"
    if sql_dialect(head) is not None:
        return "sql"
    return "none"


def _checker(content: str) -> _Content:
    if content == "tar":
        return TarStream()
    if content == "sql":
        return SqlTail()
    return _NoContent()


def _chunks(fh: BinaryIO, head: bytes, pace: Pace) -> Iterator[bytes]:
    yield head
    while True:
        pace.check()
        data = fh.read(CHUNK)
        if not data:
            return
        yield data


def _peek(stream: Iterator[bytes], size: int) -> tuple[bytes, Iterator[bytes]]:
    """Collect at least `size` leading bytes of a stream (fewer at its end) for sniffing."""
    first = bytearray()
    for chunk in stream:
        first += chunk
        if len(first) >= size:
            break
    return bytes(first), stream


def _prepend(first: bytes, rest: Iterable[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _pump(stream: Iterable[bytes], checker: _Content, pace: Pace) -> None:
    try:
        for chunk in stream:
            pace.check()
            checker.feed(chunk)
        checker.finish()
    except TarError as exc:
        raise Corrupt(str(exc)) from None


def check_pgdump(path: str, head: bytes, pg_restore: str, pace: Pace) -> Verdict:
    """Check a custom-format pg_dump: header, then a full `pg_restore` read when available."""
    if not head.startswith(PGDMP) or len(head) < 11:
        raise Corrupt("not a PostgreSQL custom-format dump (no PGDMP header)")
    if head[10] != _PG_CUSTOM_FORMAT:
        raise Corrupt(f"PGDMP header with unexpected archive format {head[10]}")
    version = f"{head[5]}.{head[6]}"
    exe = shutil.which(pg_restore)
    if exe is None:
        return Verdict(True, "pgdump", f"header ok (archive {version}); {pg_restore} not found")
    # `--list` only reads the table of contents and passes truncated or bit-flipped dumps;
    # restoring to /dev/null reads and decompresses every data block, without a database.
    code, errors = run_tool([exe, "--file=/dev/null", path], pace)
    if code != 0:
        lines = [line for line in errors.splitlines() if line.strip()]
        raise Corrupt(f"pg_restore failed: {lines[-1] if lines else f'exit status {code}'}")
    return Verdict(True, "pgdump", f"pg_restore read the whole archive ({version})")


def run_tool(argv: list[str], pace: Pace) -> tuple[int, str]:
    """Run a checking tool; kill it when its pace says stop; return (exit status, stderr)."""
    with subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    ) as proc:
        while True:
            try:
                _, err = proc.communicate(timeout=0.5)
            except subprocess.TimeoutExpired:
                try:
                    pace.check()
                except (Cancelled, Corrupt):
                    proc.kill()
                    proc.communicate()
                    raise
                continue
            return proc.returncode, err.decode("utf-8", "replace")[-2000:]
