"""PostgreSQL driver: one autocommit, read-only psycopg 3 async connection with timeouts."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

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


def _reason(exc: BaseException) -> str:
    """Return the exception text on one line (libpq messages span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


class PostgresDriver(Driver):
    """Run statements on one lazily opened connection; reconnect once when it went stale."""

    dialect = "postgres"

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self._conn: psycopg.AsyncConnection[Row] | None = None
        self._discard = False

    async def fetch(self, template: str, params: Sequence[Any] = (), **tables: str) -> list[Row]:
        """Run one tagged statement; retry once on a fresh connection if a reused one broke."""
        query = sql.SQL(TAG + template).format(
            **{
                key: sql.Identifier(*check_identifier(name).split("."))
                for key, name in tables.items()
            }
        )
        reused = self._conn is not None and not self._discard
        try:
            return await self._run(await self._connection(), query, tuple(params))
        except ConnectionLost:
            # A server restart or an idle-connection reaper kills reused connections: retry once.
            if not reused:
                raise
            return await self._run(await self._connection(), query, tuple(params))

    async def _connection(self) -> psycopg.AsyncConnection[Row]:
        conn = self._conn
        if conn is not None and (self._discard or conn.closed or conn.broken):
            await self.close()
            conn = None
        if conn is None:
            conn = await self._connect()
            self._conn, self._discard = conn, False
        return conn

    async def _connect(self) -> psycopg.AsyncConnection[Row]:
        t = self.target
        timeout_ms = max(1, round(t.statement_timeout * 1000))
        # Session settings travel in the startup packet: no extra round trips per connection.
        options = f"-c default_transaction_read_only=on -c statement_timeout={timeout_ms}"
        kwargs: dict[str, Any] = {
            "host": t.host,
            "port": t.port,
            "user": t.user,
            "dbname": t.database,
            "application_name": t.application_name,
            "connect_timeout": max(2, math.ceil(t.connect_timeout)),
            "options": options,
            "autocommit": True,
            **dict(t.params),
        }
        if t.password is not None:
            kwargs["password"] = t.password
        try:
            async with asyncio.timeout(t.connect_timeout):
                conn = await psycopg.AsyncConnection.connect(**kwargs)
        except TimeoutError:
            raise ConnectFailed(
                f"cannot connect to postgres {t.describe()}: timed out after {t.connect_timeout:g}s"
            ) from None
        except psycopg.Error as exc:
            raise ConnectFailed(
                f"cannot connect to postgres {t.describe()}: {_reason(exc)}"
            ) from None
        return conn

    async def _run(
        self, conn: psycopg.AsyncConnection[Row], query: sql.Composed, params: tuple[Any, ...]
    ) -> list[Row]:
        try:
            async with conn.cursor() as cur:
                await cur.execute(query, params)
                return await cur.fetchall() if cur.description else []
        except asyncio.CancelledError:
            # Cancelled mid-statement (runtime timeout): psycopg sends the server a cancel and
            # waits a bounded time for it; if that wait ran out the session state is unknown,
            # so the connection is replaced on the next call rather than reused.
            self._discard = True
            raise
        except psycopg.Error as exc:
            where = f"postgres {self.target.describe()}"
            if conn.closed or conn.broken:
                await self.close()
                raise ConnectionLost(f"lost connection to {where}: {_reason(exc)}") from None
            if isinstance(exc, psycopg.errors.QueryCanceled):
                raise StatementFailed(
                    f"statement cancelled on {where} after statement_timeout "
                    f"{self.target.statement_timeout:g}s: {_reason(exc)}"
                ) from None
            raise StatementFailed(f"{where}: {_reason(exc)}") from None

    async def close(self) -> None:
        """Close the connection if one is open."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
