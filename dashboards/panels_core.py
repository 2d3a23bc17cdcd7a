"""Panels of the overview, backups and queues dashboards."""

from __future__ import annotations

from typing import Any

from dashboards.builder import Panel, Query
from dashboards.levels import below, steps
from rules.model import Thresholds

R = "[$__rate_interval]"


def overview(t: Thresholds) -> list[Panel]:
    """Return the 'is maintenance healthy?' panels."""
    stat: dict[str, Any] = {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background"}
    return [
        Panel(
            "Backup sets overdue",
            "Backup sets whose newest file is older than their own max age.",
            "short",
            [
                Query(
                    "count((time() - maintwatch_backup_last_timestamp_seconds)"
                    " > maintwatch_backup_max_age_seconds) or vector(0)"
                )
            ],
            "stat",
            4,
            5,
            [(1, "critical")],
            ["BackupTooOld"],
            stat,
        ),
        Panel(
            "Backups failing verification",
            "Sets whose newest file failed its integrity check.",
            "short",
            [Query("count(maintwatch_backup_last_verify_success == 0) or vector(0)")],
            "stat",
            4,
            5,
            [(1, "critical")],
            ["BackupVerifyFailed"],
            stat,
        ),
        Panel(
            "Largest queue backlog",
            "Pending jobs on the busiest queue.",
            "short",
            [Query('max(maintwatch_queue_jobs{state="pending"})')],
            "stat",
            4,
            5,
            steps(t, "QueueBacklogHigh"),
            ["QueueBacklogHigh"],
            stat,
        ),
        Panel(
            "Failed jobs (24 h)",
            "Jobs that landed in failed_jobs over the last day.",
            "short",
            [Query("sum(increase(maintwatch_failed_jobs_total[1d])) or vector(0)")],
            "stat",
            4,
            5,
            [(1, "warning")],
            ["FailedJobsAppearing"],
            stat,
        ),
        Panel(
            "Slow statements",
            "Statements whose mean time exceeds the slow threshold.",
            "short",
            [Query("sum(maintwatch_db_slow_statements) or vector(0)")],
            "stat",
            4,
            5,
            [(1, "warning")],
            ["DatabaseSlowStatements"],
            stat,
        ),
        Panel(
            "Soonest certificate expiry",
            "Time left on the certificate that expires first.",
            "s",
            [Query("min(maintwatch_tls_cert_not_after_timestamp_seconds - time())")],
            "stat",
            4,
            5,
            below(t, "TLSCertificateExpiringSoon"),
            ["TLSCertificateExpiringSoon"],
            stat,
        ),
        Panel(
            "Workers not running",
            "Supervisor processes neither RUNNING nor STOPPED on purpose.",
            "short",
            [
                Query(
                    'sum(maintwatch_supervisor_processes{state!~"(?i)running|stopped"})'
                    " or vector(0)"
                )
            ],
            "stat",
            4,
            5,
            [(1, "warning")],
            ["QueueWorkersMissing"],
            stat,
        ),
        Panel(
            "Collectors down",
            "maintwatch collectors whose last refresh failed.",
            "short",
            [Query("count(maintwatch_collector_up == 0) or vector(0)")],
            "stat",
            4,
            5,
            [(1, "warning")],
            ["MaintwatchCollectorDown"],
            stat,
        ),
        Panel(
            "Apps in maintenance",
            "Applications currently down for maintenance.",
            "short",
            [Query("sum(maintwatch_app_maintenance_mode) or vector(0)")],
            "stat",
            4,
            5,
            [(1, "warning")],
            ["AppMaintenanceModeTooLong"],
            stat,
        ),
        Panel(
            "Firing alerts",
            "maintwatch alerts firing now, by severity.",
            "short",
            [
                Query(
                    'count by (severity) (ALERTS{alertstate="firing", alertname!="Watchdog"})',
                    "{{severity}}",
                )
            ],
            "stat",
            12,
            5,
            [(1, "critical")],
            (),
            stat,
        ),
        Panel(
            "Backup age / max age",
            "Newest backup's age as a multiple of its set's max age.",
            "short",
            [
                Query(
                    "(time() - maintwatch_backup_last_timestamp_seconds)"
                    " / (maintwatch_backup_max_age_seconds > 0)",
                    "{{backup}}",
                )
            ],
            thresholds=steps(t, "BackupTooOld"),
            runbooks=["BackupTooOld"],
        ),
        Panel(
            "Failed jobs per minute",
            "Rate of new failed jobs by queue.",
            "short",
            [Query(f"sum by (queue) (rate(maintwatch_failed_jobs_total{R})) * 60", "{{queue}}")],
            runbooks=["FailedJobsAppearing", "FailedJobsBurst"],
        ),
    ]


def backups(t: Thresholds) -> list[Panel]:
    """Return the backups panels."""
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


def queues(t: Thresholds) -> list[Panel]:
    """Return the queues and workers panels."""
    return [
        Panel(
            "Jobs by state",
            "Jobs per queue and state (pending, delayed, reserved, failed).",
            "short",
            [Query("sum by (queue, state) (maintwatch_queue_jobs)", "{{queue}} {{state}}")],
            thresholds=steps(t, "QueueBacklogHigh"),
            runbooks=["QueueBacklogHigh"],
        ),
        Panel(
            "Backlog growth",
            "Change of pending jobs per minute (sustained > 0: falling behind).",
            "short",
            [
                Query(
                    'sum by (queue) (deriv(maintwatch_queue_jobs{state="pending"}[10m])) * 60',
                    "{{queue}}",
                )
            ],
            thresholds=steps(t, "QueueBacklogGrowing"),
            runbooks=["QueueBacklogGrowing"],
        ),
        Panel(
            "Oldest pending job",
            "How long the oldest pending job has waited.",
            "s",
            [Query("time() - (maintwatch_queue_oldest_job_timestamp_seconds > 0)", "{{queue}}")],
            thresholds=steps(t, "QueueOldestJobTooOld"),
            runbooks=["QueueOldestJobTooOld"],
        ),
        Panel(
            "Failed jobs per minute",
            "New failed jobs by queue.",
            "short",
            [Query(f"sum by (queue) (rate(maintwatch_failed_jobs_total{R})) * 60", "{{queue}}")],
            runbooks=["FailedJobsAppearing", "FailedJobsBurst"],
        ),
        Panel(
            "Failed jobs kept",
            "Rows in failed_jobs, and jobs in Redis failed sets (BullMQ, RQ, Sidekiq), by queue.",
            "short",
            [
                Query(
                    "sum by (database, queue) (maintwatch_failed_jobs_rows)",
                    "{{database}} {{queue}}",
                ),
                Query(
                    'sum by (connection, queue) (maintwatch_queue_jobs{state="failed"})',
                    "{{connection}} {{queue}}",
                ),
            ],
            runbooks=["FailedJobsStanding"],
        ),
        Panel(
            "Supervisor processes",
            "Worker processes per group and state.",
            "short",
            [
                Query(
                    "sum by (group, state) (maintwatch_supervisor_processes)", "{{group}} {{state}}"
                )
            ],
            runbooks=["QueueWorkersDown", "QueueWorkersMissing"],
        ),
        Panel(
            "Worker restarts per hour",
            "Restarts observed by Supervisor (crash loops).",
            "short",
            [
                Query(
                    f"sum by (group) (rate(maintwatch_supervisor_process_restarts_total{R}))"
                    " * 3600",
                    "{{group}}",
                )
            ],
        ),
        Panel(
            "Newest failed job",
            "Time since the newest failed_jobs row: read from the table, so restarts keep it.",
            "s",
            [
                Query(
                    "time() - max by (database, queue)"
                    " (maintwatch_failed_jobs_last_timestamp_seconds)",
                    "{{database}} {{queue}}",
                )
            ],
            runbooks=["FailedJobsAppearing"],
        ),
    ]
