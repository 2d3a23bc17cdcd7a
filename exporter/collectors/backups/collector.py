"""Backup sets: file count and sizes, newest/oldest backup time, integrity, volume space.

A set is a directory plus a glob. Each refresh lists the directory once (in a thread); the
integrity check of the newest settled file runs in the background (see `worker`) and
its cached result is exported until a newer file has been checked.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial

from prometheus_client.core import Metric

from exporter.collectors.backups.config import BackupSetConfig
from exporter.collectors.backups.scan import ScanError, SetSummary, compile_glob, scan, volume
from exporter.collectors.backups.verify import verify_file
from exporter.collectors.backups.worker import Verifier, VerifyResult
from exporter.collectors.base import CollectError, Collector, Context, SkipLog
from exporter.drills.metrics import DRILL_METRICS
from exporter.drills.metrics import static_families as drill_static
from exporter.drills.schedule import Scheduler
from exporter.drills.target import drill_target
from exporter.metrics import MetricSet, gauge

BACKUP_MAX_AGE_SECONDS = gauge(
    "maintwatch_backup_max_age_seconds",
    "Configured expected cadence of the backup set: the newest backup may be this old.",
)
BACKUP_RETENTION_SECONDS = gauge(
    "maintwatch_backup_retention_seconds", "Configured retention of the backup set."
)
BACKUP_FILES = gauge("maintwatch_backup_files", "Files in the backup set.")
BACKUP_SIZE_BYTES = gauge("maintwatch_backup_size_bytes", "Total bytes of the backup set.")
BACKUP_LAST_TIMESTAMP_SECONDS = gauge(
    "maintwatch_backup_last_timestamp_seconds",
    "Time of the newest backup (from its file name when it holds one, the time of day"
    " from the mtime when the name has only a date; else its mtime).",
)
BACKUP_LAST_SIZE_BYTES = gauge("maintwatch_backup_last_size_bytes", "Size of the newest backup.")
BACKUP_PREVIOUS_SIZE_BYTES = gauge(
    "maintwatch_backup_previous_size_bytes", "Size of the backup before the newest one."
)
BACKUP_OLDEST_TIMESTAMP_SECONDS = gauge(
    "maintwatch_backup_oldest_timestamp_seconds", "Time of the oldest backup kept."
)
BACKUP_LAST_VERIFY_SUCCESS = gauge(
    "maintwatch_backup_last_verify_success",
    "1 if the newest settled backup passed its integrity check, 0 if it failed.",
)
BACKUP_LAST_VERIFY_TIMESTAMP_SECONDS = gauge(
    "maintwatch_backup_last_verify_timestamp_seconds",
    "When the integrity check reported by last_verify_success ran.",
)
BACKUP_SKIPPED_FILES = gauge(
    "maintwatch_backup_skipped_files",
    "Entries matching the set's glob that could not be read (a symlink loop, no access).",
)
BACKUP_VOLUME_FREE_BYTES = gauge(
    "maintwatch_backup_volume_free_bytes",
    "Bytes available to unprivileged users on the filesystem holding the backup set.",
)
BACKUP_VOLUME_SIZE_BYTES = gauge(
    "maintwatch_backup_volume_size_bytes", "Size of the filesystem holding the backup set."
)

_Scan = tuple[SetSummary, tuple[int, int]]


class BackupsCollector(Collector[BackupSetConfig]):
    """One backup set (`backups:` item), labelled `backup=<name>`."""

    kind = "backups"
    label = "backup"
    config_type = BackupSetConfig
    metrics = (
        BACKUP_MAX_AGE_SECONDS,
        BACKUP_RETENTION_SECONDS,
        BACKUP_FILES,
        BACKUP_SIZE_BYTES,
        BACKUP_LAST_TIMESTAMP_SECONDS,
        BACKUP_LAST_SIZE_BYTES,
        BACKUP_PREVIOUS_SIZE_BYTES,
        BACKUP_OLDEST_TIMESTAMP_SECONDS,
        BACKUP_LAST_VERIFY_SUCCESS,
        BACKUP_LAST_VERIFY_TIMESTAMP_SECONDS,
        BACKUP_SKIPPED_FILES,
        BACKUP_VOLUME_FREE_BYTES,
        BACKUP_VOLUME_SIZE_BYTES,
        *DRILL_METRICS,
    )

    def __init__(
        self, config: BackupSetConfig, context: Context, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(config, context)
        self._clock = clock
        self._glob = compile_glob(config.effective_glob())
        self._names = config.name_clock()
        self.verifier: Verifier | None = None
        self._skip_log = SkipLog(self.log, "backup_files_skipped")
        if config.verify != "none":
            check = partial(verify_file, verify=config.verify, pg_restore=config.pg_restore)
            self.verifier = Verifier(check, self.log, clock, budget=config.verify_budget)
        self.drills: Scheduler | None = None
        if config.restore is not None:
            self.drills = Scheduler(
                config.name,
                config.restore,
                context.state_dir,
                context.live_databases,
                self.log,
                clock,
            )

    def describe(self) -> str:
        """Return the set's files and where a backup's time comes from."""
        where = f"{self.config.directory}/{self.config.effective_glob()}"
        how = self._names.describe() if self._names is not None else "time from the mtime"
        return f"{where}: {how}"

    def static(self) -> Sequence[Metric]:
        """Return the configured cadence and retention."""
        ms = self.metric_set()
        ms.add(BACKUP_MAX_AGE_SECONDS, self.config.max_age)
        if self.config.retention is not None:
            ms.add(BACKUP_RETENTION_SECONDS, self.config.retention)
        if self.config.restore is not None:
            drill_static(ms, self.config.restore)
        return ms.families()

    async def refresh(self) -> Sequence[Metric]:
        """List the set, read the volume, and pick up the latest integrity result."""
        try:
            summary, space = await self._scan_once()
        except ScanError as exc:
            raise CollectError(str(exc)) from None
        self._skip_log.report(summary.skipped)
        result = None
        if self.verifier is not None:
            result = self.verifier.latest(summary.newest_settled)
        ms = self.metric_set()
        if self.drills is not None:
            target = drill_target(summary.newest_settled, self.verifier, result)
            self.drills.families(ms, target)
        return families(ms, summary, space, result)

    async def _scan_once(self) -> _Scan:
        # A scan thread cannot be cancelled: when a refresh times out (hung NFS mount), the
        # next refresh waits on the same scan instead of piling up another thread.
        settled_before_ns = int((self._clock() - self.config.settle) * 1e9)
        return await self.blocking.run(lambda: self._scan_blocking(settled_before_ns))

    def _scan_blocking(self, settled_before_ns: int) -> _Scan:
        directory = str(self.config.directory)
        summary = scan(directory, self._glob, self._names, settled_before_ns)
        return summary, volume(directory)

    async def close(self) -> None:
        """Stop a running integrity check and drill; a scan in progress finishes on its own."""
        if self.drills is not None:
            await self.drills.close()
        if self.verifier is not None:
            await self.verifier.close()


def families(
    ms: MetricSet, summary: SetSummary, space: tuple[int, int], result: VerifyResult | None
) -> list[Metric]:
    """Build the measured families of one set (pure: from the scan, volume and check result)."""
    ms.add(BACKUP_FILES, summary.files)
    ms.add(BACKUP_SIZE_BYTES, summary.total_bytes)
    if summary.newest is not None:
        ms.add(BACKUP_LAST_TIMESTAMP_SECONDS, summary.newest.when)
        ms.add(BACKUP_LAST_SIZE_BYTES, summary.newest.size)
    if summary.previous is not None:
        ms.add(BACKUP_PREVIOUS_SIZE_BYTES, summary.previous.size)
    if summary.oldest is not None:
        ms.add(BACKUP_OLDEST_TIMESTAMP_SECONDS, summary.oldest.when)
    if result is not None:
        ms.add(BACKUP_LAST_VERIFY_SUCCESS, 1 if result.ok else 0)
        ms.add(BACKUP_LAST_VERIFY_TIMESTAMP_SECONDS, result.checked_at)
    ms.add(BACKUP_SKIPPED_FILES, summary.skipped.count)
    free, size = space
    ms.add(BACKUP_VOLUME_FREE_BYTES, free)
    ms.add(BACKUP_VOLUME_SIZE_BYTES, size)
    return ms.families()
