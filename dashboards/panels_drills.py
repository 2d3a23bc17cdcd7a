"""The restore-drill row of the backups dashboard: results, duration against RTO, contents."""

from __future__ import annotations

from dashboards.builder import Panel, Query
from rules.model import Thresholds


def drills(t: Thresholds) -> list[Panel]:
    """Return the restore-drill panels (a full-width row of three)."""
    rto = t.alerts["BackupDrillSlowerThanRTO"].effective_tiers()[0].threshold
    return [
        Panel(
            "Restore drills: result",
            "1 while the last restore drill passed, 0 after a failure; steps show each drill.",
            "short",
            [
                Query("maintwatch_backup_drill_success", "{{backup}} passed"),
                Query("maintwatch_backup_drill_running", "{{backup}} running"),
            ],
            width=8,
            runbooks=["BackupDrillFailed", "BackupDrillOverdue"],
        ),
        Panel(
            "Restore drill duration vs RTO",
            "Recovery time of the last drill (restore and checks) against the set's RTO.",
            "s",
            [
                Query("maintwatch_backup_drill_duration_seconds", "{{backup}} drill"),
                Query(f"{rto:g} * maintwatch_backup_drill_rto_seconds", "{{backup}} RTO"),
            ],
            width=8,
            runbooks=["BackupDrillSlowerThanRTO"],
        ),
        Panel(
            "Restored by the last drill",
            "Rows per checked table (databases) and files extracted (tarballs).",
            "short",
            [
                Query("maintwatch_backup_drill_table_rows", "{{backup}} {{table}} rows"),
                Query("maintwatch_backup_drill_files", "{{backup}} files"),
            ],
            width=8,
        ),
    ]
