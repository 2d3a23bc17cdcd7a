"""PostgreSQL on a thread of its own: one blocking connection for one-statement scripts.

psycopg's blocking calls wait for the server in C with the GIL released; its asyncio calls run
Python on the event loop for every wait. The inbox's appends (a webhook's 200 waits on one) go
this way, from a writer thread, so the HTTP process's event loop only hands them over.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ParamSpec, TypeVar

import psycopg
from psycopg.rows import dict_row

from receiver.config import PostgresStore
from receiver.store.dialect import POSTGRES, Dialect
from receiver.store.postgres import (
    CONNECT_TIMEOUT,
    Backoff,
    dsn_of,
    encoded,
    statement,
    unavailable,
)
from receiver.store.tx import Params, Row, Script, run_sync

P = ParamSpec("P")
T = TypeVar("T")


class BlockingTx:
    """A script's statements on a blocking connection: its awaits never suspend (run_sync)."""

    dialect: Dialect = POSTGRES

    def __init__(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        self._cursor = conn.cursor()

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run a statement; return the number of rows it changed."""
        return self._run(sql, params).rowcount

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """Run a query; return its first row, if any."""
        return self._run(sql, params).fetchone()

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Run a query; return every row."""
        return self._run(sql, params).fetchall()

    async def executemany(self, sql: str, params: Sequence[Params]) -> None:
        """Run a statement once per parameter set."""
        if params:
            self._cursor.executemany(encoded(sql), params)

    def _run(self, sql: str, params: Params) -> psycopg.Cursor[dict[str, Any]]:
        query, prepare = statement(sql)
        return self._cursor.execute(query, params, prepare=prepare)


class BlockingSession:
    """One autocommit connection, used from one thread: each statement commits on its own.

    Connected on first use; a connection that fails is dropped and made again on the next
    use, after the same backoff as the async store's.
    """

    def __init__(self, config: PostgresStore) -> None:
        self.config = config
        self._conn: psycopg.Connection[dict[str, Any]] | None = None
        self._backoff = Backoff()

    def run(self, script: Script[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a one-statement script; StoreUnavailable if the server cannot be reached."""
        conn = self._connected()
        try:
            return run_sync(script(BlockingTx(conn), *args, **kwargs))
        except psycopg.OperationalError as exc:
            self.close()
            raise unavailable(exc) from exc

    def close(self) -> None:
        """Close the connection, if any."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connected(self) -> psycopg.Connection[dict[str, Any]]:
        if self._conn is not None and not self._conn.broken:
            return self._conn
        self.close()
        self._backoff.check()
        try:
            self._conn = psycopg.connect(
                dsn_of(self.config),
                row_factory=dict_row,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT,
            )
        except psycopg.OperationalError as exc:
            raise self._backoff.failed(exc) from exc
        self._backoff.succeeded()
        return self._conn
