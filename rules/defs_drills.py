"""Alerts on restore drills: a drill failed, none succeeded lately, recovery slower than RTO."""

from __future__ import annotations

from rules.defs import AlertDef

DRILLS = [
    AlertDef(
        "BackupDrillFailed",
        "drills",
        "maintwatch_backup_drill_success{@sel@} == 0",
        "The last restore drill of a backup set failed: the newest backup may not restore.",
        "The last restore drill of backup set {{ $labels.backup }} on {{ $labels.instance }}"
        " failed (refused, restore error or a failed check); the reason is in the exporter's"
        " log (event=backup_drill_failed) and in `maintwatch-exporter drill {{ $labels.backup }}`.",
    ),
    AlertDef(
        "BackupDrillOverdue",
        "drills",
        "(time() - maintwatch_backup_drill_last_success_timestamp_seconds{@sel@})"
        " > @threshold@ * maintwatch_backup_drill_every_seconds{@sel@}",
        "No restore drill of a backup set has succeeded within its schedule.",
        "Backup set {{ $labels.backup }} on {{ $labels.instance }} has had no successful"
        " restore drill for {{ $value | humanizeDuration }}, more than @threshold@ × its"
        " drill interval (maintwatch_backup_drill_every_seconds).",
    ),
    AlertDef(
        "BackupDrillSlowerThanRTO",
        "drills",
        "maintwatch_backup_drill_duration_seconds{@sel@}"
        " > @threshold@ * maintwatch_backup_drill_rto_seconds{@sel@}",
        "Restoring a backup set took longer than its recovery time objective.",
        "The last restore drill of backup set {{ $labels.backup }} on {{ $labels.instance }}"
        " took {{ $value | humanizeDuration }}, more than @threshold@ × its recovery time"
        " objective (maintwatch_backup_drill_rto_seconds).",
    ),
]
