"""Panels of the databases, TLS, applications and hosts & services dashboards."""

from __future__ import annotations

from dashboards.builder import Panel, Query
from dashboards.levels import below, steps
from rules.model import Thresholds

R = "[$__rate_interval]"


def databases(t: Thresholds) -> list[Panel]:
    """Return the database panels."""
    return [
        Panel(
            "Connections used",
            "Connections as a share of max_connections.",
            "percentunit",
            [
                Query(
                    "sum by (database) (maintwatch_db_connections) / on (database)"
                    " (max by (database) (maintwatch_db_max_connections) > 0)",
                    "{{database}}",
                )
            ],
            thresholds=steps(t, "DatabaseConnectionsHigh"),
            runbooks=["DatabaseConnectionsHigh"],
        ),
        Panel(
            "Slow statements",
            "Statements whose mean time exceeds the slow threshold.",
            "short",
            [Query("maintwatch_db_slow_statements", "{{database}}")],
            thresholds=[(1, "warning")],
            runbooks=["DatabaseSlowStatements"],
        ),
        Panel(
            "Slow queries per minute",
            "The server's slow-query counter or slow-log entries.",
            "short",
            [Query(f"rate(maintwatch_db_slow_queries_total{R}) * 60", "{{database}}")],
            thresholds=steps(t, "DatabaseSlowQueriesRising"),
            runbooks=["DatabaseSlowQueriesRising"],
        ),
        Panel(
            "Slow query duration p95",
            "95th percentile of durations read from the slow log.",
            "s",
            [
                Query(
                    "histogram_quantile(0.95, sum by (database, le)"
                    f" (rate(maintwatch_db_slow_query_duration_seconds_bucket{R})))",
                    "{{database}}",
                )
            ],
        ),
        Panel(
            "Top statements by time",
            "Seconds per second spent in the top statements.",
            "s",
            [
                Query(
                    "topk(10, sum by (database, queryid)"
                    f" (rate(maintwatch_db_statement_seconds_total{R})))",
                    "{{database}} {{queryid}}",
                )
            ],
        ),
        Panel(
            "Mean statement time",
            "Mean time per call of the top statements.",
            "s",
            [
                Query(
                    f"sum by (database, queryid) (rate(maintwatch_db_statement_seconds_total{R}))"
                    f" / (sum by (database, queryid) (rate(maintwatch_db_statement_calls_total{R}))"
                    " > 0)",
                    "{{database}} {{queryid}}",
                )
            ],
            thresholds=[(0.1, "warning")],
        ),
    ]


def tls(t: Thresholds) -> list[Panel]:
    """Return the certificate panels."""
    return [
        Panel(
            "Leaf certificate expires in",
            "Time left until each leaf certificate expires.",
            "s",
            [Query("maintwatch_tls_cert_not_after_timestamp_seconds - time()", "{{target}}")],
            "stat",
            12,
            6,
            below(t, "TLSCertificateExpiringSoon"),
            ["TLSCertificateExpiringSoon", "TLSCertificateExpired"],
        ),
        Panel(
            "Chain expires in",
            "Time left until the earliest expiry in the presented chain.",
            "s",
            [Query("maintwatch_tls_chain_not_after_timestamp_seconds - time()", "{{target}}")],
            "stat",
            12,
            6,
            below(t, "TLSCertificateExpiringSoon"),
            ["TLSCertificateExpiringSoon"],
        ),
        Panel(
            "Verified",
            "Chain and host name verify (1) or not (0).",
            "bool_yes_no",
            [Query("maintwatch_tls_cert_verified", "{{target}}")],
            "stat",
            12,
            6,
            [(0, "critical"), (1, "ok")],
            ["TLSCertificateNotVerified"],
        ),
        Panel(
            "Probe success",
            "Handshake or file read succeeded (1) or not (0).",
            "bool_yes_no",
            [Query("maintwatch_tls_probe_success", "{{target}}")],
            "stat",
            12,
            6,
            [(0, "warning"), (1, "ok")],
            ["TLSProbeFailed"],
        ),
    ]


def apps(t: Thresholds) -> list[Panel]:
    """Return the application panels."""
    return [
        Panel(
            "Maintenance mode",
            "1 while the app is down for maintenance.",
            "bool_on_off",
            [Query("maintwatch_app_maintenance_mode", "{{app}}")],
            "stat",
            12,
            6,
            [(1, "warning")],
            ["AppMaintenanceModeTooLong"],
        ),
        Panel(
            "In maintenance for",
            "How long each app has been in maintenance mode.",
            "s",
            [
                Query(
                    "(time() - maintwatch_app_maintenance_since_timestamp_seconds)"
                    " and maintwatch_app_maintenance_mode == 1",
                    "{{app}}",
                )
            ],
            "stat",
            12,
            6,
            steps(t, "AppMaintenanceModeTooLong"),
            ["AppMaintenanceModeTooLong"],
        ),
        Panel(
            "Log lines per minute",
            "Log entries per minute by app and level.",
            "short",
            [
                Query(
                    f"sum by (app, level) (rate(maintwatch_log_messages_total{R})) * 60",
                    "{{app}} {{level}}",
                )
            ],
            thresholds=steps(t, "AppErrorRateHigh"),
            runbooks=["AppErrorRateHigh"],
        ),
        Panel(
            "Health check time",
            "Response time of each health endpoint.",
            "s",
            [Query("maintwatch_http_probe_duration_seconds", "{{target}}")],
            thresholds=steps(t, "HealthCheckSlow"),
            runbooks=["HealthCheckSlow"],
        ),
        Panel(
            "Health check up",
            "Health endpoint answered as expected (1) or not (0).",
            "bool_yes_no",
            [Query("maintwatch_http_probe_success", "{{target}}")],
            thresholds=[(0, "critical"), (1, "ok")],
            runbooks=["HealthCheckFailing"],
        ),
        Panel(
            "Watched directories",
            "Bytes in each watched directory (sandbox, uploads…).",
            "bytes",
            [Query("maintwatch_directory_size_bytes", "{{app}} {{directory}}")],
        ),
        Panel(
            "HTTP responses per minute",
            "Responses counted in access logs, by app and status class.",
            "short",
            [
                Query(
                    f"sum by (app, code) (rate(maintwatch_http_responses_total{R})) * 60",
                    "{{app}} {{code}}",
                )
            ],
        ),
        Panel(
            "HTTP 5xx share (access logs)",
            "Share of 5xx among the responses in each app's access logs.",
            "percentunit",
            [
                Query(
                    "sum by (app)"
                    f' (rate(maintwatch_http_responses_total{{code="5xx"}}{R}))'
                    f" / (sum by (app) (rate(maintwatch_http_responses_total{R})) > 0)",
                    "{{app}}",
                )
            ],
            thresholds=steps(t, "HTTPErrorRatioHigh"),
            runbooks=["HTTPErrorRatioHigh"],
        ),
    ]


def services(t: Thresholds) -> list[Panel]:
    """Return host and service panels from node/blackbox/database exporters and SLOs."""
    return [
        Panel(
            "CPU busy",
            "Share of CPU time not idle (node_exporter).",
            "percentunit",
            [
                Query(
                    f'1 - avg by (instance) (rate(node_cpu_seconds_total{{mode="idle"}}{R}))',
                    "{{instance}}",
                )
            ],
            thresholds=steps(t, "HostCPUHigh"),
            runbooks=["HostCPUHigh"],
        ),
        Panel(
            "Memory used",
            "Share of memory not available (node_exporter).",
            "percentunit",
            [
                Query(
                    "1 - node_memory_MemAvailable_bytes / (node_memory_MemTotal_bytes > 0)",
                    "{{instance}}",
                )
            ],
            thresholds=steps(t, "HostMemoryHigh"),
            runbooks=["HostMemoryHigh"],
        ),
        Panel(
            "Disk free",
            "Free share per filesystem (node_exporter).",
            "percentunit",
            [
                Query(
                    'node_filesystem_avail_bytes{fstype!~"tmpfs|overlay|squashfs|ramfs"}'
                    ' / (node_filesystem_size_bytes{fstype!~"tmpfs|overlay|squashfs|ramfs"} > 0)',
                    "{{instance}} {{mountpoint}}",
                )
            ],
            thresholds=below(t, "HostDiskSpaceLow"),
            runbooks=["HostDiskSpaceLow"],
        ),
        Panel(
            "Targets up",
            "Scrape targets up (1) or down (0).",
            "bool_yes_no",
            [Query("up", "{{job}} {{instance}}")],
            thresholds=[(0, "critical"), (1, "ok")],
            runbooks=["TargetDown"],
        ),
        Panel(
            "Probe error ratio",
            "Share of failed blackbox probes over 1 h and 5 m.",
            "percentunit",
            [
                Query("instance:probe_errors:ratio_rate1h", "{{instance}} 1h"),
                Query("instance:probe_errors:ratio_rate5m", "{{instance}} 5m"),
            ],
            runbooks=["EndpointDown", "ErrorBudgetBurnFast", "ErrorBudgetBurnSlow"],
        ),
        Panel(
            "HTTP error ratio",
            "Share of requests answered with 5xx, per job.",
            "percentunit",
            [Query("job:http_requests:error_ratio_rate5m", "{{job}}")],
            thresholds=steps(t, "HTTPErrorRatioHigh"),
            runbooks=["HTTPErrorRatioHigh"],
        ),
        Panel(
            "Database connections used",
            "postgres_exporter and mysqld_exporter.",
            "percentunit",
            [
                Query(
                    "sum by (instance) (pg_stat_activity_count) / on (instance)"
                    " (max by (instance) (pg_settings_max_connections) > 0)",
                    "{{instance}}",
                ),
                Query(
                    "max by (instance) (mysql_global_status_threads_connected) / on (instance)"
                    " (max by (instance) (mysql_global_variables_max_connections) > 0)",
                    "{{instance}}",
                ),
            ],
            thresholds=steps(t, "PostgresConnectionsHigh"),
            runbooks=["PostgresConnectionsHigh", "MySQLConnectionsHigh"],
            width=24,
        ),
    ]
