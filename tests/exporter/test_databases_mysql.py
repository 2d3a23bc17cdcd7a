"""Databases collector against the local MariaDB: features, promtool, failures."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from exporter.collectors.base import CollectError, Context
from exporter.runtime import Runtime
from tests.conftest import free_port
from tests.exporter._db_helpers import (
    collector,
    failed_job_row,
    my_admin,
    my_db,
    payload,
    poll,
    proxy,
)
from tests.exporter._rule_eval import expect_alert
from tests.exporter.conftest import promtool_check, refresh

__all__ = ["my_db"]  # fixture imported for pytest

NOW = 1_800_000_000.0
INSERT_FAILED = (
    "INSERT INTO failed_jobs (uuid, connection, queue, payload, exception, failed_at)"
    " VALUES (%s, %s, %s, %s, %s, %s)"
)


def dsn(db: str, port: int = 3306, user: str = "root") -> str:
    """Return the collector URL for a test database."""
    return f"mysql://{user}@127.0.0.1:{port}/{db}"


def sql(db: str | None, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run one statement as root and return its rows."""
    conn = my_admin(db)
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params or None)
            return list(cur.fetchall())
    finally:
        conn.close()


def fail_jobs(db: str, *rows: tuple[str, str, str]) -> None:
    """Insert failed jobs given as (queue, job class, failed_at)."""
    conn = my_admin(db)
    try:
        with conn.cursor() as cur:
            cur.executemany(INSERT_FAILED, [failed_job_row(*r) for r in rows])
    finally:
        conn.close()


def exporter_sessions(db: str) -> list[int]:
    """Return the ids of the sessions using `db` (test admin sessions use none)."""
    rows = sql(None, "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s", db)
    return [int(r[0]) for r in rows]


async def test_failed_jobs_counts_and_counter(my_db: str, context: Context, promtool: str) -> None:
    fail_jobs(my_db, ("default", "App\\Jobs\\A", "2027-01-15 10:00:00"),
              ("high", "App\\Jobs\\B", "2027-01-15 11:00:00"))  # fmt: skip
    c = collector(context, "mysql", dsn(my_db), failed_jobs={"by_job": True})
    try:
        s = await refresh(c)
        assert s.get("maintwatch_failed_jobs_rows", queue="high", job_class="App\\Jobs\\B") == 1
        assert s.get("maintwatch_failed_jobs_total", queue="high") == 0
        # Written by the admin session in the server's zone; compare in the same zone.
        ((expected,),) = sql(None, "SELECT UNIX_TIMESTAMP('2027-01-15 11:00:00')")
        assert s.get("maintwatch_failed_jobs_last_timestamp_seconds", queue="high") == expected
        fail_jobs(my_db, ("default", "App\\Jobs\\A", "2027-01-15 12:00:00"))
        sql(my_db, "DELETE FROM failed_jobs WHERE queue = 'high'")
        s = await refresh(c)
        assert s.get("maintwatch_failed_jobs_rows", queue="default") == 2
        assert s.get("maintwatch_failed_jobs_total", queue="default") == 1
        assert s.get("maintwatch_failed_jobs_total", queue="high") == 0
        promtool_check(promtool, s.text())
    finally:
        await c.close()


async def test_queue_table_states(my_db: str, context: Context, promtool: str) -> None:
    rows = [("default", None, NOW - 60, NOW - 100), ("default", None, NOW + 300, NOW - 10),
            ("default", NOW - 1, NOW - 30, NOW - 30)]  # fmt: skip
    conn = my_admin(my_db)
    try:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO jobs (queue, payload, attempts, reserved_at, available_at,"
                " created_at) VALUES (%s, %s, 0, %s, %s, %s)",
                [(q, payload("App\\Jobs\\A"), r, a, cr) for q, r, a, cr in rows],
            )
    finally:
        conn.close()
    c = collector(context, "mysql", dsn(my_db), clock=lambda: NOW,
                  queue_table={"connection": "database"})  # fmt: skip
    try:
        s = await refresh(c)
        states = {lb["state"]: v for lb, v in s.all("maintwatch_queue_jobs")}
        assert states == {"pending": 1, "delayed": 1, "reserved": 1}
        assert s.get("maintwatch_queue_oldest_job_timestamp_seconds", connection="database") == (
            NOW - 100
        )
        promtool_check(promtool, s.text())
    finally:
        await c.close()


async def test_connections_and_slow_queries(my_db: str, context: Context, promtool: str) -> None:
    c = collector(context, "mysql", dsn(my_db), statements={"digests": False})
    try:
        s = await refresh(c)
        ((limit,),) = sql(None, "SELECT @@max_connections")
        assert s.get("maintwatch_db_max_connections") == limit
        assert s.get("maintwatch_db_reserved_connections") == 0
        assert s.get("maintwatch_db_connections", state="active")  # at least the exporter
        ((slow,),) = sql(None, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS"
                         " WHERE VARIABLE_NAME = 'SLOW_QUERIES'")  # fmt: skip
        assert s.get("maintwatch_db_slow_queries_total") >= float(slow)  # type: ignore[operator]
        assert s.get("maintwatch_db_slow_statements") is None  # no digests read
        promtool_check(promtool, s.text())
    finally:
        await c.close()


async def test_performance_schema_off_is_a_clear_failure(my_db: str, context: Context) -> None:
    ((enabled,),) = sql(None, "SELECT @@performance_schema")
    if enabled:
        pytest.skip("this server has performance_schema on")  # the shared server has it off
    c = collector(context, "mysql", dsn(my_db), statements=True)
    try:
        with pytest.raises(CollectError, match=r"statements: performance_schema is OFF on mysql"):
            await refresh(c)
    finally:
        await c.close()


async def test_session_is_read_only(my_db: str, context: Context) -> None:
    c = collector(context, "mysql", dsn(my_db))
    try:
        rows = await c.driver.fetch("SELECT @@session.tx_read_only, @@max_statement_time")
        assert rows == [(1, 2.0)]
        with pytest.raises(Exception, match="READ ONLY transaction"):
            await c.driver.fetch("DELETE FROM {t}", t="failed_jobs")
    finally:
        await c.close()


@pytest.fixture
def wrong_password(unique: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Create a MariaDB user with a password; yield (user, file with a wrong password)."""
    sql(None, f"CREATE USER '{unique}'@'%' IDENTIFIED BY 'right-one'")
    secret = tmp_path / "db.pass"
    secret.write_text("wrong-one\n")
    try:
        yield unique, secret
    finally:
        sql(None, f"DROP USER '{unique}'@'%'")


async def test_wrong_password(
    my_db: str, context: Context, wrong_password: tuple[str, Path]
) -> None:
    user, secret = wrong_password
    c = collector(context, "mysql", dsn(my_db, user=user), password_file=str(secret))
    try:
        with pytest.raises(
            CollectError, match=r"cannot connect to mysql .*Access denied.*\(1045\)"
        ):
            await refresh(c)
        assert "wrong-one" not in str(c.config)
        assert "wrong-one" not in repr(c.driver.target)
    finally:
        await c.close()


async def test_server_down_at_start(context: Context) -> None:
    c = collector(context, "mysql", dsn("nothing", free_port()), connect_timeout="2s")
    try:
        with pytest.raises(CollectError, match=r"cannot connect to mysql .*\(2003\)"):
            await refresh(c)
    finally:
        await c.close()


async def test_killed_connection_is_replaced(my_db: str, context: Context) -> None:
    c = collector(context, "mysql", dsn(my_db), failed_jobs=True)
    try:
        await refresh(c)
        (victim,) = exporter_sessions(my_db)
        sql(None, f"KILL {victim}")
        s = await refresh(c)
        assert s.get("maintwatch_db_max_connections") is not None
        assert exporter_sessions(my_db) != [victim]
    finally:
        await c.close()


async def test_server_going_away_and_back(my_db: str, context: Context, port: int) -> None:
    async with proxy(port, ("127.0.0.1", 3306)) as p:
        c = collector(context, "mysql", dsn(my_db, port), connect_timeout="2s")
        try:
            assert (await refresh(c)).get("maintwatch_db_max_connections")
            await p.stop()
            with pytest.raises(CollectError, match="cannot connect to mysql"):
                await refresh(c)
            await p.start()
            assert (await refresh(c)).get("maintwatch_db_max_connections")
        finally:
            await c.close()


async def test_runtime_hang_is_isolated_and_recovers(my_db: str) -> None:
    logger = structlog.get_logger("test")
    ctx = Context(logger=logger)
    hung = collector(ctx, "mysql", dsn(my_db), failed_jobs=True, statement_timeout="1s")
    healthy = collector(ctx, "mysql", dsn(my_db), name="other")
    rt = Runtime(logger)
    locker = my_admin(my_db)
    try:
        with structlog.testing.capture_logs() as logs:
            with locker.cursor() as cur:
                cur.execute("LOCK TABLES failed_jobs WRITE")
            await rt.apply([(hung, 0.3, 5.0), (healthy, 0.3, 5.0)])
            async with asyncio.timeout(20):
                await rt.wait_ready()
            assert {s.key[1]: s.up for s in rt.states()} == {"app": False, "other": True}
            assert "maintwatch_db_max_connections" in {f.name for f in rt.families()}
            with locker.cursor() as cur:
                cur.execute("UNLOCK TABLES")
            assert await poll(lambda: all(s.up for s in rt.states()))
            await rt.close()
    finally:
        locker.close()
    failures = [e for e in logs if e["event"] == "collector_refresh_failed"]
    assert len(failures) == 1, failures
    assert "failed_jobs: statement cancelled on mysql" in failures[0]["reason"]
    assert await poll(lambda: exporter_sessions(my_db) == [])


async def test_no_connection_leak_over_100_refreshes(my_db: str, context: Context) -> None:
    c = collector(context, "mysql", dsn(my_db), failed_jobs=True, queue_table=True)
    try:
        for i in range(100):
            if i % 10 == 5:
                for victim in exporter_sessions(my_db):
                    sql(None, f"KILL {victim}")
            await refresh(c)
            assert len(exporter_sessions(my_db)) == 1
    finally:
        await c.close()
    assert await poll(lambda: exporter_sessions(my_db) == [])


async def test_failure_during_exporter_restart_still_alerts(
    my_db: str, context: Context, promtool: str
) -> None:
    ((yesterday, recent),) = sql(
        None,
        "SELECT DATE_FORMAT(NOW() - INTERVAL 1 DAY, '%Y-%m-%d %H:%i:%s'),"
        " DATE_FORMAT(NOW() - INTERVAL 8 MINUTE, '%Y-%m-%d %H:%i:%s')",
    )
    fail_jobs(my_db, ("high", "App\\Jobs\\B", yesterday))
    first = collector(context, "mysql", dsn(my_db), failed_jobs=True)
    try:
        await refresh(first)
    finally:
        await first.close()
    # The exporter is down while a mail job fails; the restarted one starts its watermark past it.
    fail_jobs(my_db, ("default", "App\\Jobs\\SendMail", recent))
    restarted = collector(context, "mysql", dsn(my_db), failed_jobs=True)
    try:
        s = await refresh(restarted)
    finally:
        await restarted.close()
    assert s.get("maintwatch_failed_jobs_total", queue="default") == 0
    assert s.get("maintwatch_failed_jobs_rows", queue="default") == 1
    ((now,),) = sql(None, "SELECT UNIX_TIMESTAMP()")
    # The generated rule still fires for the recent failure, and not for yesterday's.
    firing = [{"database": "app", "queue": "default"}]
    expect_alert(promtool, s, "FailedJobsAppearing", firing, now=float(now))
    kept = [{"database": "app", "queue": q} for q in ("default", "high")]
    expect_alert(promtool, s, "FailedJobsStanding", kept)
