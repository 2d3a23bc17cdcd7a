"""Application collector: maintenance mode, log entries by level, HTTP responses by status class
from access logs, watched directory sizes."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.core import Metric
from pydantic import Field, ValidationInfo, field_validator, model_validator

from exporter.collectors.apps.accesslog import CLASSES, AccessFormat, StatusParser
from exporter.collectors.base import CLOSE_WAIT, CollectError, Collector, Context, SkipLog
from exporter.collectors.shared_metrics import LOG_SKIPPED_FILES
from exporter.config import InstanceConfig
from exporter.logparse import LABEL_VALUES, LevelParser, LogFormat
from exporter.logtail import LineSink, LogTail, TailError
from exporter.metrics import counter, gauge
from exporter.paths import NotRegularFile, Skipped, climbs_after_wildcard, open_regular
from maintwatch.configload import StrictModel

APP_MAINTENANCE_MODE = gauge(
    "maintwatch_app_maintenance_mode",
    "1 while the application is down for maintenance (its flag file exists).",
)
APP_MAINTENANCE_SINCE_TIMESTAMP_SECONDS = gauge(
    "maintwatch_app_maintenance_since_timestamp_seconds",
    "Unix time the application went down for maintenance.",
)
LOG_MESSAGES_TOTAL = counter(
    "maintwatch_log_messages_total",
    "Log entries seen since the exporter started, by normalised level.",
    "level",
)
HTTP_RESPONSES_TOTAL = counter(
    "maintwatch_http_responses_total",
    "HTTP responses in access logs since the exporter started, by status class.",
    "code",
)
DIRECTORY_SIZE_BYTES = gauge(
    "maintwatch_directory_size_bytes",
    "Apparent size of the regular files under a watched directory.",
    "directory",
)
DIRECTORY_FILES = gauge(
    "maintwatch_directory_files", "Regular files under a watched directory.", "directory"
)

_NAME = r"^[A-Za-z0-9_.:-]+$"
_DOWN_FILE_MAX = 64 * 1024  # Laravel's down file is a few hundred bytes; never read a huge one


_FIELD_PATH = r"^[A-Za-z0-9_@-]+(\.[A-Za-z0-9_@-]+)*$"


class TailedLog(StrictModel):
    """A log file (or glob of daily files) followed across rotation."""

    path: str = Field(min_length=1)
    from_beginning: bool = False
    max_line_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)


class AppLogConfig(TailedLog):
    """An application log whose entries are counted by level."""

    format: LogFormat = "auto"
    level_field: str | None = Field(default=None, pattern=_FIELD_PATH)


class AccessLogConfig(TailedLog):
    """An access log whose requests are counted by HTTP status class."""

    format: AccessFormat = "auto"
    status_field: str | None = Field(default=None, pattern=_FIELD_PATH)


class WatchedDirectory(StrictModel):
    """A directory whose total size and file count are reported under a short name."""

    name: str = Field(min_length=1, pattern=_NAME)
    path: str = Field(min_length=1)


class AppConfig(InstanceConfig):
    """An application: its base path, maintenance flag file, logs and watched directories."""

    path: Path | None = None
    maintenance_file: str | None = Field(default="storage/framework/down", validate_default=True)
    logs: list[AppLogConfig] = Field(default_factory=list)
    access_logs: list[AccessLogConfig] = Field(default_factory=list)
    directories: list[WatchedDirectory] = Field(default_factory=list)
    max_read_bytes: int = Field(default=64 * 1024 * 1024, ge=64 * 1024)

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_absolute():
            raise ValueError(f"must be an absolute path, got {str(value)!r}")
        return value

    @field_validator("maintenance_file")
    @classmethod
    def _flag_path(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and _needs_base(value, info):
            raise ValueError(f"relative path {value!r} needs the app's `path` (or null)")
        return value

    @field_validator("logs", "access_logs")
    @classmethod
    def _log_paths(cls, value: list[TailedLog], info: ValidationInfo) -> list[TailedLog]:
        climbing = [f"[{i}].path" for i, log in enumerate(value) if climbs_after_wildcard(log.path)]
        if climbing:
            where = ", ".join(climbing)
            raise ValueError(f"{where}: '..' after a wildcard would leave the glob's directory")
        bad = [
            f"[{i}].path {log.path!r}" for i, log in enumerate(value) if _needs_base(log.path, info)
        ]
        if bad:
            raise ValueError(f"relative {', '.join(bad)} needs the app's `path`")
        return value

    @field_validator("directories")
    @classmethod
    def _directories(
        cls, value: list[WatchedDirectory], info: ValidationInfo
    ) -> list[WatchedDirectory]:
        problems = [
            f"[{i}].path: globs are not supported"
            for i, d in enumerate(value)
            if glob.has_magic(d.path)
        ]
        problems += [
            f"[{i}].path {d.path!r} is relative: set the app's `path`"
            for i, d in enumerate(value)
            if _needs_base(d.path, info)
        ]
        names = [d.name for d in value]
        problems += [f"duplicate name {n!r}" for n in sorted(set(names)) if names.count(n) > 1]
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @model_validator(mode="after")
    def _something_to_watch(self) -> AppConfig:
        if not (self.maintenance_file or self.logs or self.access_logs or self.directories):
            raise ValueError(
                "nothing to watch: set maintenance_file, logs, access_logs or directories"
            )
        return self

    def resolve(self, value: str) -> str:
        """Return `value` made absolute against the app's path."""
        return value if self.path is None else os.path.join(self.path, value)


def _needs_base(value: str, info: ValidationInfo) -> bool:
    # `path` missing from info.data means it failed on its own; don't pile on a second error.
    return "path" in info.data and info.data["path"] is None and not os.path.isabs(value)


@dataclass
class Snapshot:
    """What one refresh measured (counters live on the collector)."""

    down_since: float | None = None  # None: not in maintenance (or not watched)
    directories: list[tuple[str, int, int]] = field(default_factory=list)
    skipped: Skipped = field(default_factory=Skipped)  # log files that matched but were unreadable


def maintenance_since(content: bytes, mtime: float) -> float:
    """Return when maintenance began: the down file's JSON `time` if present, else its mtime."""
    try:
        data = json.loads(content)
    except ValueError:
        return mtime  # older Laravel / other apps: any file content, the flag is its existence
    value = data.get("time") if isinstance(data, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return mtime


def read_maintenance(path: str) -> float | None:
    """Return since when the app is down, or None when the flag file is absent."""
    try:
        with open_regular(path) as handle:
            st = os.fstat(handle.fileno())
            return maintenance_since(handle.read(_DOWN_FILE_MAX), st.st_mtime)
    except FileNotFoundError:
        return None
    except NotRegularFile:
        raise CollectError(f"maintenance file {path} is not a regular file") from None


def scan_directory(path: str) -> tuple[int, int]:
    """Return (apparent bytes, regular files) under `path`, iteratively, not following links."""
    if not os.path.isdir(path):
        raise CollectError(f"watched directory {path} does not exist")
    total, files = 0, 0
    seen_links: set[tuple[int, int]] = set()  # count a hard-linked file once, like du
    stack = [path]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed while scanning (sandbox cleanup): it no longer counts
                if stat.S_ISDIR(st.st_mode):
                    stack.append(entry.path)
                elif stat.S_ISREG(st.st_mode):
                    if st.st_nlink > 1:
                        if (st.st_dev, st.st_ino) in seen_links:
                            continue
                        seen_links.add((st.st_dev, st.st_ino))
                    total += st.st_size
                    files += 1
    return total, files


class AppsCollector(Collector[AppConfig]):
    """Report an application's maintenance mode, log entries by level and directory sizes."""

    kind = "apps"
    label = "app"
    config_type = AppConfig
    metrics = (
        APP_MAINTENANCE_MODE,
        APP_MAINTENANCE_SINCE_TIMESTAMP_SECONDS,
        LOG_SKIPPED_FILES,
        LOG_MESSAGES_TOTAL,
        HTTP_RESPONSES_TOTAL,
        DIRECTORY_SIZE_BYTES,
        DIRECTORY_FILES,
    )

    def __init__(self, config: AppConfig, context: Context) -> None:
        super().__init__(config, context)
        self._counts = dict.fromkeys(LABEL_VALUES, 0)
        self._responses = dict.fromkeys(CLASSES, 0)
        self._tails = [
            (self._tail(log), self._level_sink(LevelParser(log.format, log.level_field)))
            for log in config.logs
        ]
        self._tails += [
            (
                self._tail(log, "access:"),
                self._status_sink(StatusParser(log.format, log.status_field)),
            )
            for log in config.access_logs
        ]
        self._skip_log = SkipLog(self.log, "log_files_skipped")

    def _tail(self, log: TailedLog, kind: str = "") -> LogTail:
        pattern = self.config.resolve(log.path)
        state_file = None
        if self.context.state_dir:
            # The kind keeps a file tailed both for levels and for requests in two offsets.
            digest = hashlib.sha256((kind + pattern).encode()).hexdigest()[:12]
            state_file = os.path.join(self.context.state_dir, f"apps-{self.name}-{digest}.json")
        return LogTail(
            pattern,
            from_beginning=log.from_beginning,
            max_line_bytes=log.max_line_bytes,
            max_read_bytes=self.config.max_read_bytes,
            state_file=state_file,
            logger=self.log,
        )

    async def refresh(self) -> Sequence[Metric]:
        """Poll logs, read the maintenance flag and scan directories (in a thread)."""
        snapshot = await self.blocking.run(self._measure)
        self._skip_log.report(snapshot.skipped)
        return self._families(snapshot)

    def _measure(self) -> Snapshot:
        try:
            snapshot = Snapshot()
            for tail, sink in self._tails:
                tail.poll(sink)
                snapshot.skipped.merge(tail.skipped)
            if self.config.maintenance_file is not None:
                flag = self.config.resolve(self.config.maintenance_file)
                snapshot.down_since = read_maintenance(flag)
            for directory in self.config.directories:
                size, files = scan_directory(self.config.resolve(directory.path))
                snapshot.directories.append((directory.name, size, files))
        except TailError as exc:
            raise CollectError(str(exc)) from None
        except OSError as exc:
            raise CollectError(f"cannot read {exc.filename}: {exc.strerror}") from exc
        return snapshot

    def _level_sink(self, parser: LevelParser) -> LineSink:
        def count(line: bytes, truncated: bool) -> None:
            level = parser.level(line.decode("utf-8", "replace"), truncated)
            if level is not None:
                self._counts[level] += 1

        return count

    def _status_sink(self, parser: StatusParser) -> LineSink:
        def count(line: bytes, truncated: bool) -> None:
            code = parser.status(line.decode("utf-8", "replace"), truncated)
            if code is not None:
                self._responses[code] += 1

        return count

    def _families(self, snapshot: Snapshot) -> list[Metric]:
        ms = self.metric_set()
        if self.config.maintenance_file is not None:
            since = snapshot.down_since
            ms.add(APP_MAINTENANCE_MODE, 0 if since is None else 1)
            if since is not None:
                ms.add(APP_MAINTENANCE_SINCE_TIMESTAMP_SECONDS, since)
        if self._tails:
            ms.add(LOG_SKIPPED_FILES, snapshot.skipped.count)
        if self.config.logs:
            for level, count in self._counts.items():
                ms.add(LOG_MESSAGES_TOTAL, count, level=level)
        if self.config.access_logs:
            for code, count in self._responses.items():
                ms.add(HTTP_RESPONSES_TOTAL, count, code=code)
        for name, size, files in snapshot.directories:
            ms.add(DIRECTORY_SIZE_BYTES, size, directory=name)
            ms.add(DIRECTORY_FILES, files, directory=name)
        return ms.families()

    async def close(self) -> None:
        """Close followed log files, unless a poll is stuck in its thread (then leave them)."""
        await self.blocking.drain(CLOSE_WAIT)
        if self.blocking.idle:
            for tail, _ in self._tails:
                tail.close()
