"""Rules for file paths and globs in collector config (shared by every file-reading collector)."""

from __future__ import annotations

import errno
import glob
import os
import stat
from dataclasses import dataclass
from typing import BinaryIO


def climbs_after_wildcard(pattern: str) -> bool:
    """Return True when `..` follows a wildcard, letting the glob leave where it starts."""
    wildcard = False
    for part in pattern.split(os.sep):
        if wildcard and part == "..":
            return True
        wildcard = wildcard or glob.has_magic(part)
    return False


def check_glob(pattern: str) -> str:
    """Return the pattern, or raise ValueError when it could climb out of its directory."""
    if climbs_after_wildcard(pattern):
        raise ValueError(f"'..' after a wildcard would leave the glob's directory: {pattern!r}")
    return pattern


class NotRegularFile(OSError):
    """A path the exporter would read is a FIFO, a device or a socket: it is never opened."""


def open_regular(path: str, buffering: int = -1) -> BinaryIO:
    """Open a regular file for reading; never block on a FIFO or wake a device.

    `open()` on a FIFO waits for a writer forever, and opening some devices has effects (a
    tape rewinds), so the type is checked before opening, and again on the open descriptor in
    case the path was swapped in between (O_NONBLOCK makes that open return at once).
    """
    mode = os.stat(path).st_mode
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    if not stat.S_ISREG(mode):
        raise NotRegularFile(errno.EINVAL, "not a regular file", path)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFile(errno.EINVAL, "not a regular file", path)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", buffering=buffering)
    except BaseException:
        os.close(fd)
        raise


@dataclass
class Skipped:
    """Entries a listing left out because they cannot be read (a symlink loop, no permission).

    One bad entry must not take its whole set or app down: it is skipped, counted in a metric
    and named in one log line (the first one, as an example), and the rest is measured.
    """

    count: int = 0
    example: str = ""

    def add(self, path: str, error: OSError) -> None:
        """Count one entry that could not be read."""
        self.count += 1
        if not self.example:
            self.example = f"{path}: {error.strerror or error}"

    def merge(self, other: Skipped) -> None:
        """Add the entries another listing skipped."""
        self.count += other.count
        self.example = self.example or other.example
