"""Restore drills of file tarballs: extract into a scratch directory the drill owns."""

from __future__ import annotations

import os
import shutil
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

from exporter.drills.checks import tarball_checks
from exporter.drills.config import RestoreConfig
from exporter.drills.engine import MARKER, Inspection
from exporter.drills.model import Refused
from exporter.drills.stream import PipeOutcome, pipe_into

MARKER_FILE = ".maintwatch-drill"


class TarballEngine:
    """A scratch directory holding the drill's marker file and the extracted tree (`root/`)."""

    def __init__(self, config: RestoreConfig) -> None:
        assert config.directory is not None  # guaranteed by the config model
        self.config = config
        self.directory = config.directory
        self.root = self.directory / "root"

    def describe(self) -> str:
        """Return the scratch directory."""
        return str(self.directory)

    def _ours(self) -> bool:
        marker = self.directory / MARKER_FILE
        try:
            return marker.read_text(encoding="utf-8").strip() == MARKER
        except OSError:
            return False

    def prepare(self) -> None:
        """Remove a leftover of an earlier drill, refuse a foreign directory, create scratch."""
        if self.directory.exists() or self.directory.is_symlink():
            if self.directory.is_symlink() or not self._ours():
                raise Refused(
                    f"directory {self.directory} exists without the drill's marker file"
                    f" {MARKER_FILE}: the drill did not create it and will not extract over it"
                )
            shutil.rmtree(self.directory)
        self.directory.mkdir(parents=True)
        (self.directory / MARKER_FILE).write_text(MARKER + "\n", encoding="utf-8")
        self.root.mkdir()

    def restore(
        self, content: Iterator[bytes], deadline: float, cancel: threading.Event
    ) -> PipeOutcome:
        """Pipe the tar stream into `tar -x` inside the scratch directory."""
        # GNU tar strips leading '/' and refuses '..' members, so nothing lands outside root.
        argv = [self.config.tar, "-x", "-f", "-", "-C", str(self.root)]
        argv += ["--no-same-owner", "--no-same-permissions"]
        return pipe_into(argv, {}, content, deadline, cancel, self.config.low_priority)

    def inspect(self, previous: tuple[int, int] | None) -> Inspection:
        """Check required paths, and count files and bytes against the previous drill."""
        present = {p: os.path.lexists(self.root / p) for p in self.config.paths}
        files, size = tree_size(self.root)
        checks = tarball_checks(present, files, size, previous, self.config.size_tolerance)
        return Inspection(checks=checks, files=files, size=size)

    def drop(self) -> bool:
        """Remove the scratch directory if it carries the marker."""
        if not self._ours():
            return False
        shutil.rmtree(self.directory)
        return True


def tree_size(root: Path) -> tuple[int, int]:
    """Return (regular files, bytes) under `root`, not following symlinks."""
    files = size = 0
    for base, _, names in os.walk(root):
        for name in names:
            info = os.lstat(os.path.join(base, name))
            if stat.S_ISREG(info.st_mode):
                files += 1
                size += info.st_size
    return files, size
