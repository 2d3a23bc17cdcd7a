"""The applications dashboard: maintenance mode, log levels, health checks, access logs."""

from __future__ import annotations

from dashboards.builder import RATE_INTERVAL, Board, Panel, Query
from dashboards.levels import steps
from rules.model import Thresholds


def panels(t: Thresholds) -> list[Panel]:
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
                    "sum by (app, level)"
                    f" (rate(maintwatch_log_messages_total{RATE_INTERVAL})) * 60",
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
                    "sum by (app, code)"
                    f" (rate(maintwatch_http_responses_total{RATE_INTERVAL})) * 60",
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
                    f' (rate(maintwatch_http_responses_total{{code="5xx"}}{RATE_INTERVAL}))'
                    f" / (sum by (app) (rate(maintwatch_http_responses_total{RATE_INTERVAL})) > 0)",
                    "{{app}}",
                )
            ],
            thresholds=steps(t, "HTTPErrorRatioHigh"),
            runbooks=["HTTPErrorRatioHigh"],
        ),
    ]


BOARD = Board(
    stem="apps",
    title="maintwatch: applications",
    description="Maintenance mode, logs, health checks.",
    panels=panels,
)
