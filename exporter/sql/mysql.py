"""MySQL/MariaDB driver: one read-only pymysql connection, used only from its own thread."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Sequence
from typing import Any

import pymysql

from exporter.sql.base import (
    TAG,
    ConnectFailed,
    ConnectionLost,
    Driver,
    Row,
    StatementFailed,
    Target,
    check_identifier,
)
from exporter.workers import WorkerPool

# Server errors that end the session (killed, shutting down, gone away, lost mid-query).
_CONNECTION_ERRORS = {1053, 1927, 2006, 2013, 2055, 4031}
# Errors that cancel one statement (max_statement_time, max_execution_time, lock waits).
_TIMEOUT_ERRORS = {1205, 1317, 1969, 3024}


def _reason(exc: BaseException) -> str:
    """Return `message (code)` for pymysql errors, else the exception text."""
    args = exc.args
    if len(args) >= 2 and isinstance(args[0], int):
        return f"{' '.join(str(args[1]).split())} ({args[0]})"
    return " ".join(str(exc).split()) or type(exc).__name__


def _quote(name: str) -> str:
    return ".".join(f"`{part}`" for part in check_identifier(name).split("."))


class MysqlDriver(Driver):
    """Run statements in a single worker thread so calls never overlap on the connection.

    A statement cancelled by the runtime's timeout keeps running in the thread until the
    server's statement timeout (or the socket read timeout) ends it; the next call queues
    behind it instead of racing it on the same connection.
    """

    dialect = "mysql"

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        # Its own daemon thread: a statement stuck past every timeout never blocks exit.
        self._executor = WorkerPool("mw-mysql", 1)
        self._conn: pymysql.connections.Connection[Any] | None = None  # worker thread only

    async def fetch(self, template: str, params: Sequence[Any] = (), **tables: str) -> list[Row]:
        """Run one tagged statement in the worker thread."""
        query = TAG + template.format(**{key: _quote(name) for key, name in tables.items()})
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._fetch, query, tuple(params))

    def _fetch(self, query: str, params: tuple[Any, ...]) -> list[Row]:
        reused = self._conn is not None
        try:
            return self._run(self._connection(), query, params)
        except ConnectionLost:
            # wait_timeout or a server restart kills reused connections: retry once.
            if not reused:
                raise
            return self._run(self._connection(), query, params)

    def _connection(self) -> pymysql.connections.Connection[Any]:
        if self._conn is not None and not self._conn.open:
            self._drop()
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _connect(self) -> pymysql.connections.Connection[Any]:
        t = self.target
        try:
            conn = pymysql.connect(
                host=t.host,
                port=t.port,
                user=t.user,
                password=t.password or "",
                database=t.database,
                connect_timeout=t.connect_timeout,
                # Backstop for a server that stops answering: bounds how long the thread blocks.
                read_timeout=t.statement_timeout + t.connect_timeout,
                write_timeout=t.connect_timeout,
                autocommit=True,
                charset="utf8mb4",
                program_name=t.application_name,
            )
        except pymysql.MySQLError as exc:
            raise ConnectFailed(f"cannot connect to mysql {t.describe()}: {_reason(exc)}") from None
        try:
            self._setup(conn)
        except pymysql.MySQLError as exc:
            conn.close()
            raise ConnectFailed(
                f"cannot set up session on mysql {t.describe()}: {_reason(exc)}"
            ) from None
        return conn

    def _setup(self, conn: pymysql.connections.Connection[Any]) -> None:
        t = self.target
        version = str(conn.get_server_info())  # type: ignore[no-untyped-call]  # untyped stub
        mariadb = "mariadb" in version.lower()
        with conn.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION READ ONLY")
            # Laravel writes failed_at in UTC; read timestamps back without DST folding.
            cur.execute("SET SESSION time_zone = '+00:00'")
            cur.execute(
                "SET SESSION lock_wait_timeout = %s", (max(1, math.ceil(t.statement_timeout)),)
            )
            if mariadb:
                cur.execute("SET SESSION max_statement_time = %s", (t.statement_timeout,))
            else:
                cur.execute(
                    "SET SESSION max_execution_time = %s", (round(t.statement_timeout * 1000),)
                )

    def _run(
        self, conn: pymysql.connections.Connection[Any], query: str, params: tuple[Any, ...]
    ) -> list[Row]:
        where = f"mysql {self.target.describe()}"
        try:
            with conn.cursor() as cur:
                cur.execute(query, params)
                return list(cur.fetchall())
        except pymysql.MySQLError as exc:
            code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
            if (
                not conn.open
                or code in _CONNECTION_ERRORS
                or isinstance(exc, pymysql.InterfaceError)
            ):
                self._drop()
                raise ConnectionLost(f"lost connection to {where}: {_reason(exc)}") from None
            if code in _TIMEOUT_ERRORS:
                raise StatementFailed(
                    f"statement cancelled on {where} after statement_timeout "
                    f"{self.target.statement_timeout:g}s: {_reason(exc)}"
                ) from None
            raise StatementFailed(f"{where}: {_reason(exc)}") from None

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            # close() sends COM_QUIT if it can and always closes the socket; its only error
            # is "Already closed", which is the state we want.
            with contextlib.suppress(pymysql.err.Error):
                conn.close()

    async def close(self) -> None:
        """Close the connection (after any statement still running) and stop the thread."""
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._drop)
        finally:
            self._executor.shutdown(wait=False)
