"""The exporter's metric catalogue (DESIGN.md §2): names rules and dashboards may use."""

from __future__ import annotations

import re

GAUGE, COUNTER, HISTOGRAM = "gauge", "counter", "histogram"

METRICS: dict[str, str] = {
    # self and health
    "maintwatch_build_info": GAUGE,
    "maintwatch_collector_up": GAUGE,
    "maintwatch_collector_duration_seconds": GAUGE,
    "maintwatch_collector_last_success_timestamp_seconds": GAUGE,
    "maintwatch_collector_errors_total": COUNTER,
    # backups
    "maintwatch_backup_files": GAUGE,
    "maintwatch_backup_size_bytes": GAUGE,
    "maintwatch_backup_last_timestamp_seconds": GAUGE,
    "maintwatch_backup_last_size_bytes": GAUGE,
    "maintwatch_backup_previous_size_bytes": GAUGE,
    "maintwatch_backup_oldest_timestamp_seconds": GAUGE,
    "maintwatch_backup_max_age_seconds": GAUGE,
    "maintwatch_backup_retention_seconds": GAUGE,
    "maintwatch_backup_last_verify_success": GAUGE,
    "maintwatch_backup_last_verify_timestamp_seconds": GAUGE,
    "maintwatch_backup_volume_free_bytes": GAUGE,
    "maintwatch_backup_volume_size_bytes": GAUGE,
    "maintwatch_backup_skipped_files": GAUGE,
    # queues and failed jobs
    "maintwatch_queue_jobs": GAUGE,
    "maintwatch_queue_oldest_job_timestamp_seconds": GAUGE,
    # DESIGN's `maintwatch_failed_jobs` gauge would share its OpenMetrics family name with the
    # `maintwatch_failed_jobs_total` counter; the gauge is `_rows` instead (see CHANGELOG).
    "maintwatch_failed_jobs_rows": GAUGE,
    "maintwatch_failed_jobs_total": COUNTER,
    "maintwatch_failed_jobs_last_timestamp_seconds": GAUGE,
    # databases
    "maintwatch_db_connections": GAUGE,
    "maintwatch_db_max_connections": GAUGE,
    "maintwatch_db_slow_statements": GAUGE,
    "maintwatch_db_statement_calls_total": COUNTER,
    "maintwatch_db_statement_seconds_total": COUNTER,
    "maintwatch_db_statement_info": GAUGE,
    "maintwatch_db_slow_queries_total": COUNTER,
    "maintwatch_db_slow_query_duration_seconds": HISTOGRAM,
    # TLS
    "maintwatch_tls_probe_success": GAUGE,
    "maintwatch_tls_files": GAUGE,
    "maintwatch_tls_cert_not_after_timestamp_seconds": GAUGE,
    "maintwatch_tls_cert_not_before_timestamp_seconds": GAUGE,
    "maintwatch_tls_chain_not_after_timestamp_seconds": GAUGE,
    "maintwatch_tls_cert_verified": GAUGE,
    "maintwatch_tls_cert_info": GAUGE,
    # Supervisor
    "maintwatch_supervisor_process_state": GAUGE,
    "maintwatch_supervisor_processes": GAUGE,
    "maintwatch_supervisor_process_start_timestamp_seconds": GAUGE,
    "maintwatch_supervisor_process_exit_code": GAUGE,
    "maintwatch_supervisor_process_restarts_total": COUNTER,
    # applications
    "maintwatch_app_maintenance_mode": GAUGE,
    "maintwatch_app_maintenance_since_timestamp_seconds": GAUGE,
    "maintwatch_log_messages_total": COUNTER,
    "maintwatch_http_responses_total": COUNTER,
    "maintwatch_log_skipped_files": GAUGE,
    "maintwatch_directory_size_bytes": GAUGE,
    "maintwatch_directory_files": GAUGE,
    "maintwatch_http_probe_success": GAUGE,
    "maintwatch_http_probe_duration_seconds": GAUGE,
    "maintwatch_http_probe_status_code": GAUGE,
    # restore drills (backups[].restore)
    "maintwatch_backup_drill_every_seconds": GAUGE,
    "maintwatch_backup_drill_rto_seconds": GAUGE,
    "maintwatch_backup_drill_running": GAUGE,
    "maintwatch_backup_drill_last_timestamp_seconds": GAUGE,
    "maintwatch_backup_drill_last_success_timestamp_seconds": GAUGE,
    "maintwatch_backup_drill_success": GAUGE,
    "maintwatch_backup_drill_duration_seconds": GAUGE,
    "maintwatch_backup_drill_restored_bytes": GAUGE,
    "maintwatch_backup_drill_table_rows": GAUGE,
    "maintwatch_backup_drill_check_success": GAUGE,
    "maintwatch_backup_drill_files": GAUGE,
    "maintwatch_backup_drill_size_bytes": GAUGE,
}

_NAME = re.compile(r"\bmaintwatch_[a-z0-9_]+")
_HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def series_names(expr: str) -> set[str]:
    """Return the catalogue metric each `maintwatch_*` name in a PromQL expression refers to."""
    names = set()
    for name in _NAME.findall(expr):
        for suffix in _HISTOGRAM_SUFFIXES:
            base = name.removesuffix(suffix)
            if base != name and METRICS.get(base) == HISTOGRAM:
                name = base
        names.add(name)
    return names


def unknown_metrics(expr: str) -> set[str]:
    """Return the `maintwatch_*` names in `expr` that are not in the catalogue."""
    return {n for n in series_names(expr) if n not in METRICS}
