"""Databases collector against the local PostgreSQL: features, promtool, failures."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import structlog

from exporter.collectors.base import CollectError, Context
from exporter.runtime import Runtime
from tests.conftest import free_port
from tests.exporter._db_helpers import (
    PG,
    collector,
    failed_job_row,
    payload,
    pg_admin,
    pg_db,
    poll,
    proxy,
)
from tests.exporter._rule_eval import expect_alert
from tests.exporter.conftest import promtool_check, refresh

__all__ = ["pg_db"]  # fixture imported for pytest

NOW = 1_800_000_000.0
INSERT_FAILED = (
    "INSERT INTO failed_jobs (uuid, connection, queue, payload, exception, failed_at)"
    " VALUES (%s, %s, %s, %s, %s, %s)"
)


def dsn(db: str, port: int = 5432) -> str:
    """Return the collector URL for a test database."""
    return f"postgresql://postgres@127.0.0.1:{port}/{db}"


def fail_jobs(db: str, *rows: tuple[str, str, str]) -> None:
    """Insert failed jobs given as (queue, job class, failed_at)."""
    with pg_admin(db) as conn, conn.cursor() as cur:
        cur.executemany(INSERT_FAILED, [failed_job_row(*r) for r in rows])


def sql(db: str, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run one statement as superuser in `db` and return its rows."""
    with pg_admin(db) as conn, conn.cursor() as cur:
        cur.execute(statement.encode(), params)  # fixed test SQL, not user input
        return cur.fetchall() if cur.description else []


def backends(db: str) -> int:
    """Return how many sessions are connected to `db`."""
    return int(
        sql("postgres", "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", db)[0][0]
    )


async def test_failed_jobs_counts_and_counter(pg_db: str, context: Context, promtool: str) -> None:
    fail_jobs(pg_db, ("default", "App\\Jobs\\A", "2027-01-15 10:00:00"),
              ("high", "App\\Jobs\\B", "2027-01-15 11:00:00"))  # fmt: skip
    c = collector(context, "postgres", dsn(pg_db), failed_jobs=True)
    try:
        s = await refresh(c)
        assert s.get("maintwatch_failed_jobs_rows", database="app", queue="default") == 1
        assert s.get("maintwatch_failed_jobs_total", queue="high") == 0  # counts from start
        assert (
            s.get("maintwatch_failed_jobs_last_timestamp_seconds", queue="high") == 1800010800
        )  # 11:00 UTC
        fail_jobs(pg_db, ("default", "App\\Jobs\\A", "2027-01-15 12:00:00"),
                  ("default", "App\\Jobs\\A", "2027-01-15 12:00:01"))  # fmt: skip
        sql(pg_db, "DELETE FROM failed_jobs WHERE queue = 'high'")  # queue:retry / forget
        s = await refresh(c)
        assert s.get("maintwatch_failed_jobs_rows", queue="default") == 3
        assert s.get("maintwatch_failed_jobs_total", queue="default") == 2
        assert s.get("maintwatch_failed_jobs_total", queue="high") == 0
        assert s.get("maintwatch_failed_jobs_rows", queue="high") is None
        sql(pg_db, "DELETE FROM failed_jobs")  # queue:flush: the counter never goes down
        fail_jobs(pg_db, ("default", "App\\Jobs\\A", "2027-01-15 13:00:00"))
        s = await refresh(c)
        assert s.get("maintwatch_failed_jobs_rows", queue="default") == 1
        assert s.get("maintwatch_failed_jobs_total", queue="default") == 3
        promtool_check(promtool, s.text())
    finally:
        await c.close()


async def test_failed_jobs_by_job_top_n(pg_db: str, context: Context, promtool: str) -> None:
    when = "2027-01-15 10:00:00"
    mail, sms = ("default", "App\\Jobs\\Mail", when), ("default", "App\\Jobs\\Sms", when)
    fail_jobs(pg_db, mail, mail, mail, sms, sms, ("high", "App\\Jobs\\Rare", when))
    c = collector(context, "postgres", dsn(pg_db), failed_jobs={"by_job": True, "top_jobs": 2})
    try:
        s = await refresh(c)
        assert (
            s.get("maintwatch_failed_jobs_rows", queue="default", job_class="App\\Jobs\\Mail") == 3
        )
        assert (
            s.get("maintwatch_failed_jobs_rows", queue="default", job_class="App\\Jobs\\Sms") == 2
        )
        assert s.get("maintwatch_failed_jobs_rows", queue="high", job_class="other") == 1
        promtool_check(promtool, s.text())
    finally:
        await c.close()


async def test_queue_table_states(pg_db: str, context: Context, promtool: str) -> None:
    rows = [("default", None, NOW - 60, NOW - 100), ("default", None, NOW - 5, NOW - 50),
            ("default", None, NOW + 300, NOW - 10), ("default", NOW - 1, NOW - 30, NOW - 30),
            ("emails", NOW - 2, NOW - 2, NOW - 2)]  # fmt: skip
    with pg_admin(pg_db) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO jobs (queue, payload, attempts, reserved_at, available_at, created_at)"
            " VALUES (%s, %s, 0, %s, %s, %s)",
            [(q, payload("App\\Jobs\\A"), r, a, cr) for q, r, a, cr in rows],
        )
    c = collector(context, "postgres", dsn(pg_db), clock=lambda: NOW,
                  queue_table={"queues": ["default", "idle"]})  # fmt: skip
    try:
        s = await refresh(c)
        states = {(lb["queue"], lb["state"]): v for lb, v in s.all("maintwatch_queue_jobs")}
        assert states[("default", "pending")] == 2
        assert states[("default", "delayed")] == 1
        assert states[("default", "reserved")] == 1
        assert states[("emails", "reserved")] == 1
        assert states[("idle", "pending")] == 0  # configured queue: series never disappears
        oldest = s.get("maintwatch_queue_oldest_job_timestamp_seconds", queue="default")
        assert oldest == NOW - 100
        assert all(lb == {**lb, "connection": "app"} for lb, _ in s.all("maintwatch_queue_jobs"))
        assert all("database" not in lb for lb, _ in s.all("maintwatch_queue_jobs"))
        promtool_check(promtool, s.text())
    finally:
        await c.close()


async def test_connections(pg_db: str, context: Context, promtool: str) -> None:
    c = collector(context, "postgres", dsn(pg_db))
    try:
        s = await refresh(c)
        assert s.get("maintwatch_db_connections", state="active")  # at least the exporter
        assert s.get("maintwatch_db_connections", state="idle_in_transaction") is not None
        limit = int(sql("postgres", "SHOW max_connections")[0][0])
        reserved = int(sql("postgres", "SHOW superuser_reserved_connections")[0][0])
        assert s.get("maintwatch_db_max_connections", database="app") == limit
        assert s.get("maintwatch_db_reserved_connections") == reserved
        promtool_check(promtool, s.text())
    finally:
        await c.close()


async def test_session_is_read_only(pg_db: str, context: Context) -> None:
    c = collector(context, "postgres", dsn(pg_db))
    try:
        rows = await c.driver.fetch("SHOW default_transaction_read_only")
        assert rows == [("on",)]
        with pytest.raises(Exception, match="read-only transaction"):
            await c.driver.fetch("DELETE FROM {t}", t="failed_jobs")
    finally:
        await c.close()


async def test_statements_top_n_and_slow(pg_db: str, context: Context, promtool: str) -> None:
    sql(pg_db, "CREATE EXTENSION pg_stat_statements")
    # Forget this database's set-up DDL (only this database: other tests keep theirs).
    sql(pg_db, "SELECT pg_stat_statements_reset(0, oid, 0) FROM pg_database WHERE datname = %s",
        pg_db)  # fmt: skip
    sql(pg_db, "SELECT pg_sleep(0.15)")
    for i in range(5):
        sql(pg_db, "SELECT count(*) FROM jobs WHERE attempts > %s", i)
    c = collector(context, "postgres", dsn(pg_db), statements={"top": 10, "query_length": 40})
    try:
        await refresh(c)
        s = await refresh(c)  # the exporter's own statements now exist in the statistics
        infos = {lb["queryid"]: lb["query"] for lb, _ in s.all("maintwatch_db_statement_info")}
        assert 3 <= len(infos) <= 10
        assert not [q for q in infos.values() if "maintwatch" in q or "pg_stat_activity" in q]
        sleep_id = next(k for k, q in infos.items() if "pg_sleep" in q)
        count_id = next(k for k, q in infos.items() if "FROM jobs WHERE" in q)
        assert len(infos[count_id]) <= 40
        assert infos[count_id].endswith("…")
        assert s.get("maintwatch_db_statement_calls_total", queryid=count_id) == 5
        assert s.get("maintwatch_db_statement_seconds_total", queryid=sleep_id) >= 0.15  # type: ignore[operator]
        assert s.get("maintwatch_db_slow_statements", database="app") == 1
        promtool_check(promtool, s.text())
        one = collector(context, "postgres", dsn(pg_db), statements={"top": 1})
        try:
            top = (await refresh(one)).all("maintwatch_db_statement_info")
            assert [lb["queryid"] for lb, _ in top] == [sleep_id]
        finally:
            await one.close()
    finally:
        await c.close()


async def test_statements_missing_extension_is_a_clear_failure(
    pg_db: str, context: Context
) -> None:
    c = collector(context, "postgres", dsn(pg_db), statements=True)
    try:
        with pytest.raises(CollectError, match=r"statements: pg_stat_statements is not installed"):
            await refresh(c)
        off = collector(context, "postgres", dsn(pg_db), statements={"enabled": False})
        try:
            assert (await refresh(off)).get("maintwatch_db_max_connections") is not None
        finally:
            await off.close()
    finally:
        await c.close()


async def test_server_down_at_start(context: Context) -> None:
    c = collector(context, "postgres", dsn("nothing", free_port()), connect_timeout="2s")
    try:
        with pytest.raises(
            CollectError, match=r"connections: cannot connect to postgres .*refused"
        ):
            await refresh(c)
    finally:
        await c.close()


async def test_terminated_connection_is_replaced(pg_db: str, context: Context) -> None:
    c = collector(context, "postgres", dsn(pg_db), failed_jobs=True)
    try:
        await refresh(c)
        killed = sql("postgres", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                     " WHERE datname = %s AND application_name = 'maintwatch'", pg_db)  # fmt: skip
        assert killed == [(True,)]
        s = await refresh(c)  # the stale connection is detected and replaced in this refresh
        assert s.get("maintwatch_failed_jobs_total", queue="default") is None
        assert s.get("maintwatch_db_max_connections") is not None
    finally:
        await c.close()


async def test_server_going_away_and_back(pg_db: str, context: Context, port: int) -> None:
    async with proxy(port, ("127.0.0.1", 5432)) as p:
        c = collector(context, "postgres", dsn(pg_db, port), connect_timeout="2s")
        try:
            assert (await refresh(c)).get("maintwatch_db_max_connections")
            await p.stop()
            with pytest.raises(CollectError, match="cannot connect to postgres"):
                await refresh(c)
            await p.start()
            assert (await refresh(c)).get("maintwatch_db_max_connections")
        finally:
            await c.close()


async def test_statement_timeout_on_a_lock(pg_db: str, context: Context) -> None:
    c = collector(context, "postgres", dsn(pg_db), failed_jobs=True, statement_timeout="300ms")
    try:
        with pg_admin(pg_db) as locker:
            locker.execute("BEGIN")
            locker.execute("LOCK TABLE failed_jobs IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(CollectError, match=r"failed_jobs: statement cancelled on postgres"):
                await refresh(c)
        assert (await refresh(c)).get("maintwatch_failed_jobs_total", queue="x") is None
    finally:
        await c.close()


async def test_runtime_hang_is_isolated_and_recovers(pg_db: str, unique: str) -> None:
    logger = structlog.get_logger("test")
    ctx = Context(logger=logger)
    hung = collector(ctx, "postgres", dsn(pg_db), failed_jobs=True, statement_timeout="30s")
    healthy = collector(ctx, "postgres", dsn(pg_db), name="other")
    rt = Runtime(logger)
    with structlog.testing.capture_logs() as logs:
        with pg_admin(pg_db) as locker:
            locker.execute("BEGIN")
            locker.execute("LOCK TABLE failed_jobs IN ACCESS EXCLUSIVE MODE")
            try:
                await rt.apply([(hung, 0.3, 0.2), (healthy, 0.3, 5.0)])
                async with asyncio.timeout(20):
                    await rt.wait_ready()
                up = {s.key[1]: s.up for s in rt.states()}
                assert up == {"app": False, "other": True}
                # Several failed rounds while the lock is held, each cut by the runtime timeout.
                await poll(lambda: next(s for s in rt.states() if s.key[1] == "app").errors >= 3)
                # Abandoned statements are cancelled: no backend piles up behind the lock
                # (the locker, the healthy instance and the hung instance's current one).
                assert backends(pg_db) <= 3
                assert [s.families for s in rt.states() if s.key[1] == "app"] == [()]
                names = {f.name for f in rt.families()}
                assert "maintwatch_db_max_connections" in names  # the healthy one still serves
            finally:
                locker.execute("ROLLBACK")
            assert await poll(lambda: all(s.up for s in rt.states()))
        await rt.close()
    failures = [e for e in logs if e["event"] == "collector_refresh_failed"]
    assert len(failures) == 1, failures
    assert failures[0]["reason"] == "timed out after 0.2s"
    assert [e["name"] for e in logs if e["event"] == "collector_recovered"] == ["app"]
    await poll(lambda: backends(pg_db) == 0)
    assert backends(pg_db) == 0


async def test_no_connection_leak_over_100_refreshes(pg_db: str, context: Context) -> None:
    c = collector(context, "postgres", dsn(pg_db), failed_jobs=True, queue_table=True)
    try:
        for i in range(100):
            if i % 10 == 5:
                sql("postgres", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s", pg_db)  # fmt: skip
            await refresh(c)
            assert backends(pg_db) == 1
    finally:
        await c.close()
    assert await poll(lambda: backends(pg_db) == 0)


def test_time_zone_of_failed_at_is_utc() -> None:
    """Guard the tests' own arithmetic: NOW is 2027-01-15 08:00:00 UTC."""
    assert time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(NOW)) == "2027-01-15 08:00:00"
    assert PG["port"] == 5432


async def test_failure_during_exporter_restart_still_alerts(
    pg_db: str, context: Context, promtool: str
) -> None:
    # Laravel writes failed_at in UTC; the database's clock is the machine's.
    now = float(sql(pg_db, "SELECT extract(epoch FROM now())")[0][0])
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now - 86400))
    fail_jobs(pg_db, ("high", "App\\Jobs\\B", stamp))
    first = collector(context, "postgres", dsn(pg_db), failed_jobs=True)
    try:
        await refresh(first)
    finally:
        await first.close()
    # A job fails while the exporter is down; the restarted one starts its watermark past it.
    fail_jobs(pg_db, ("default", "App\\Jobs\\SendMail", time.strftime(
        "%Y-%m-%d %H:%M:%S", time.gmtime(now - 480))))  # fmt: skip
    restarted = collector(context, "postgres", dsn(pg_db), failed_jobs=True)
    try:
        s = await refresh(restarted)
    finally:
        await restarted.close()
    assert s.get("maintwatch_failed_jobs_total", queue="default") == 0
    firing = [{"database": "app", "queue": "default"}]
    expect_alert(promtool, s, "FailedJobsAppearing", firing, now=now)
    kept = [{"database": "app", "queue": q} for q in ("default", "high")]
    expect_alert(promtool, s, "FailedJobsStanding", kept)
