"""Drill metric families of one set (pure: from the config and the recorded state)."""

from __future__ import annotations

from exporter.drills.config import RestoreConfig
from exporter.drills.state import DrillState
from exporter.metrics import MetricSet


def static_families(ms: MetricSet, config: RestoreConfig) -> None:
    """Add what config alone says: cadence and recovery time objective."""
    ms.gauge(
        "maintwatch_backup_drill_every_seconds",
        "Configured interval between restore drills of the backup set.",
        config.every,
    )
    ms.gauge(
        "maintwatch_backup_drill_rto_seconds",
        "Configured recovery time objective the restore drill is compared with.",
        config.rto,
    )


def state_families(ms: MetricSet, state: DrillState, running: bool) -> None:
    """Add the recorded drill results."""
    ms.gauge(
        "maintwatch_backup_drill_running",
        "1 while a restore drill of the backup set runs.",
        1 if running else 0,
    )
    ms.gauge(
        "maintwatch_backup_drill_last_success_timestamp_seconds",
        "When the last successful restore drill ended (until one has: when drills were first"
        " scheduled for the set).",
        state.last_success if state.last_success is not None else state.since,
    )
    last = state.last
    if last is None:
        return
    ms.gauge(
        "maintwatch_backup_drill_last_timestamp_seconds",
        "When the last restore drill ended.",
        last.finished,
    )
    ms.gauge("maintwatch_backup_drill_success", "1 if the last restore drill passed.", last.ok)
    ms.gauge(
        "maintwatch_backup_drill_duration_seconds",
        "Recovery time of the last restore drill: scratch created, restored and checked.",
        last.duration,
    )
    ms.gauge(
        "maintwatch_backup_drill_restored_bytes",
        "Decompressed bytes the last restore drill fed to the restore.",
        last.restored_bytes,
    )
    for table, rows in sorted(last.rows.items()):
        ms.gauge(
            "maintwatch_backup_drill_table_rows",
            "Rows of a checked table in the last restore drill.",
            rows,
            table=table,
        )
    for check in last.checks:
        ms.gauge(
            "maintwatch_backup_drill_check_success",
            "1 if a check of the last restore drill passed, 0 if it failed.",
            check.ok,
            check=check.name,
        )
    if last.files is not None and last.size is not None:
        ms.gauge(
            "maintwatch_backup_drill_files",
            "Regular files extracted by the last tarball restore drill.",
            last.files,
        )
        ms.gauge(
            "maintwatch_backup_drill_size_bytes",
            "Bytes extracted by the last tarball restore drill.",
            last.size,
        )
