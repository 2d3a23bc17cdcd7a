"""The backups dashboard: freshness, size, rotation and integrity of each set; restore drills."""

from __future__ import annotations

from dashboards.builder import Board, Panel, Query
from dashboards.levels import below
from rules.model import Thresholds


def backup_sets(t: Thresholds) -> list[Panel]:
    """Return the panels of the backup sets: freshness, size, rotation, volume, integrity."""
    return [
        Panel(
            "Newest backup age",
            "Age of each set's newest backup (compare with its max age).",
            "s",
            [
                Query("time() - maintwatch_backup_last_timestamp_seconds", "{{backup}}"),
                Query("maintwatch_backup_max_age_seconds", "{{backup}} max age"),
            ],
            runbooks=["BackupTooOld"],
        ),
        Panel(
            "Newest vs previous size",
            "Size consistency: newest backup over the previous one.",
            "percentunit",
            [
                Query(
                    "maintwatch_backup_last_size_bytes"
                    " / (maintwatch_backup_previous_size_bytes > 0)",
                    "{{backup}}",
                )
            ],
            thresholds=[
                (t.alerts["BackupSizeDropped"].effective_tiers()[0].threshold, "ok"),
                (t.alerts["BackupSizeJumped"].effective_tiers()[0].threshold, "info"),
            ],
            runbooks=["BackupSizeDropped", "BackupSizeJumped"],
        ),
        Panel(
            "Files per set",
            "Backup files kept per set (0 means nothing to restore).",
            "short",
            [Query("maintwatch_backup_files", "{{backup}}")],
            runbooks=["BackupMissing"],
        ),
        Panel(
            "Set size",
            "Total bytes per set and newest backup size.",
            "bytes",
            [
                Query("maintwatch_backup_size_bytes", "{{backup}} total"),
                Query("maintwatch_backup_last_size_bytes", "{{backup}} newest"),
            ],
        ),
        Panel(
            "Oldest backup age vs retention",
            "Rotation: oldest kept backup against retention.",
            "s",
            [
                Query("time() - maintwatch_backup_oldest_timestamp_seconds", "{{backup}}"),
                Query("maintwatch_backup_retention_seconds", "{{backup}} retention"),
            ],
            runbooks=["BackupRotationBroken"],
        ),
        Panel(
            "Backup volume free",
            "Free share of the filesystem holding each set.",
            "percentunit",
            [
                Query(
                    "maintwatch_backup_volume_free_bytes"
                    " / (maintwatch_backup_volume_size_bytes > 0)",
                    "{{backup}}",
                )
            ],
            thresholds=below(t, "HostDiskSpaceLow"),
            runbooks=["BackupVolumeFillingUp"],
        ),
        Panel(
            "Integrity check",
            "1 when the newest file passed its check, 0 when it failed.",
            "bool_yes_no",
            [Query("maintwatch_backup_last_verify_success", "{{backup}}")],
            "stat",
            12,
            6,
            [(0, "critical"), (1, "ok")],
            ["BackupVerifyFailed"],
        ),
        Panel(
            "Last integrity check",
            "When each set's newest file was last checked.",
            "dateTimeFromNow",
            [Query("maintwatch_backup_last_verify_timestamp_seconds * 1000", "{{backup}}")],
            "stat",
            12,
            6,
        ),
    ]


def restore_drills(t: Thresholds) -> list[Panel]:
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


def panels(t: Thresholds) -> list[Panel]:
    """Return the backup-set panels, then the restore-drill row."""
    return [*backup_sets(t), *restore_drills(t)]


BOARD = Board(
    stem="backups",
    title="maintwatch: backups",
    description="Backup freshness, size, rotation, integrity, restore drills.",
    panels=panels,
)
