"""Configuration of one backup set: a directory, a glob, how to read times and verify files."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from exporter.collectors.backups.names import (
    NameClock,
    check_regex,
    resolve_timezone,
    strftime_to_glob,
    strftime_to_regex,
)
from exporter.config import InstanceConfig
from exporter.drills.config import RestoreConfig
from maintwatch.configload import Duration

VerifyType = Literal[
    "auto",
    "none",
    "gzip",
    "zstd",
    "tar",
    "tar.gz",
    "tar.zst",
    "sql",
    "sql.gz",
    "sql.zst",
    "pgdump",
    "zip",
]


class BackupSetConfig(InstanceConfig):
    """One backup set (`backups:` list item)."""

    directory: Path
    glob: str | None = Field(default=None, min_length=1)
    timestamp: str | None = Field(default=None, min_length=1)
    timestamp_regex: str | None = Field(default=None, min_length=1)
    timezone: str = "local"
    verify: VerifyType = "auto"
    settle: Duration = Field(default=60.0, ge=0)
    max_age: Duration = Field(default=26 * 3600.0, gt=0)
    retention: Duration | None = Field(default=None, gt=0)
    pg_restore: str = Field(default="pg_restore", min_length=1)
    restore: RestoreConfig | None = None  # restore drill: docs/exporter/drills.md
    # Work one file's check may take (time holding a verify turn, not waiting for one).
    verify_budget: Duration = Field(default=1800.0, gt=0)

    @field_validator("glob")
    @classmethod
    def _glob_is_a_name(cls, value: str | None) -> str | None:
        if value is not None and "/" in value:
            raise ValueError("glob matches file names inside `directory`; it cannot hold '/'")
        return value

    @field_validator("timestamp")
    @classmethod
    def _timestamp_compiles(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if "/" in value:
            raise ValueError("timestamp is a file-name pattern; put the path in `directory`")
        strftime_to_regex(value)
        return value

    @field_validator("timestamp_regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            check_regex(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        resolve_timezone(value)
        return value

    @model_validator(mode="after")
    def _one_timestamp_source(self) -> BackupSetConfig:
        if self.timestamp is not None and self.timestamp_regex is not None:
            raise ValueError("set either timestamp or timestamp_regex, not both")
        return self

    def effective_glob(self) -> str:
        """Return the glob, derived from the timestamp pattern when not set."""
        if self.glob is not None:
            return self.glob
        if self.timestamp is not None:
            return strftime_to_glob(self.timestamp)
        return "*"

    def name_clock(self) -> NameClock | None:
        """Return the parser of times in file names, or None when names hold no time."""
        zone = resolve_timezone(self.timezone)
        if self.timestamp is not None:
            return NameClock.from_strftime(self.timestamp, zone)
        if self.timestamp_regex is not None:
            return NameClock.from_regex(self.timestamp_regex, zone)
        return None
