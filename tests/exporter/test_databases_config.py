"""Databases collector: config validation and the pure row → value functions."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from exporter.collectors.databases import DatabaseCollector, DatabaseConfig
from exporter.collectors.registry import REGISTRY, load_config_text
from exporter.sql import queries
from exporter.sql.base import TAG
from maintwatch.configload import ConfigError


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "x.yml")
    return info.value.problems


def test_registered_under_databases() -> None:
    assert REGISTRY["databases"] is DatabaseCollector


def test_defaults_and_toggles(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    config = load_config_text(
        "databases:\n"
        "  - name: app\n"
        "    driver: postgres\n"
        "    dsn: postgresql://monitor:fromurl@db.internal:6432/app?sslmode=require\n"
        f"    password_file: {secret}\n"
        "    failed_jobs: true\n"
        "    queue_table: {table: public.jobs}\n"
        "    statements: {slow_threshold: 250ms}\n",
        "x.yml",
    )
    (db,) = config.instances()["databases"]
    assert isinstance(db, DatabaseConfig)
    assert db.connections.enabled
    assert db.failed_jobs is not None
    assert db.failed_jobs.table == "failed_jobs"
    assert db.statements is not None
    assert db.statements.slow_threshold == 0.25
    assert db.statements.top == 20
    target = db.target()
    assert (target.host, target.port, target.user, target.database) == (
        "db.internal", 6432, "monitor", "app",
    )  # fmt: skip
    assert target.password == "s3cret"  # the file wins over the URL
    assert target.params == (("sslmode", "require"),)
    assert "s3cret" not in repr(target)
    assert "s3cret" not in repr(db)


def test_bad_values_are_located(tmp_path: Path) -> None:
    found = problems(
        "databases:\n"
        "  - {name: a, driver: postgres, dsn: 'mysql://u@h/db'}\n"
        "  - {name: b, driver: mysql, dsn: 'mysql://u@h/db', failed_jobs: {table: 'x; drop'}}\n"
        "  - {name: c, driver: oracle, dsn: 'x'}\n"
        "  - {name: d, driver: mysql, dsn: 'mysql://h/db', statement_timeout: 0s}\n"
        f"  - {{name: e, driver: mysql, dsn: 'mysql://u@h/db', password_file: {tmp_path}/no}}\n"
        "  - {name: f, driver: mysql, dsn: 'mysql://u:pw@h:99999/db'}\n"
    )
    assert found == [
        "x.yml: databases[0]: dsn: driver postgres needs a URL starting with postgresql://"
        " or postgres://",
        "x.yml: databases[1].failed_jobs.table: invalid table name 'x; drop': use letters,"
        " digits and _ (optionally schema.table)",
        "x.yml: databases[2].driver: expected one of: postgres, mysql, got 'oracle'",
        "x.yml: databases[3].statement_timeout: must be more than 0",
        f"x.yml: databases[4].password_file: cannot read secret file '{tmp_path}/no':"
        " No such file or directory",
        "x.yml: databases[5]: dsn: the URL's port is not a number from 1 to 65535",
    ]
    assert not [p for p in found if "pw" in p.split(": ", 1)[1]]


def test_missing_user_and_unknown_field() -> None:
    found = problems(
        "databases:\n"
        "  - {name: a, driver: mysql, dsn: 'mysql://h/db'}\n"
        "  - {name: b, driver: mysql, dsn: 'mysql://u@h/db?ssl=1', statements: {topn: 3}}\n"
    )
    assert found == [
        "x.yml: databases[0]: dsn: the URL must name a user, a host and one database:"
        " scheme://user@host/db",
        "x.yml: databases[1].statements.topn: unknown field; did you mean 'top'?",
    ]


def test_failed_jobs_counter_watermark() -> None:
    counter = queries.FailedJobsCounter()
    q = queries.FailedJobsQueue
    assert counter.update([q("a", 5, 5, 1.0, 10)]) == {"a": 0}  # first look: baseline
    assert counter.query_watermark() == 10
    assert counter.update([q("a", 7, 2, 2.0, 12), q("b", 1, 1, 3.0, 11)]) == {"a": 2, "b": 1}
    assert counter.update([]) == {"a": 2, "b": 1}  # flushed: the counter never goes down
    assert counter.query_watermark() == 0
    assert counter.update([q("a", 1, 1, 4.0, 13)]) == {"a": 3, "b": 1}


def test_from_row_accepts_mysql_decimals() -> None:
    row = ("q", 3, Decimal(2), Decimal("1800000000.5"), 9)
    assert queries.FailedJobsQueue.from_row(row) == queries.FailedJobsQueue(
        "q", 3, 2, 1.8e9 + 0.5, 9
    )


def test_job_names_from_payload_fragments() -> None:
    assert queries.job_name('"displayName":"App\\\\Jobs\\\\Mail"') == "App\\Jobs\\Mail"
    assert queries.job_name('"displayName":"App\\/Odd"') == "App/Odd"
    assert queries.job_name(None) == "unknown"
    assert queries.job_name("garbage") == "unknown"
    capped = queries.failed_jobs_by_job(
        [
            ("q", '"displayName":"A"', 5),
            ("q", '"displayName":"B"', 1),
            ("r", '"displayName":"C"', 2),
        ],
        top=2,
    )
    assert capped == {("q", "A"): 5, ("q", "other"): 1, ("r", "C"): 2}


def test_connection_states() -> None:
    pg = queries.pg_connection_states(
        [("active", 2), ("idle in transaction (aborted)", 1), (None, 4)]
    )
    assert pg["active"] == 2
    assert pg["idle_in_transaction_aborted"] == 1
    assert pg["unknown"] == 4
    assert pg["idle"] == 0
    my = queries.mysql_connection_states({"Threads_connected": "10", "Threads_running": "3"})
    assert my == {"active": 3, "idle": 7}


def test_statements_selection() -> None:
    stats = queries.statements(
        [("1", 10, 5000.0), ("2", 2, 100.0), ("3", 0, 0.0), (None, 1, 1)], 1e-3
    )
    assert [s.queryid for s in stats] == ["1", "2", "3"]
    assert queries.slow_statement_count(stats, 0.1) == 1  # mean 0.5 s; 0.05 s; no calls
    assert [s.queryid for s in queries.top_statements(stats, 2, {"1"})] == ["2", "3"]
    assert queries.is_own_query(TAG + "SELECT 1")
    assert not queries.is_own_query("SELECT 1 /* maintwatch */")
    assert queries.short_query("SELECT\n  a,\n  b FROM t", 12) == "SELECT a, b…"
