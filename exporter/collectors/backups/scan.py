"""List a backup set's files in one streaming pass and keep only the summary the metrics need.

`scan()` is blocking (run it in a thread). Memory stays flat whatever the number of files:
nothing is kept per file beyond the handful of candidates `SetSummary` tracks.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from dataclasses import dataclass, field

from exporter.collectors.backups.names import NameClock
from exporter.paths import Skipped


class ScanError(Exception):
    """The set's directory cannot be listed; the message is the reason to log."""


@dataclass(frozen=True, slots=True)
class BackupFile:
    """One file of a set; `when` is the backup time (from its name and mtime, else mtime)."""

    path: str
    size: int
    mtime_ns: int
    when: float

    @property
    def key(self) -> tuple[str, int, int]:
        """Return what an integrity check's result depends on."""
        return self.path, self.size, self.mtime_ns

    def order(self) -> tuple[float, int, str]:
        """Return the sort key: backup time, then mtime, then path (ties are deterministic)."""
        return self.when, self.mtime_ns, self.path


@dataclass
class SetSummary:
    """Aggregate of a set: counts, newest two, oldest, and the newest file no longer written."""

    settled_before_ns: int
    files: int = 0
    total_bytes: int = 0
    newest: BackupFile | None = None
    previous: BackupFile | None = None
    oldest: BackupFile | None = None
    newest_settled: BackupFile | None = None
    skipped: Skipped = field(default_factory=Skipped)

    def add(self, item: BackupFile) -> None:
        """Fold one file into the summary."""
        self.files += 1
        self.total_bytes += item.size
        order = item.order()
        if self.newest is None or order > self.newest.order():
            self.previous, self.newest = self.newest, item
        elif self.previous is None or order > self.previous.order():
            self.previous = item
        if self.oldest is None or order < self.oldest.order():
            self.oldest = item
        # mtime within `settle` of now means the writer may still be appending: do not judge it.
        if item.mtime_ns <= self.settled_before_ns and (
            self.newest_settled is None or order > self.newest_settled.order()
        ):
            self.newest_settled = item


def compile_glob(glob: str) -> re.Pattern[str]:
    """Compile a shell glob for file names (case-sensitive, like the shell)."""
    return re.compile(fnmatch.translate(glob))


def scan(
    directory: str,
    glob: re.Pattern[str],
    clock: NameClock | None,
    settled_before_ns: int,
) -> SetSummary:
    """Summarize the regular files in `directory` whose names match `glob`."""
    summary = SetSummary(settled_before_ns)
    match = glob.match
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if match(entry.name) is None:
                    continue
                item = _file(entry, clock, summary.skipped)
                if item is not None:
                    summary.add(item)
    except FileNotFoundError:
        raise ScanError(f"directory {directory} does not exist") from None
    except NotADirectoryError:
        raise ScanError(f"{directory} is not a directory") from None
    except PermissionError:
        raise ScanError(f"cannot read directory {directory}: permission denied") from None
    except OSError as exc:
        raise ScanError(f"cannot read directory {directory}: {exc.strerror}") from None
    return summary


def _file(entry: os.DirEntry[str], clock: NameClock | None, skipped: Skipped) -> BackupFile | None:
    try:
        # Follows symlinks on purpose: a link to a backup counts as that backup.
        info = entry.stat()
    except FileNotFoundError:
        return None  # rotated away between listing and stat
    except OSError as exc:
        skipped.add(entry.path, exc)  # a symlink loop or an unreadable target: the rest counts
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    when = clock.timestamp(entry.name, info.st_mtime) if clock is not None else None
    if when is None:
        when = info.st_mtime
    return BackupFile(entry.path, info.st_size, info.st_mtime_ns, when)


def volume(directory: str) -> tuple[int, int]:
    """Return (bytes free for non-root users, total bytes) of the directory's filesystem."""
    try:
        st = os.statvfs(directory)
    except OSError as exc:
        raise ScanError(f"cannot stat filesystem of {directory}: {exc.strerror}") from None
    return st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize
