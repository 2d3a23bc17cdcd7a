"""Restore drills into PostgreSQL: plain dumps through `psql`, custom format via `pg_restore`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import sql

from exporter.drills.checks import live_checks, table_checks
from exporter.drills.config import Endpoint
from exporter.drills.engine import MARKER, Inspection, ScratchDatabase
from exporter.drills.model import Refused
from exporter.drills.stream import PipeOutcome, guarded, peek, pipe_into

PGDMP = b"PGDMP"
MAINTENANCE_DB = "postgres"
# pg_dump without --create never connects elsewhere nor creates databases; a dump made with
# --create, or by pg_dumpall, does, and restoring it would write outside the scratch database.
# psql meta-commands that run programs or touch files (`\!`, `\o`, `\copy`, `\g`, `\i`…)
# never belong in a dump either: a drill must not run what a tampered backup asks for. (A COPY
# data line cannot start with one: COPY writes a leading backslash as `\\`.)
FORBIDDEN = (
    b"\\connect",
    b"\\c ",
    b"\\!",
    b"\\o",
    b"\\copy",
    b"\\g",
    b"\\w",
    b"\\i",
    b"\\setenv",
    b"\\cd",
    b"CREATE DATABASE",
    b"DROP DATABASE",
    b"CREATE ROLE",
    b"ALTER ROLE",
)


def connect(endpoint: Endpoint, database: str) -> Any:
    """Open an autocommit connection to `database` on the endpoint's server."""
    return psycopg.connect(
        host=endpoint.host,
        port=endpoint.port,
        user=endpoint.user,
        password=endpoint.password.get_secret_value() or None,
        dbname=database,
        autocommit=True,
        connect_timeout=10,
        application_name="maintwatch-drill",
    )


class PostgresEngine(ScratchDatabase):
    """Scratch database on a PostgreSQL server, marked by its database comment."""

    def _state(self, conn: Any) -> str:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (self.db,),
        ).fetchone()
        if row is None:
            return "absent"
        return "ours" if row[0] == MARKER else "foreign"

    def prepare(self) -> None:
        """Drop a leftover of an earlier drill, refuse a foreign database, create the scratch."""
        ident = sql.Identifier(self.db)
        with connect(self.scratch, MAINTENANCE_DB) as conn:
            state = self._state(conn)
            if state == "foreign":
                raise Refused(
                    f"database {self.db} exists on {self.scratch.host}:{self.scratch.port}"
                    " without the drill's marker comment: the drill did not create it and will"
                    " not restore over it"
                )
            if state == "ours":
                conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(ident))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
            conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(ident, sql.Literal(MARKER)))

    def restore(
        self, content: Iterator[bytes], deadline: float, cancel: threading.Event
    ) -> PipeOutcome:
        """Pipe a custom-format dump into `pg_restore`, a plain one into `psql`."""
        head, content = peek(content, len(PGDMP))
        where = [f"--host={self.scratch.host}", f"--port={self.scratch.port}"]
        where += [f"--username={self.scratch.user}", f"--dbname={self.db}"]
        if head == PGDMP:
            argv = [self.config.pg_restore, "--exit-on-error", "--no-owner", "--no-privileges"]
        else:
            argv = [self.config.client_binary(), "--no-psqlrc", "--quiet"]
            argv += ["--set=ON_ERROR_STOP=1", "--file=-"]
            why = "a drill restores pg_dump output made without --create only"
            content = guarded(content, FORBIDDEN, why)
        env = {"PGPASSWORD": self.scratch.password.get_secret_value(), "PGCONNECT_TIMEOUT": "10"}
        return pipe_into([*argv, *where], env, content, deadline, cancel, self.config.low_priority)

    def inspect(self, previous: tuple[int, int] | None) -> Inspection:
        """Count rows of the required tables, and compare them with live when configured."""
        with connect(self.scratch, self.db) as conn:
            rows = counts(conn, self.config.tables)
        found = Inspection(rows={t: n for t, n in rows.items() if n is not None})
        found.checks = table_checks(self.config.tables, rows)
        live = self.config.live_endpoint()
        if live is not None:
            with connect(live, live.database) as conn:
                conn.read_only = True
                live_rows = counts(conn, self.config.tables)
            found.checks += live_checks(rows, live_rows, self.config.tolerance)
        return found

    def drop(self) -> bool:
        """Drop the scratch database if it carries the marker (its sessions are ended)."""
        with connect(self.scratch, MAINTENANCE_DB) as conn:
            if self._state(conn) != "ours":
                return False
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(self.db)))
            return True


def counts(conn: Any, tables: dict[str, int]) -> dict[str, int | None]:
    """Return count(*) of each table (`table` or `schema.table`), None for a missing one."""
    out: dict[str, int | None] = {}
    for table in tables:
        ident = sql.Identifier(*table.split(".", 1))
        try:
            with conn.transaction():
                row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()
        except psycopg.errors.UndefinedTable:
            out[table] = None
            continue
        out[table] = int(row[0])
    return out
