"""The databases dashboard: connections, slow queries and the statements that take the time."""

from __future__ import annotations

from dashboards.builder import RATE_INTERVAL, Board, Panel, Query
from dashboards.levels import steps
from rules.model import Thresholds


def panels(t: Thresholds) -> list[Panel]:
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
            [Query(f"rate(maintwatch_db_slow_queries_total{RATE_INTERVAL}) * 60", "{{database}}")],
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
                    f" (rate(maintwatch_db_slow_query_duration_seconds_bucket{RATE_INTERVAL})))",
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
                    f" (rate(maintwatch_db_statement_seconds_total{RATE_INTERVAL})))",
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
                    "sum by (database, queryid)"
                    f" (rate(maintwatch_db_statement_seconds_total{RATE_INTERVAL}))"
                    " / (sum by (database, queryid)"
                    f" (rate(maintwatch_db_statement_calls_total{RATE_INTERVAL}))"
                    " > 0)",
                    "{{database}} {{queryid}}",
                )
            ],
            thresholds=[(0.1, "warning")],
        ),
    ]


BOARD = Board(
    stem="databases",
    title="maintwatch: databases",
    description="Connections and slow queries.",
    panels=panels,
)
