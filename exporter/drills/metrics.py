"""Drill metric families of one set (pure: from the config and the recorded state)."""

from __future__ import annotations

from exporter.drills.config import RestoreConfig
from exporter.drills.state import DrillState
from exporter.metrics import MetricSet, gauge

BACKUP_DRILL_EVERY_SECONDS = gauge(
    "maintwatch_backup_drill_every_seconds",
    "Configured interval between restore drills of the backup set.",
)
BACKUP_DRILL_RTO_SECONDS = gauge(
    "maintwatch_backup_drill_rto_seconds",
    "Configured recovery time objective the restore drill is compared with.",
)
BACKUP_DRILL_RUNNING = gauge(
    "maintwatch_backup_drill_running", "1 while a restore drill of the backup set runs."
)
BACKUP_DRILL_LAST_SUCCESS_TIMESTAMP_SECONDS = gauge(
    "maintwatch_backup_drill_last_success_timestamp_seconds",
    "When the last successful restore drill ended (until one has: when drills were first"
    " scheduled for the set).",
)
BACKUP_DRILL_LAST_TIMESTAMP_SECONDS = gauge(
    "maintwatch_backup_drill_last_timestamp_seconds", "When the last restore drill ended."
)
BACKUP_DRILL_SUCCESS = gauge(
    "maintwatch_backup_drill_success", "1 if the last restore drill passed."
)
BACKUP_DRILL_DURATION_SECONDS = gauge(
    "maintwatch_backup_drill_duration_seconds",
    "Recovery time of the last restore drill: scratch created, restored and checked.",
)
BACKUP_DRILL_RESTORED_BYTES = gauge(
    "maintwatch_backup_drill_restored_bytes",
    "Decompressed bytes the last restore drill fed to the restore.",
)
BACKUP_DRILL_TABLE_ROWS = gauge(
    "maintwatch_backup_drill_table_rows",
    "Rows of a checked table in the last restore drill.",
    "table",
)
BACKUP_DRILL_CHECK_SUCCESS = gauge(
    "maintwatch_backup_drill_check_success",
    "1 if a check of the last restore drill passed, 0 if it failed.",
    "check",
)
BACKUP_DRILL_FILES = gauge(
    "maintwatch_backup_drill_files", "Regular files extracted by the last tarball restore drill."
)
BACKUP_DRILL_SIZE_BYTES = gauge(
    "maintwatch_backup_drill_size_bytes", "Bytes extracted by the last tarball restore drill."
)


DRILL_METRICS = (
    BACKUP_DRILL_EVERY_SECONDS,
    BACKUP_DRILL_RTO_SECONDS,
    BACKUP_DRILL_RUNNING,
    BACKUP_DRILL_LAST_SUCCESS_TIMESTAMP_SECONDS,
    BACKUP_DRILL_LAST_TIMESTAMP_SECONDS,
    BACKUP_DRILL_SUCCESS,
    BACKUP_DRILL_DURATION_SECONDS,
    BACKUP_DRILL_RESTORED_BYTES,
    BACKUP_DRILL_TABLE_ROWS,
    BACKUP_DRILL_CHECK_SUCCESS,
    BACKUP_DRILL_FILES,
    BACKUP_DRILL_SIZE_BYTES,
)


def static_families(ms: MetricSet, config: RestoreConfig) -> None:
    """Add what config alone says: cadence and recovery time objective."""
    ms.add(BACKUP_DRILL_EVERY_SECONDS, config.every)
    ms.add(BACKUP_DRILL_RTO_SECONDS, config.rto)


def state_families(ms: MetricSet, state: DrillState, running: bool) -> None:
    """Add the recorded drill results."""
    ms.add(BACKUP_DRILL_RUNNING, 1 if running else 0)
    ms.add(
        BACKUP_DRILL_LAST_SUCCESS_TIMESTAMP_SECONDS,
        state.last_success if state.last_success is not None else state.since,
    )
    last = state.last
    if last is None:
        return
    ms.add(BACKUP_DRILL_LAST_TIMESTAMP_SECONDS, last.finished)
    ms.add(BACKUP_DRILL_SUCCESS, last.ok)
    ms.add(BACKUP_DRILL_DURATION_SECONDS, last.duration)
    ms.add(BACKUP_DRILL_RESTORED_BYTES, last.restored_bytes)
    for table, rows in sorted(last.rows.items()):
        ms.add(BACKUP_DRILL_TABLE_ROWS, rows, table=table)
    for check in last.checks:
        ms.add(BACKUP_DRILL_CHECK_SUCCESS, check.ok, check=check.name)
    if last.files is not None and last.size is not None:
        ms.add(BACKUP_DRILL_FILES, last.files)
        ms.add(BACKUP_DRILL_SIZE_BYTES, last.size)
