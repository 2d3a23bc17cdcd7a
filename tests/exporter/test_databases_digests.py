"""Statement digests from MariaDB's performance_schema, on a private server started here.

The shared MariaDB runs with performance_schema off and must not be restarted, so this
module starts its own throwaway server (datadir in a temp dir, free port) with it on.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from exporter.collectors.base import Context
from tests.conftest import free_port, require_tool
from tests.exporter._db_helpers import MYSQL_SCHEMA, collector
from tests.exporter.conftest import promtool_check, refresh


def _connect(port: int, database: str | None = None) -> pymysql.connections.Connection[object]:
    return pymysql.connect(host="127.0.0.1", port=port, user="root", database=database,
                           autocommit=True, connect_timeout=2)  # fmt: skip


def _wait_until_up(server: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            _connect(port).close()
            return
        except pymysql.MySQLError:
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"private mariadbd did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.1)


@pytest.fixture(scope="module")
def pfs_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Start a private MariaDB with performance_schema on; yield its port."""
    install = require_tool("mariadb-install-db")
    mariadbd = require_tool("mariadbd")
    base = tmp_path_factory.mktemp("mariadb")
    subprocess.run(
        [install, "--no-defaults", f"--datadir={base}/data", "--user=root", "--skip-test-db",
         "--auth-root-authentication-method=normal"],
        check=True, capture_output=True,
    )  # fmt: skip
    port = free_port()
    log = base / "error.log"
    server = subprocess.Popen(
        [mariadbd, "--no-defaults", "--user=root", f"--datadir={base}/data", f"--port={port}",
         "--bind-address=127.0.0.1", f"--socket={base}/sock", f"--pid-file={base}/pid",
         f"--log-error={log}", "--performance-schema=ON", "--innodb-buffer-pool-size=16M",
         "--skip-log-bin"],
    )  # fmt: skip
    try:
        _wait_until_up(server, port, log)
        yield port
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


async def test_digests_top_n_and_slow(
    pfs_port: int, unique: str, context: Context, promtool: str
) -> None:
    admin = _connect(pfs_port)
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{unique}`")
            cur.execute(f"USE `{unique}`")
            for statement in MYSQL_SCHEMA:
                cur.execute(statement)
            # Forget the set-up DDL (a fresh server can take > 100 ms to create a table).
            cur.execute("TRUNCATE TABLE performance_schema.events_statements_summary_by_digest")
            cur.execute("SELECT SLEEP(0.15)")
            for i in range(4):
                cur.execute("SELECT COUNT(*) FROM jobs WHERE attempts > %s", (i,))
        dsn = f"mysql://root@127.0.0.1:{pfs_port}/{unique}"
        c = collector(context, "mysql", dsn, statements={"top": 10})
        try:
            await refresh(c)
            s = await refresh(c)  # the exporter's own statements are now in the digests
            infos = {lb["queryid"]: lb["query"] for lb, _ in s.all("maintwatch_db_statement_info")}
            own = ("performance_schema", "SHOW ", "SELECT @@")
            assert not [q for q in infos.values() if any(o in q for o in own)]
            sleep_id = next(k for k, q in infos.items() if "SLEEP" in q)
            count_id = next(k for k, q in infos.items() if "FROM `jobs`" in q)
            assert s.get("maintwatch_db_statement_calls_total", queryid=count_id) == 4
            seconds = s.get("maintwatch_db_statement_seconds_total", queryid=sleep_id)
            assert seconds is not None
            assert seconds >= 0.15
            assert s.get("maintwatch_db_slow_statements") == 1
            assert s.get("maintwatch_db_slow_queries_total") is not None
            promtool_check(promtool, s.text())
        finally:
            await c.close()
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE `{unique}`")
        admin.close()
