"""Metrics more than one collector emits, declared once so they share one HELP and label set."""

from __future__ import annotations

from exporter.metrics import counter, gauge

LOG_SKIPPED_FILES = gauge(
    "maintwatch_log_skipped_files",
    "Log files matching the configured paths that could not be read (a symlink loop).",
)
DB_SLOW_QUERIES_TOTAL = counter(
    "maintwatch_db_slow_queries_total",
    "Slow queries: counted by the server (MySQL/MariaDB Slow_queries), or entries read from"
    " its slow query log since the exporter started.",
)
QUEUE_JOBS = gauge(
    "maintwatch_queue_jobs",
    "Jobs in the queue by state (pending, delayed, reserved, failed).",
    "queue",
    "state",
)
QUEUE_OLDEST_JOB_TIMESTAMP_SECONDS = gauge(
    "maintwatch_queue_oldest_job_timestamp_seconds",
    "Enqueue time of the oldest pending job, where the queue tells.",
    "queue",
)
