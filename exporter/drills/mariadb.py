"""Restore drills into MariaDB/MySQL: a scratch database fed by the `mariadb` client."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pymysql

from exporter.drills.checks import live_checks, table_checks
from exporter.drills.config import Endpoint
from exporter.drills.engine import MARKER, Inspection, ScratchDatabase
from exporter.drills.model import Refused
from exporter.drills.stream import PipeOutcome, guarded, pipe_into

MARKER_TABLE = "maintwatch_drill"
# A single-database dump never switches or creates databases; one made with --databases or
# --all-databases does, and restoring it would write outside the scratch database. Client
# commands that run programs or read other files (`\!`, `system`, `source`) never belong in a
# dump either: a drill must not run what a tampered backup asks for.
FORBIDDEN = (
    b"USE ",
    b"CREATE DATABASE",
    b"DROP DATABASE",
    b"CREATE SCHEMA",
    b"DROP SCHEMA",
    b"\\!",
    b"\\.",
    b"system ",
    b"source ",
)
_NO_SUCH_TABLE = 1146
_COUNT = "SELECT COUNT(*) FROM {table}"  # identifiers quoted by quote(): not parameters


def quote(name: str) -> str:
    """Quote an identifier with backticks."""
    return "`" + name.replace("`", "``") + "`"


def connect(endpoint: Endpoint, database: str | None = None) -> Any:
    """Open an autocommit connection (to no database unless `database` is given)."""
    return pymysql.connect(
        host=endpoint.host,
        port=endpoint.port,
        user=endpoint.user,
        password=endpoint.password.get_secret_value(),
        database=database,
        autocommit=True,
        connect_timeout=10,
    )


class MariadbEngine(ScratchDatabase):
    """Scratch database on a MariaDB/MySQL server, marked by a table of the drill's own."""

    def _state(self, cur: Any) -> str:
        """Return `absent`, `ours` (marker table present) or `foreign`."""
        cur.execute("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (self.db,))
        if cur.fetchone() is None:
            return "absent"
        cur.execute(
            "SELECT TABLE_COMMENT FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
            (self.db, MARKER_TABLE),
        )
        row = cur.fetchone()
        return "ours" if row is not None and row[0] == MARKER else "foreign"

    def prepare(self) -> None:
        """Drop a leftover of an earlier drill, refuse a foreign database, create the scratch."""
        with connect(self.scratch) as conn, conn.cursor() as cur:
            state = self._state(cur)
            if state == "foreign":
                raise Refused(
                    f"database {self.db} exists on {self.scratch.host}:{self.scratch.port}"
                    f" without the drill's marker table {MARKER_TABLE}: the drill did not create"
                    " it and will not restore over it"
                )
            if state == "ours":
                cur.execute(f"DROP DATABASE {quote(self.db)}")
            cur.execute(f"CREATE DATABASE {quote(self.db)}")
            cur.execute(
                f"CREATE TABLE {quote(self.db)}.{quote(MARKER_TABLE)}"
                " (created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP) COMMENT = %s",
                (MARKER,),
            )

    def restore(
        self, content: Iterator[bytes], deadline: float, cancel: threading.Event
    ) -> PipeOutcome:
        """Pipe the dump into `mariadb --one-database <scratch>`."""
        argv = [
            self.config.client_binary(),
            "--batch",
            "--one-database",
            f"--host={self.scratch.host}",
            f"--port={self.scratch.port}",
            f"--user={self.scratch.user}",
            self.db,
        ]
        env = {"MYSQL_PWD": self.scratch.password.get_secret_value()}
        why = "a drill restores single-database dumps only"
        content = guarded(content, FORBIDDEN, why)
        return pipe_into(argv, env, content, deadline, cancel, self.config.low_priority)

    def inspect(self, previous: tuple[int, int] | None) -> Inspection:
        """Count rows of the required tables, and compare them with live when configured."""
        with connect(self.scratch, self.db) as conn:
            rows = counts(conn, self.db, self.config.tables)
        found = Inspection(rows={t: n for t, n in rows.items() if n is not None})
        found.checks = table_checks(self.config.tables, rows)
        live = self.config.live_endpoint()
        if live is not None:
            with connect(live, live.database) as conn:
                with conn.cursor() as cur:
                    cur.execute("START TRANSACTION READ ONLY")
                live_rows = counts(conn, live.database, self.config.tables)
            found.checks += live_checks(rows, live_rows, self.config.tolerance)
        return found

    def drop(self) -> bool:
        """Drop the scratch database if it carries the marker."""
        with connect(self.scratch) as conn, conn.cursor() as cur:
            if self._state(cur) != "ours":
                return False
            cur.execute(f"DROP DATABASE {quote(self.db)}")
            return True


def counts(conn: Any, database: str, tables: dict[str, int]) -> dict[str, int | None]:
    """Return COUNT(*) of each table, None for a missing one."""
    out: dict[str, int | None] = {}
    with conn.cursor() as cur:
        for table in tables:
            try:
                cur.execute(_COUNT.format(table=f"{quote(database)}.{quote(table)}"))
            except pymysql.err.ProgrammingError as exc:
                if exc.args[0] != _NO_SUCH_TABLE:
                    raise
                out[table] = None
                continue
            out[table] = int(cur.fetchone()[0])
    return out
