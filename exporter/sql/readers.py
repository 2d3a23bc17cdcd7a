"""Read each feature of the databases collector through a Driver, per SQL dialect."""

from __future__ import annotations

from dataclasses import dataclass, field

from exporter.sql import queries
from exporter.sql.base import Driver, StatementFailed

_PG_CONNECTIONS = (
    "SELECT state, count(*) FROM pg_stat_activity"
    " WHERE backend_type = 'client backend' GROUP BY state"
)
# reserved_connections exists from PostgreSQL 16 on; missing_ok makes it NULL before that.
_PG_LIMITS = (
    "SELECT current_setting('max_connections')::int,"
    " current_setting('superuser_reserved_connections')::int"
    " + coalesce(current_setting('reserved_connections', true), '0')::int"
)
_MYSQL_STATUS = (
    "SHOW GLOBAL STATUS WHERE Variable_name IN"
    " ('Threads_connected', 'Threads_running', 'Slow_queries')"
)
_FAILED = {
    "postgres": (
        "SELECT queue, count(*), count(*) FILTER (WHERE id > %s),"
        " extract(epoch FROM max(failed_at))::float8, max(id) FROM {table} GROUP BY queue"
    ),
    "mysql": (
        "SELECT queue, COUNT(*), SUM(id > %s), UNIX_TIMESTAMP(MAX(failed_at)), MAX(id)"
        " FROM {table} GROUP BY queue"
    ),
}
# Only the `"displayName":"…"` fragment leaves the server, not the (large) payloads.
_FAILED_BY_JOB = {
    "postgres": (
        'SELECT queue, substring(payload FROM \'"displayName": *"[^"]*"\'), count(*)'
        " FROM {table} GROUP BY 1, 2"
    ),
    "mysql": (
        'SELECT queue, REGEXP_SUBSTR(payload, \'"displayName": *"[^"]*"\'), COUNT(*)'
        " FROM {table} GROUP BY 1, 2"
    ),
}
_QUEUE = {
    "postgres": (
        "SELECT queue,"
        " count(*) FILTER (WHERE reserved_at IS NULL AND available_at <= %s),"
        " count(*) FILTER (WHERE reserved_at IS NULL AND available_at > %s),"
        " count(*) FILTER (WHERE reserved_at IS NOT NULL),"
        " min(created_at) FILTER (WHERE reserved_at IS NULL AND available_at <= %s)"
        " FROM {table} GROUP BY queue"
    ),
    "mysql": (
        "SELECT queue,"
        " SUM(reserved_at IS NULL AND available_at <= %s),"
        " SUM(reserved_at IS NULL AND available_at > %s),"
        " SUM(reserved_at IS NOT NULL),"
        " MIN(CASE WHEN reserved_at IS NULL AND available_at <= %s THEN created_at END)"
        " FROM {table} GROUP BY queue"
    ),
}
_PG_HAS_PGSS = "SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements'"
# showtext=false skips reading the query-text file; texts are fetched only for new top ids.
_PG_STATS = (
    "SELECT queryid, sum(calls)::float8, sum(total_exec_time)::float8"
    " FROM pg_stat_statements(false)"
    " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND queryid IS NOT NULL"
    " GROUP BY queryid"
)
# pg_stat_statements keeps whole texts (megabytes for a generated IN list) and only the first
# `query_length` (≤ 4000) characters, whitespace collapsed, reach a label: cut on the server.
_PG_TEXTS = (
    "SELECT DISTINCT ON (queryid) queryid, left(query, 16000) FROM pg_stat_statements(true)"
    " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND queryid = ANY(%s)"
)
_MYSQL_PFS = "SELECT @@performance_schema"
# Digest texts drop comments, so the exporter's own statements are recognised by what they
# read (performance_schema, SHOW, @@variables); its failed_jobs/jobs reads stay visible.
_MYSQL_DIGESTS = (
    "SELECT DIGEST, COUNT_STAR, SUM_TIMER_WAIT, LEFT(DIGEST_TEXT, 2000)"
    " FROM performance_schema.events_statements_summary_by_digest"
    " WHERE SCHEMA_NAME = DATABASE() AND DIGEST IS NOT NULL"
    " AND DIGEST_TEXT NOT LIKE '%%performance\\_schema%%' AND DIGEST_TEXT NOT LIKE 'SHOW %%'"
    " AND DIGEST_TEXT NOT LIKE 'SELECT @@%%'"
)
_PICOSECONDS = 1e-12
_MILLISECONDS = 1e-3


class FeatureUnavailable(StatementFailed):
    """The server lacks what a feature needs (extension, performance_schema)."""


@dataclass(frozen=True)
class Connections:
    """Server-wide connection counts and limits."""

    states: dict[str, int]
    max_connections: int
    reserved: int


@dataclass(frozen=True)
class StatementStats:
    """Statement statistics of one refresh."""

    slow: int | None  # None when per-statement data is not read (MySQL without digests)
    top: list[queries.Statement]
    texts: dict[str, str]
    slow_queries_total: float | None  # MySQL/MariaDB `Slow_queries`


async def read_connections(driver: Driver) -> Connections:
    """Return connections by state and the server limits."""
    if driver.dialect == "postgres":
        states = queries.pg_connection_states(await driver.fetch(_PG_CONNECTIONS))
        ((max_connections, reserved),) = await driver.fetch(_PG_LIMITS)
        return Connections(states, int(max_connections), int(reserved))
    status = await _mysql_status(driver)
    ((max_connections,),) = await driver.fetch("SELECT @@max_connections")
    # MySQL keeps one connection beyond max_connections for admins instead of reserving some.
    return Connections(queries.mysql_connection_states(status), int(max_connections), 0)


async def _mysql_status(driver: Driver) -> dict[str, str]:
    return {str(k): str(v) for k, v in await driver.fetch(_MYSQL_STATUS)}


async def read_failed_jobs(
    driver: Driver, table: str, watermark: int
) -> list[queries.FailedJobsQueue]:
    """Return per-queue failed_jobs rows, counting ids above `watermark` as new."""
    rows = await driver.fetch(_FAILED[driver.dialect], (watermark,), table=table)
    return [queries.FailedJobsQueue.from_row(r) for r in rows]


async def read_failed_jobs_by_job(
    driver: Driver, table: str, top: int
) -> dict[tuple[str, str], int]:
    """Return failed_jobs counts by (queue, job class), top jobs kept."""
    rows = await driver.fetch(_FAILED_BY_JOB[driver.dialect], table=table)
    return queries.failed_jobs_by_job(rows, top)


async def read_queue(
    driver: Driver, table: str, now: float, always: tuple[str, ...]
) -> list[queries.QueueJobs]:
    """Return a Laravel `jobs` table's jobs by queue and state at unix time `now`."""
    stamp = int(now)
    rows = await driver.fetch(_QUEUE[driver.dialect], (stamp, stamp, stamp), table=table)
    return queries.queue_jobs(rows, always)


@dataclass
class StatementReader:
    """Read statement statistics, caching query texts by id across refreshes."""

    top: int
    threshold: float
    query_length: int
    digests: bool = True
    _texts: dict[str, str] = field(default_factory=dict)
    _own: set[str] = field(default_factory=set)

    async def read(self, driver: Driver) -> StatementStats:
        """Return slow-statement count, top statements and their texts."""
        if driver.dialect == "postgres":
            return await self._postgres(driver)
        return await self._mysql(driver)

    async def _postgres(self, driver: Driver) -> StatementStats:
        if not await driver.fetch(_PG_HAS_PGSS):
            raise FeatureUnavailable(
                f"pg_stat_statements is not installed in database {driver.target.database}"
                " (run CREATE EXTENSION pg_stat_statements there, or turn statements off)"
            )
        try:
            rows = await driver.fetch(_PG_STATS)
        except StatementFailed as exc:
            if "shared_preload_libraries" in str(exc):
                raise FeatureUnavailable(
                    "pg_stat_statements is installed but not loaded: add it to"
                    " shared_preload_libraries and restart PostgreSQL"
                ) from None
            raise
        stats = queries.statements(rows, _MILLISECONDS)
        top = await self._top_with_texts(driver, stats)
        own_excluded = [s for s in stats if s.queryid not in self._own]
        slow = queries.slow_statement_count(own_excluded, self.threshold)
        return StatementStats(slow, top, self._texts_for(top), None)

    async def _top_with_texts(
        self, driver: Driver, stats: list[queries.Statement]
    ) -> list[queries.Statement]:
        # Own statements are only recognised once their text is known: fetch texts of
        # unknown ids among the top, drop own ones, and look again (few rounds at most).
        while True:
            top = queries.top_statements(stats, self.top, self._own)
            missing = [s.queryid for s in top if s.queryid not in self._texts]
            if not missing:
                break
            fetched = await driver.fetch(_PG_TEXTS, ([int(q) for q in missing],))
            for qid, text in fetched:
                self._remember(str(qid), str(text or ""))
            for qid in missing:  # ids whose row vanished in between: keep them textless
                self._texts.setdefault(qid, "")
        self._prune({s.queryid for s in stats})
        return top

    def _remember(self, qid: str, text: str) -> None:
        if queries.is_own_query(text):
            self._own.add(qid)
        self._texts[qid] = queries.short_query(text, self.query_length)

    def _prune(self, live: set[str]) -> None:
        """Forget texts of statements that left the statistics (reset, eviction)."""
        self._texts = {k: v for k, v in self._texts.items() if k in live}
        self._own &= live

    def _texts_for(self, top: list[queries.Statement]) -> dict[str, str]:
        return {s.queryid: self._texts.get(s.queryid, "") for s in top}

    async def _mysql(self, driver: Driver) -> StatementStats:
        slow_queries = float((await _mysql_status(driver)).get("Slow_queries", 0))
        if not self.digests:
            return StatementStats(None, [], {}, slow_queries)
        ((enabled,),) = await driver.fetch(_MYSQL_PFS)
        if not int(enabled):
            raise FeatureUnavailable(
                f"performance_schema is OFF on mysql {driver.target.host}:{driver.target.port}"
                " (set performance_schema=ON and restart the server, or set"
                " statements.digests: false to export only Slow_queries)"
            )
        rows = await driver.fetch(_MYSQL_DIGESTS)
        stats = queries.statements(((d, c, t) for d, c, t, _ in rows), _PICOSECONDS)
        top = queries.top_statements(stats, self.top, set())
        wanted = {s.queryid for s in top}
        self._texts = {
            str(d): queries.short_query(str(text or ""), self.query_length)
            for d, _, _, text in rows
            if str(d) in wanted
        }
        slow = queries.slow_statement_count(stats, self.threshold)
        return StatementStats(slow, top, self._texts_for(top), slow_queries)
