"""The overview dashboard: one stat per area, then the two trends worth watching daily."""

from __future__ import annotations

from dashboards.builder import RATE_INTERVAL, Board, Panel, Query, glance
from dashboards.levels import below, steps
from rules.model import Thresholds


def panels(t: Thresholds) -> list[Panel]:
    """Return the 'is maintenance healthy?' panels."""
    return [
        glance(
            "Backup sets overdue",
            "Backup sets whose newest file is older than their own max age.",
            "short",
            [
                Query(
                    "count((time() - maintwatch_backup_last_timestamp_seconds)"
                    " > maintwatch_backup_max_age_seconds) or vector(0)"
                )
            ],
            [(1, "critical")],
            ["BackupTooOld"],
        ),
        glance(
            "Backups failing verification",
            "Sets whose newest file failed its integrity check.",
            "short",
            [Query("count(maintwatch_backup_last_verify_success == 0) or vector(0)")],
            [(1, "critical")],
            ["BackupVerifyFailed"],
        ),
        glance(
            "Largest queue backlog",
            "Pending jobs on the busiest queue.",
            "short",
            [Query('max(maintwatch_queue_jobs{state="pending"})')],
            steps(t, "QueueBacklogHigh"),
            ["QueueBacklogHigh"],
        ),
        glance(
            "Failed jobs (24 h)",
            "Jobs that landed in failed_jobs over the last day.",
            "short",
            [Query("sum(increase(maintwatch_failed_jobs_total[1d])) or vector(0)")],
            [(1, "warning")],
            ["FailedJobsAppearing"],
        ),
        glance(
            "Slow statements",
            "Statements whose mean time exceeds the slow threshold.",
            "short",
            [Query("sum(maintwatch_db_slow_statements) or vector(0)")],
            [(1, "warning")],
            ["DatabaseSlowStatements"],
        ),
        glance(
            "Soonest certificate expiry",
            "Time left on the certificate that expires first.",
            "s",
            [Query("min(maintwatch_tls_cert_not_after_timestamp_seconds - time())")],
            below(t, "TLSCertificateExpiringSoon"),
            ["TLSCertificateExpiringSoon"],
        ),
        glance(
            "Workers not running",
            "Supervisor processes neither RUNNING nor STOPPED on purpose.",
            "short",
            [
                Query(
                    'sum(maintwatch_supervisor_processes{state!~"(?i)running|stopped"})'
                    " or vector(0)"
                )
            ],
            [(1, "warning")],
            ["QueueWorkersMissing"],
        ),
        glance(
            "Collectors down",
            "maintwatch collectors whose last refresh failed.",
            "short",
            [Query("count(maintwatch_collector_up == 0) or vector(0)")],
            [(1, "warning")],
            ["MaintwatchCollectorDown"],
        ),
        glance(
            "Apps in maintenance",
            "Applications currently down for maintenance.",
            "short",
            [Query("sum(maintwatch_app_maintenance_mode) or vector(0)")],
            [(1, "warning")],
            ["AppMaintenanceModeTooLong"],
        ),
        glance(
            "Firing alerts",
            "maintwatch alerts firing now, by severity.",
            "short",
            [
                Query(
                    'count by (severity) (ALERTS{alertstate="firing", alertname!="Watchdog"})',
                    "{{severity}}",
                )
            ],
            [(1, "critical")],
            width=12,
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
            [
                Query(
                    f"sum by (queue) (rate(maintwatch_failed_jobs_total{RATE_INTERVAL})) * 60",
                    "{{queue}}",
                )
            ],
            runbooks=["FailedJobsAppearing", "FailedJobsBurst"],
        ),
    ]


BOARD = Board(
    stem="overview",
    title="maintwatch: overview",
    description="Is maintenance healthy?",
    panels=panels,
)
