"""Rules for file paths and globs in collector config (shared by every file-reading collector)."""

from __future__ import annotations

import glob
import os


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
