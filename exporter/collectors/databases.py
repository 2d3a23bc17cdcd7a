"""Databases: failed jobs, database queues, connections and slow statements (PG, MySQL)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Annotated, Any, ClassVar, Literal

from prometheus_client.core import Metric
from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from exporter.collectors.base import CollectError, Collector, Context
from exporter.collectors.shared_metrics import (
    DB_SLOW_QUERIES_TOTAL,
    QUEUE_JOBS,
    QUEUE_OLDEST_JOB_TIMESTAMP_SECONDS,
)
from exporter.config import InstanceConfig
from exporter.metrics import MetricDef, MetricSet, counter, gauge
from exporter.sql import (
    SqlError,
    Target,
    check_identifier,
    open_driver,
    parse_dsn,
    queries,
    readers,
)
from maintwatch.configload import Duration, SecretFromFile, StrictModel

DB_CONNECTIONS = gauge("maintwatch_db_connections", "Client connections by state.", "state")
DB_MAX_CONNECTIONS = gauge(
    "maintwatch_db_max_connections", "Server connection limit (max_connections)."
)
DB_RESERVED_CONNECTIONS = gauge(
    "maintwatch_db_reserved_connections",
    "Connections of max_connections reserved for superusers (0 on MySQL/MariaDB).",
)
DB_SLOW_STATEMENTS = gauge(
    "maintwatch_db_slow_statements",
    "Statements whose mean execution time exceeds the configured threshold.",
)
DB_STATEMENT_CALLS_TOTAL = counter(
    "maintwatch_db_statement_calls_total", "Calls of the top statements by total time.", "queryid"
)
DB_STATEMENT_SECONDS_TOTAL = counter(
    "maintwatch_db_statement_seconds_total",
    "Execution time of the top statements by total time.",
    "queryid",
)
DB_STATEMENT_INFO = gauge(
    "maintwatch_db_statement_info",
    "Normalized, truncated text of a top statement.",
    "queryid",
    "query",
)
# DESIGN §2 names this gauge `maintwatch_failed_jobs`, but next to the counter
# `maintwatch_failed_jobs_total` that is one OpenMetrics family name used twice (gauge and
# counter), which makes the whole scrape unparsable; see docs/exporter/databases.md.
FAILED_JOBS_ROWS = gauge(
    "maintwatch_failed_jobs_rows",
    "Rows in the failed jobs table.",
    "queue",
    optional=("job_class",),
)
FAILED_JOBS_TOTAL = counter(
    "maintwatch_failed_jobs_total",
    "Failed jobs recorded since the exporter started (rows past the id watermark).",
    "queue",
)
FAILED_JOBS_LAST_TIMESTAMP_SECONDS = gauge(
    "maintwatch_failed_jobs_last_timestamp_seconds", "Time of the newest failed job.", "queue"
)


def _toggle(value: Any) -> Any:
    """Accept `true`/`false` as shorthand for a feature block with default settings."""
    if isinstance(value, bool):
        return {"enabled": value}
    return value


Table = Annotated[str, AfterValidator(check_identifier)]


class Feature(StrictModel):
    """A feature block: present (or `true`) turns it on."""

    enabled: bool = True


class ConnectionsConfig(Feature):
    """Connections by state and the server limit (on by default)."""


class FailedJobsConfig(Feature):
    """Laravel `failed_jobs` table."""

    table: Table = "failed_jobs"
    by_job: bool = False
    top_jobs: int = Field(20, ge=1, le=1000)


class QueueTableConfig(Feature):
    """Laravel `jobs` table (the database queue driver)."""

    table: Table = "jobs"
    connection: str | None = Field(None, min_length=1)
    queues: list[str] = Field(default_factory=list)


class StatementsConfig(Feature):
    """Slow statements: pg_stat_statements or performance_schema digests, Slow_queries."""

    slow_threshold: Duration = Field(0.1, gt=0)
    top: int = Field(20, ge=0, le=500)
    query_length: int = Field(200, ge=16, le=4000)
    digests: bool = True


class DatabaseConfig(InstanceConfig):
    """One database: where it is and which features to read."""

    driver: Literal["postgres", "mysql"]
    dsn: str = Field(min_length=1)
    password_file: SecretFromFile | None = None
    connect_timeout: Duration = Field(5.0, gt=0)
    statement_timeout: Duration = Field(5.0, gt=0)
    connections: Annotated[ConnectionsConfig, BeforeValidator(_toggle)] = ConnectionsConfig()
    failed_jobs: Annotated[FailedJobsConfig | None, BeforeValidator(_toggle)] = None
    queue_table: Annotated[QueueTableConfig | None, BeforeValidator(_toggle)] = None
    statements: Annotated[StatementsConfig | None, BeforeValidator(_toggle)] = None

    @model_validator(mode="after")
    def _check_dsn(self) -> DatabaseConfig:
        try:
            parse_dsn(self.driver, self.dsn)
        except ValueError as exc:
            raise ValueError(f"dsn: {exc}") from None
        return self

    def target(self) -> Target:
        """Return the connection target (password file wins over a password in the URL)."""
        host, port, user, database, password, params = parse_dsn(self.driver, self.dsn)
        if self.password_file is not None:
            password = self.password_file.get_secret_value()
        return Target(
            host=host,
            port=port,
            user=user,
            database=database,
            password=password,
            connect_timeout=self.connect_timeout,
            statement_timeout=self.statement_timeout,
            params=tuple(sorted(params.items())),
        )


def _on(block: Feature | None) -> bool:
    return block is not None and block.enabled


class DatabaseCollector(Collector[DatabaseConfig]):
    """Read one database over a single read-only connection."""

    kind: ClassVar[str] = "databases"
    label: ClassVar[str] = "database"
    config_type: ClassVar[type[InstanceConfig]] = DatabaseConfig
    metrics = (
        DB_CONNECTIONS,
        DB_MAX_CONNECTIONS,
        DB_RESERVED_CONNECTIONS,
        DB_SLOW_QUERIES_TOTAL,
        DB_SLOW_STATEMENTS,
        DB_STATEMENT_CALLS_TOTAL,
        DB_STATEMENT_SECONDS_TOTAL,
        DB_STATEMENT_INFO,
        FAILED_JOBS_ROWS,
        FAILED_JOBS_TOTAL,
        FAILED_JOBS_LAST_TIMESTAMP_SECONDS,
        QUEUE_JOBS,
        QUEUE_OLDEST_JOB_TIMESTAMP_SECONDS,
    )
    # A queue table's series name the Laravel connection, as the Redis queues' series do.
    other_instance_label: ClassVar[Mapping[MetricDef, str]] = {
        QUEUE_JOBS: "connection",
        QUEUE_OLDEST_JOB_TIMESTAMP_SECONDS: "connection",
    }

    def __init__(
        self, config: DatabaseConfig, context: Context, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(config, context)
        self._clock = clock
        self.driver = open_driver(config.target(), config.driver)
        self._failed = queries.FailedJobsCounter()
        self._extra: list[Metric] = []  # families with other base labels (queue `connection`)
        st = config.statements
        self._statements = readers.StatementReader(
            top=st.top if st else 0,
            threshold=st.slow_threshold if st else 0.1,
            query_length=st.query_length if st else 200,
            digests=st.digests if st else True,
        )

    async def refresh(self) -> Sequence[Metric]:
        """Read every enabled feature; a failure names the feature and the reason."""
        ms = self.metric_set()
        cfg = self.config
        steps: list[tuple[str, Callable[[MetricSet], Awaitable[None]]]] = []
        if cfg.connections.enabled:
            steps.append(("connections", self._connections))
        if _on(cfg.failed_jobs):
            steps.append(("failed_jobs", self._failed_jobs))
        if _on(cfg.queue_table):
            steps.append(("queue_table", self._queue))
        if _on(cfg.statements):
            steps.append(("statements", self._statements_metrics))
        self._extra = []
        for feature, step in steps:
            try:
                await step(ms)
            except SqlError as exc:
                raise CollectError(f"{feature}: {exc}") from None
        return ms.families() + self._extra

    async def _connections(self, ms: MetricSet) -> None:
        conns = await readers.read_connections(self.driver)
        for state, count in sorted(conns.states.items()):
            ms.add(DB_CONNECTIONS, count, state=state)
        ms.add(DB_MAX_CONNECTIONS, conns.max_connections)
        ms.add(DB_RESERVED_CONNECTIONS, conns.reserved)

    async def _failed_jobs(self, ms: MetricSet) -> None:
        block = self.config.failed_jobs
        assert block is not None
        rows = await readers.read_failed_jobs(
            self.driver, block.table, self._failed.query_watermark()
        )
        by_job = (
            await readers.read_failed_jobs_by_job(self.driver, block.table, block.top_jobs)
            if block.by_job
            else None
        )
        totals = self._failed.update(rows)
        _failed_job_metrics(ms, rows, totals, by_job)

    async def _queue(self, ms: MetricSet) -> None:
        block = self.config.queue_table
        assert block is not None
        jobs = await readers.read_queue(
            self.driver, block.table, self._clock(), tuple(block.queues)
        )
        qs = MetricSet({"connection": block.connection or self.config.name}, self.metrics)
        for q in jobs:
            for state, count in (
                ("pending", q.pending),
                ("delayed", q.delayed),
                ("reserved", q.reserved),
            ):
                qs.add(QUEUE_JOBS, count, queue=q.queue, state=state)
            if q.oldest_pending is not None:
                qs.add(QUEUE_OLDEST_JOB_TIMESTAMP_SECONDS, q.oldest_pending, queue=q.queue)
        self._extra = qs.families()

    async def _statements_metrics(self, ms: MetricSet) -> None:
        stats = await self._statements.read(self.driver)
        if stats.slow_queries_total is not None:
            ms.add(DB_SLOW_QUERIES_TOTAL, stats.slow_queries_total)
        if stats.slow is None:
            return
        ms.add(DB_SLOW_STATEMENTS, stats.slow)
        for s in stats.top:
            ms.add(DB_STATEMENT_CALLS_TOTAL, s.calls, queryid=s.queryid)
            ms.add(DB_STATEMENT_SECONDS_TOTAL, s.seconds, queryid=s.queryid)
            ms.add(DB_STATEMENT_INFO, 1, queryid=s.queryid, query=stats.texts.get(s.queryid, ""))

    async def close(self) -> None:
        """Close the database connection."""
        await self.driver.close()


def _failed_job_metrics(
    ms: MetricSet,
    rows: list[queries.FailedJobsQueue],
    totals: dict[str, int],
    by_job: dict[tuple[str, str], int] | None,
) -> None:
    if by_job is None:
        for q in rows:
            ms.add(FAILED_JOBS_ROWS, q.rows, queue=q.queue)
    else:
        for (queue, job), count in sorted(by_job.items()):
            ms.add(FAILED_JOBS_ROWS, count, queue=queue, job_class=job)
    for queue, total in sorted(totals.items()):
        ms.add(FAILED_JOBS_TOTAL, total, queue=queue)
    for q in rows:
        if q.last_failed is not None:
            ms.add(FAILED_JOBS_LAST_TIMESTAMP_SECONDS, q.last_failed, queue=q.queue)
