"""The hosts & services dashboard: the exporters people already run and the SLO recording rules."""

from __future__ import annotations

from dashboards.builder import RATE_INTERVAL, Board, Panel, Query
from dashboards.levels import below, steps
from rules.model import Thresholds


def panels(t: Thresholds) -> list[Panel]:
    """Return host and service panels from node/blackbox/database exporters and SLOs."""
    return [
        Panel(
            "CPU busy",
            "Share of CPU time not idle (node_exporter).",
            "percentunit",
            [
                Query(
                    "1 - avg by (instance)"
                    f' (rate(node_cpu_seconds_total{{mode="idle"}}{RATE_INTERVAL}))',
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


BOARD = Board(
    stem="services",
    title="maintwatch: hosts & services",
    description="node/blackbox exporters and SLOs.",
    panels=panels,
)
