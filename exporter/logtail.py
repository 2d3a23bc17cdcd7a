"""Follow log files like `tail -F`: rotation-safe, bounded in memory, resumable after a restart.

A `LogTail` follows every regular file matching a path or glob. Files are tracked by
(device, inode), so a renamed file is finished from its open handle while the new file at the
path is read from its start (rename rotation), a file that shrinks or whose first bytes change is
read again from the start (copytruncate), and daily files (`laravel-*.log`) are picked up as they
appear. Offsets (inode, offset, a fingerprint of the first KiB) are saved to a state file after
each poll, so a restart resumes where it stopped instead of recounting or skipping.

`poll()` blocks (file I/O): call it in a thread. It reads at most `max_read_bytes` per call, so a
huge backlog is worked off over several polls rather than blowing a refresh timeout.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from exporter.paths import NotRegularFile, Skipped, open_regular

LineSink = Callable[[bytes, bool], None]
"""Receives each complete line (without its newline) and whether it was cut to the length cap."""

CHUNK = 64 * 1024
FINGERPRINT_BYTES = 1024
GRACE_POLLS = 2  # polls a renamed-away file stays open with nothing new (writers reopen late)
_STATE_VERSION = 1


class TailError(Exception):
    """The followed path cannot be watched (its directory is missing or unreadable)."""


class LineBuffer:
    """Split a byte stream into lines, keeping at most `max_line` bytes of any one line.

    An over-long line keeps its first and last halves (a JSON line's level often sits at the end,
    after a huge context) and is emitted with `truncated=True`.
    """

    def __init__(self, max_line: int, skip_first: bool = False) -> None:
        self.max_line = max_line
        self._head_cap = max_line // 2
        self._tail_cap = max_line - self._head_cap
        self._head = bytearray()
        self._tail = bytearray()
        self._overflow = False
        self._skip = skip_first  # drop the rest of a line we started in the middle of

    @property
    def pending(self) -> int:
        """Return how many bytes of an unfinished line are held."""
        return len(self._head) + len(self._tail)

    def feed(self, chunk: bytes, sink: LineSink) -> int:
        """Consume `chunk`, emit complete lines; return the bytes through its last newline."""
        start, consumed = 0, 0
        while True:
            end = chunk.find(b"\n", start)
            self._append(chunk[start : len(chunk) if end < 0 else end])
            if end < 0:
                return consumed
            self.flush(sink)
            start = consumed = end + 1

    def _append(self, piece: bytes) -> None:
        if self._skip or not piece:
            return
        if self._overflow:
            self._tail += piece
            if len(self._tail) > self._tail_cap:
                del self._tail[: len(self._tail) - self._tail_cap]
            return
        self._head += piece
        if len(self._head) > self.max_line:
            self._overflow = True
            self._tail = self._head[len(self._head) - self._tail_cap :]
            del self._head[self._head_cap :]

    def flush(self, sink: LineSink) -> None:
        """Emit the held line (if any) and reset."""
        skipped, overflow = self._skip, self._overflow
        line = bytes(self._head + b" " + self._tail) if overflow else bytes(self._head)
        self._head, self._tail = bytearray(), bytearray()
        self._overflow = self._skip = False
        if not skipped:
            sink(line.removesuffix(b"\r"), overflow)

    def reset(self) -> None:
        """Drop any held partial line."""
        self._head, self._tail = bytearray(), bytearray()
        self._overflow = self._skip = False


@dataclass
class _Tracked:
    path: str
    key: tuple[int, int]
    handle: BinaryIO
    buffer: LineBuffer
    pos: int  # next byte to read
    committed: int  # end of the last complete line: what a restart resumes from
    fingerprint: tuple[int, str] = (0, "")
    idle: int = 0  # consecutive polls unmatched by the pattern with nothing new to read


@dataclass
class _Saved:
    saved_at: float
    files: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)


def _fingerprint(handle: BinaryIO, length: int) -> tuple[int, str]:
    head = os.pread(handle.fileno(), length, 0)
    return len(head), hashlib.sha256(head).hexdigest()


class LogTail:
    """Follow the files matching `pattern`, feeding each complete line to a sink."""

    def __init__(
        self,
        pattern: str,
        *,
        from_beginning: bool = False,
        max_line_bytes: int = 64 * 1024,
        max_read_bytes: int = 64 * 1024 * 1024,
        state_file: str | None = None,
        logger: Any = None,
    ) -> None:
        self.pattern = pattern
        self.from_beginning = from_beginning
        self.max_line_bytes = max_line_bytes
        self.max_read_bytes = max_read_bytes
        self.state_file = state_file
        self._log = logger
        self._files: dict[tuple[int, int], _Tracked] = {}
        self._polled = False
        self._last_saved: list[dict[str, Any]] | None = None
        # A refresh that timed out leaves its thread running; the next poll waits for it.
        self._lock = threading.Lock()
        self.skipped = Skipped()  # matches the last poll could not read (a symlink loop…)

    def poll(self, sink: LineSink) -> None:
        """Read what was appended since the last poll, following rotation; save offsets."""
        with self._lock:
            saved = None if self._polled else self._load_state()
            matched = self._match()
            seen: set[tuple[int, int]] = set()
            for path, st in matched:
                key = (st.st_dev, st.st_ino)
                seen.add(key)
                tracked = self._files.get(key)
                if tracked is None:
                    self._track(path, st, saved)
                else:
                    tracked.path, tracked.idle = path, 0
                    self._check_truncated(tracked, st.st_size)
            if saved is not None:
                self._resume_renamed(saved, seen)
            self._read_all(sink, seen)
            self._polled = True
            self._save_state()

    def close(self) -> None:
        """Close every open file."""
        with self._lock:
            for tracked in self._files.values():
                tracked.handle.close()
            self._files.clear()

    def _match(self) -> list[tuple[str, os.stat_result]]:
        directory = os.path.dirname(self.pattern) or "."
        if not glob.has_magic(directory) and not os.path.isdir(directory):
            raise TailError(f"log directory {directory} does not exist")
        paths = glob.glob(self.pattern) if glob.has_magic(self.pattern) else [self.pattern]
        out = []
        skipped = Skipped()
        for path in sorted(paths):
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue  # not created yet (Laravel creates its log on the first entry)
            except OSError as exc:
                skipped.add(path, exc)  # one bad match must not stop the others being read
                continue
            if stat.S_ISREG(st.st_mode):
                out.append((path, st))
        self.skipped = skipped
        return out

    def _open(self, path: str, key: tuple[int, int]) -> BinaryIO | None:
        try:
            handle = open_regular(path, buffering=0)  # kept open across polls
        except (FileNotFoundError, NotRegularFile):
            return None  # gone, or swapped for a FIFO since the listing: the next poll sees it
        st = os.fstat(handle.fileno())
        if (st.st_dev, st.st_ino) != key:  # replaced between stat and open: next poll sees it
            handle.close()
            return None
        return handle

    def _track(
        self, path: str, st: os.stat_result, saved: _Saved | None, resume_only: bool = False
    ) -> None:
        key = (st.st_dev, st.st_ino)
        handle = self._open(path, key)
        if handle is None:
            return
        tracked = _Tracked(path, key, handle, LineBuffer(self.max_line_bytes), 0, 0)
        entry = saved.files.get(key) if saved is not None else None
        if entry is not None and self._verify(tracked, entry, st.st_size):
            tracked.pos = tracked.committed = int(entry["offset"])
            tracked.fingerprint = (int(entry["fp_len"]), str(entry["fp"]))
        elif resume_only:
            handle.close()
            return
        elif self._starts_at_end(st, saved):
            self._seek_end(tracked, st.st_size)
        self._files[key] = tracked

    def _starts_at_end(self, st: os.stat_result, saved: _Saved | None) -> bool:
        if self.from_beginning or self._polled:
            return False
        # With saved state, a file changed after the save appeared while we were down: read it.
        return saved is None or st.st_mtime <= saved.saved_at

    def _seek_end(self, tracked: _Tracked, size: int) -> None:
        tracked.pos = tracked.committed = size
        last = os.pread(tracked.handle.fileno(), 1, size - 1) if size else b"\n"
        if last != b"\n":  # a line is being written: skip its rest rather than count half a line
            tracked.buffer = LineBuffer(self.max_line_bytes, skip_first=True)

    def _verify(self, tracked: _Tracked, entry: dict[str, Any], size: int) -> bool:
        length = int(entry["fp_len"])
        if size < int(entry["offset"]) or size < length:
            return False
        return length == 0 or _fingerprint(tracked.handle, length) == (length, entry["fp"])

    def _check_truncated(self, tracked: _Tracked, size: int) -> None:
        length, digest = tracked.fingerprint
        shrunk = size < tracked.committed
        if shrunk or (length and _fingerprint(tracked.handle, length) != (length, digest)):
            # copytruncate (or truncate and rewrite): the file is new content from byte 0.
            tracked.pos = tracked.committed = 0
            tracked.fingerprint = (0, "")
            tracked.buffer.reset()

    def _resume_renamed(self, saved: _Saved, seen: set[tuple[int, int]]) -> None:
        """Finish files rotated away while we were down (found by inode next to their old path)."""
        for key, entry in saved.files.items():
            if key in seen or key in self._files:
                continue
            directory = os.path.dirname(str(entry["path"])) or "."
            try:
                candidates = [e.path for e in os.scandir(directory) if e.inode() == key[1]]
            except OSError:
                continue  # directory gone with its files: nothing left to finish
            for path in candidates:
                try:
                    st = os.stat(path)
                except FileNotFoundError:
                    continue  # deleted since the directory listing
                if (st.st_dev, st.st_ino) == key:
                    self._track(path, st, saved, resume_only=True)

    def _read_all(self, sink: LineSink, seen: set[tuple[int, int]]) -> None:
        budget = self.max_read_bytes
        for key, tracked in list(self._files.items()):
            got, at_eof = self._read(tracked, sink, budget)
            budget -= got
            if key in seen:
                continue
            tracked.idle = tracked.idle + 1 if got == 0 and at_eof else 0
            if tracked.idle >= GRACE_POLLS:
                if tracked.buffer.pending:
                    tracked.buffer.flush(sink)  # a last line without newline still counts
                tracked.handle.close()
                del self._files[key]

    def _read(self, tracked: _Tracked, sink: LineSink, budget: int) -> tuple[int, bool]:
        got, at_eof = 0, False
        fd = tracked.handle.fileno()
        while got < budget:
            chunk = os.pread(fd, min(CHUNK, budget - got), tracked.pos)
            if not chunk:
                at_eof = True
                break
            consumed = tracked.buffer.feed(chunk, sink)
            if consumed:
                tracked.committed = tracked.pos + consumed
            tracked.pos += len(chunk)
            got += len(chunk)
        if tracked.fingerprint[0] < min(FINGERPRINT_BYTES, tracked.pos):
            tracked.fingerprint = _fingerprint(tracked.handle, min(FINGERPRINT_BYTES, tracked.pos))
        return got, at_eof

    def _load_state(self) -> _Saved | None:
        if not self.state_file:
            return None
        try:
            with open(self.state_file, encoding="utf-8") as handle:
                data = json.load(handle)
            if data.get("version") != _STATE_VERSION or data.get("pattern") != self.pattern:
                return None
            files = {(int(f["dev"]), int(f["ino"])): f for f in data["files"]}
            return _Saved(float(data["saved_at"]), files)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            if self._log is not None:
                self._log.warning("log_state_unreadable", path=self.state_file, reason=str(exc))
            return None

    def _save_state(self) -> None:
        if not self.state_file:
            return
        files = [
            {
                "path": t.path,
                "dev": t.key[0],
                "ino": t.key[1],
                "offset": t.committed,
                "fp_len": t.fingerprint[0],
                "fp": t.fingerprint[1],
            }
            for t in self._files.values()
        ]
        if files == self._last_saved:
            return  # nothing moved: spare the disk a write per interval
        self._last_saved = files
        data = {"version": _STATE_VERSION, "pattern": self.pattern, "saved_at": time.time()}
        os.makedirs(os.path.dirname(self.state_file) or ".", exist_ok=True)
        temporary = f"{self.state_file}.tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump({**data, "files": files}, handle)
        os.replace(temporary, self.state_file)
