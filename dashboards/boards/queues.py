"""The queues & workers dashboard: jobs by state, failed jobs, Supervisor processes."""

from __future__ import annotations

from dashboards.builder import RATE_INTERVAL, Board, Panel, Query
from dashboards.levels import steps
from rules.model import Thresholds


def panels(t: Thresholds) -> list[Panel]:
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
            [
                Query(
                    f"sum by (queue) (rate(maintwatch_failed_jobs_total{RATE_INTERVAL})) * 60",
                    "{{queue}}",
                )
            ],
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
                    "sum by (group)"
                    f" (rate(maintwatch_supervisor_process_restarts_total{RATE_INTERVAL}))"
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


BOARD = Board(
    stem="queues",
    title="maintwatch: queues & workers",
    description="Queues, failed jobs, Supervisor.",
    panels=panels,
)
