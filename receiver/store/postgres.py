"""PostgreSQL store: several receiver replicas share it; claims use FOR UPDATE SKIP LOCKED.

A small fixed set of async connections; a connection that fails is replaced on its next use.
Intakes that change something lock their alert group's row (`FOR UPDATE`), so two replicas
receiving the same group (Alertmanager HA pairs) apply payloads one after the other; intakes
arriving together share one transaction (see `Batcher`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, ParamSpec, TypeVar

import psycopg
from psycopg.rows import dict_row

from receiver.config import PostgresStore
from receiver.escalation import transactions as escalation_tx
from receiver.escalation.plan import ActRequest, ActResult
from receiver.incident_record import IncidentRecord, TimelineEntry
from receiver.intake import apply as intake
from receiver.intake.inbox import Row as InboxRow
from receiver.intake.payload import Payload
from receiver.store import escalation_sql as esc
from receiver.store import groups, inbox_sql, outbox_sql, queries, retention_sql
from receiver.store.base import (
    Finish,
    Fired,
    IngestResult,
    IntakeRules,
    Outage,
    OutboxRow,
    PruneTarget,
    Recovered,
    Stats,
    Store,
    StoreUnavailable,
    Wanted,
)
from receiver.store.batch import Batcher
from receiver.store.dialect import POSTGRES, Dialect
from receiver.store.migrate import migrate
from receiver.store.tx import Params, Row, Script

Conn = psycopg.AsyncConnection[dict[str, Any]]
P = ParamSpec("P")
T = TypeVar("T")
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0  # seconds between connection attempts while down
# The database or the connection is in trouble (also deadlocks and serialization failures):
# the whole batch fails and its callers answer 503; anything else fails one payload alone.
_FATAL: tuple[type[Exception], ...] = (psycopg.OperationalError, StoreUnavailable)


CONNECT_TIMEOUT = 5  # seconds


def unavailable(exc: Exception) -> StoreUnavailable:
    """Return the error a caller sees when PostgreSQL cannot be reached or dropped us."""
    return StoreUnavailable(f"postgres: {exc}".strip())


def dsn_of(config: PostgresStore) -> str:
    """Return the connection string, with the password from the config or its file."""
    password = config.password_file or config.password
    if password is None:
        return config.dsn
    return psycopg.conninfo.make_conninfo(config.dsn, password=password.get_secret_value())


class Backoff:
    """While the server is down, callers fail fast instead of each waiting for a connect
    timeout; the wait doubles up to BACKOFF_MAX and resets on the first good connect."""

    def __init__(self) -> None:
        self._wait = 0.0
        self._retry_at = 0.0
        self._last_error = ""

    def check(self) -> None:
        """Raise StoreUnavailable while the last failed connect's wait lasts."""
        wait = self._retry_at - time.monotonic()
        if wait > 0:
            raise StoreUnavailable(f"{self._last_error} (next attempt in {wait:.1f}s)")

    def failed(self, exc: Exception) -> StoreUnavailable:
        """Record a failed connect; return the error to raise."""
        self._wait = min(BACKOFF_MAX, max(BACKOFF_FIRST, self._wait * 2))
        self._retry_at = time.monotonic() + self._wait
        error = unavailable(exc)
        self._last_error = str(error)
        return error

    def succeeded(self) -> None:
        """Record a good connect."""
        self._wait, self._retry_at = 0.0, 0.0


class PgTx:
    """The scripts' transaction on one pooled connection.

    One cursor for writes and one for reads, kept for the transaction: a cursor per statement
    costs more client CPU than a pipelined statement itself.
    """

    dialect: Dialect = POSTGRES

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self._cursors: dict[str, psycopg.AsyncCursor[dict[str, Any]]] = {}

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run a statement; return the number of rows it changed."""
        return (await self._run("writes", sql, params)).rowcount

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """Run a query; return its first row, if any."""
        return await (await self._run("reads", sql, params)).fetchone()

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Run a query; return every row."""
        return await (await self._run("reads", sql, params)).fetchall()

    async def executemany(self, sql: str, params: Sequence[Params]) -> None:
        """Run a statement once per parameter set."""
        if params:
            await self._cursor("writes").executemany(encoded(sql), params)

    async def _run(self, use: str, sql: str, params: Params) -> psycopg.AsyncCursor[dict[str, Any]]:
        cursor = self._cursor(use)
        query, prepare = statement(sql)
        return await cursor.execute(query, params, prepare=prepare)

    def _cursor(self, use: str) -> psycopg.AsyncCursor[dict[str, Any]]:
        try:
            return self._cursors[use]
        except KeyError:
            cursor = self._cursors[use] = self.conn.cursor()
            return cursor


# psycopg prepares a statement run often; PostgreSQL then settles on one generic plan for it.
# For a read of `= ANY(<array>)` that plan was judged once, not knowing the array's length and
# with the table's statistics of the time: on a table that was empty then (a new store, before
# autovacuum's first ANALYZE), a scan of every row, kept while the table grows. A LATERAL
# lookup per key likewise: on a table of one page, each key's read is planned as a scan of it.
# Planned at each run, a read sees the table's size of the moment.
_PLANNED_EACH_TIME = (b"= ANY(", b" LATERAL (")
_STATEMENTS: dict[str, tuple[bytes, bool | None]] = {}


def statement(sql: str) -> tuple[bytes, bool | None]:
    """Return the statement rendered for PostgreSQL and encoded, and whether to prepare it
    (None: psycopg's default, once run a few times; False: planned at each run). Once per text."""
    try:
        return _STATEMENTS[sql]
    except KeyError:
        query = POSTGRES.render(sql).encode()
        each_time = any(marker in query for marker in _PLANNED_EACH_TIME)
        found = _STATEMENTS[sql] = (query, False if each_time else None)
        return found


def encoded(sql: str) -> bytes:
    """Return the statement rendered for PostgreSQL and encoded."""
    return statement(sql)[0]


class PostgresBackend(Store):
    """The store for several replicas."""

    fatal = _FATAL

    def __init__(self, config: PostgresStore) -> None:
        self.config = config
        self._idle: asyncio.Queue[Conn | None] = asyncio.Queue()
        self._all: list[Conn] = []
        self._migrated = False
        self._migrating = asyncio.Lock()
        self._backoff = Backoff()
        # Smaller than SQLite's batches: a batch holds its groups' row locks, which the other
        # replicas' intakes of those groups wait for, until its commit.
        self._batcher: Batcher[intake.Item, IngestResult] = Batcher(self._ingest_items, 64)

    async def _connect(self) -> Conn:
        self._backoff.check()
        try:
            conn: Conn = await psycopg.AsyncConnection.connect(
                dsn_of(self.config), row_factory=dict_row, connect_timeout=CONNECT_TIMEOUT
            )
        except psycopg.OperationalError as exc:
            raise self._backoff.failed(exc) from exc
        self._backoff.succeeded()
        self._all.append(conn)
        return conn

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[Conn]:
        conn = await self._idle.get()
        try:
            if conn is None or conn.closed or conn.broken:
                conn = await self._connect()
            if not self._migrated:
                await self._migrate(conn)
            yield conn
        except psycopg.OperationalError as exc:
            await self._discard(conn)
            conn = None
            raise unavailable(exc) from exc
        except StoreUnavailable:
            conn = None
            raise
        finally:
            self._idle.put_nowait(conn)

    @asynccontextmanager
    async def _tx(self, pipelined: bool = False) -> AsyncIterator[PgTx]:
        async with self._conn() as conn, conn.transaction():
            if not pipelined:
                yield PgTx(conn)
                return
            async with conn.pipeline():
                yield PgTx(conn)

    async def _discard(self, conn: Conn | None) -> None:
        if conn is not None:
            self._all.remove(conn)
            await conn.close()

    async def open(self) -> None:
        """Connect and apply migrations; StoreUnavailable leaves the store usable once back.

        Connections and the migration are retried on use, so a receiver started while the
        server is down answers 503 until it returns instead of exiting.
        """
        for _ in range(self.config.pool_size):
            self._idle.put_nowait(None)  # connect lazily, except for the migration below
        async with self._tx():
            pass

    async def migrated(self) -> None:
        """Apply the migrations if not yet done (StoreUnavailable while the server is down)."""
        if not self._migrated:
            async with self._tx():
                pass

    async def _migrate(self, conn: Conn) -> None:
        async with self._migrating:
            if self._migrated:
                return
            async with conn.transaction():
                await migrate(PgTx(conn))
            self._migrated = True

    async def close(self) -> None:
        """Close every connection."""
        for conn in list(self._all):
            await self._discard(conn)

    async def transaction(self, script: Script[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a storage script in one transaction on a pooled connection (see Store)."""
        async with self._tx() as tx:
            return await script(tx, *args, **kwargs)

    async def ping(self) -> None:
        """Run a trivial query."""
        async with self._tx() as tx:
            await tx.execute("SELECT 1")

    async def ingest(self, payload: Payload, now: float, rules: IntakeRules) -> IngestResult:
        """Apply a payload; intakes arriving while one commits share the next transaction."""
        return await self._batcher.submit((payload, now, rules))

    async def _ingest_items(self, items: list[intake.Item]) -> list[IngestResult | Exception]:
        return await self._apply(items, None)

    async def ingest_batch(
        self,
        items: Sequence[tuple[Payload, float]],
        rules: IntakeRules,
        mark: tuple[str, int] | None = None,
    ) -> list[IngestResult | Exception]:
        """Apply payloads in order in one transaction, each failing alone; save `mark` in it."""
        return await self._apply([(payload, now, rules) for payload, now in items], mark)

    async def _apply(
        self, items: Sequence[intake.Item], mark: tuple[str, int] | None
    ) -> list[IngestResult | Exception]:
        return await self._retrying(
            lambda isolated: self._pipelined(
                not isolated, intake.apply_batch, items, mark, isolated, _FATAL
            )
        )

    async def _pipelined(
        self, on: bool, script: Script[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        # Pipeline mode: a write whose result nobody reads goes out without waiting for the
        # previous one's answer (a new group's ~7 statements wait ~3 times instead of 7). Only
        # for the optimistic pass: a failure there rolls the whole batch back anyway, so an
        # error reported at a later statement blames no payload; the isolated redo runs plain.
        async with self._tx(on) as tx:
            return await script(tx, *args, **kwargs)

    async def apply_inbox(
        self,
        limit: int,
        prepare: Callable[[InboxRow], intake.Prepared],
        rules: IntakeRules,
        now: float,
    ) -> intake.Taken | None:
        """Apply and delete the oldest inbox rows in one tx; None: another applier's turn."""
        return await self._retrying(
            lambda isolated: self._pipelined(
                not isolated, intake.apply_inbox, limit, prepare, rules, now, isolated, _FATAL
            )
        )

    async def inbox_pending(self, seq: int) -> bool:
        """Return whether an inbox row at or below `seq` is not applied yet."""
        return await self.transaction(inbox_sql.pending, seq)

    async def _retrying(self, run: Callable[[bool], Awaitable[T]]) -> T:
        try:
            return await self._optimistic(run)
        except StoreUnavailable as exc:
            # A deadlock (an ack holds the incident and waits for a group this batch holds)
            # or a serialization failure rolled everything back: once more, then 503.
            if not isinstance(exc.__cause__, psycopg.errors.TransactionRollback):
                raise
            return await self._optimistic(run)

    async def _optimistic(self, run: Callable[[bool], Awaitable[T]]) -> T:
        # Optimistic: no savepoints (two round trips per payload) while every payload applies.
        try:
            return await run(False)
        except _FATAL:
            raise
        except Exception:
            # Rolled back; redo it isolated so only the bad payload fails. The other payloads
            # are decided again under their locks, so what another replica wrote meanwhile counts.
            return await run(True)

    async def inbox_mark(self, inbox_id: str) -> int:
        """Return the last inbox sequence number applied (0 if none)."""
        return await self.transaction(groups.inbox_mark, inbox_id)

    async def recover(self, now: float) -> Recovered:
        """Handle rows left in `sending` by a crashed or stuck worker."""
        return await self.transaction(outbox_sql.recover, now)

    async def claim(
        self, now: float, wanted: Wanted, lease: float, max_messages: int, window: float
    ) -> list[OutboxRow]:
        """Claim due rows lane by lane; rows another replica holds are skipped, not waited for."""
        return await self.transaction(outbox_sql.claim, now, wanted, lease, max_messages, window)

    async def start(self, row: OutboxRow, now: float) -> bool:
        """Commit the start mark, fenced by the claim's attempt number."""
        return await self.transaction(outbox_sql.start, row, now)

    async def finish(self, row: OutboxRow, result: Finish) -> bool:
        """Record an attempt's result, fenced by the claim's attempt number."""
        return await self.transaction(outbox_sql.finish, row, result)

    async def resolve(
        self, incident_id: int, now: float, by: str, rules: IntakeRules
    ) -> IngestResult | None:
        """Resolve an incident by hand, holding its row lock."""
        return await self.transaction(intake.resolve, incident_id, now, by, rules)

    async def incidents(
        self, state: str | None, labels: Mapping[str, str], limit: int
    ) -> list[IncidentRecord]:
        """List incidents, newest first."""
        return await self.transaction(queries.list_incidents, state, labels, limit)

    async def incident(self, incident_id: int) -> IncidentRecord | None:
        """Return one incident with alerts, outbox rows and delivery log."""
        return await self.transaction(queries.show_incident, incident_id)

    async def stats(self) -> Stats:
        """Count incidents and outbox rows by state."""
        return await self.transaction(queries.stats)

    async def prune(self, target: PruneTarget, before: float, limit: int) -> int:
        """Delete one bounded batch of expired rows (receiver.store.retention)."""
        return await self.transaction(retention_sql.prune, target, before, limit)

    async def act(
        self, incident_id: int, request: ActRequest, now: float, rules: IntakeRules
    ) -> ActResult:
        """Apply an ack/unack/resolve under the incident's row lock."""
        return await self.transaction(escalation_tx.act, incident_id, request, now, rules)

    async def escalate_due(self, now: float, limit: int, rules: IntakeRules) -> list[Fired]:
        """Feed due timers to the engine (FOR UPDATE SKIP LOCKED)."""
        return await self.transaction(escalation_tx.escalate_due, now, limit, rules)

    async def next_timer(self) -> float | None:
        """Return the earliest escalation timer."""
        return await self.transaction(esc.next_timer)

    async def overdue(self, now: float) -> tuple[int, float | None]:
        """Count open incidents whose timer is before `now`."""
        return await self.transaction(esc.overdue, now)

    async def timeline(self, incident_id: int) -> list[TimelineEntry]:
        """Return the incident's timeline."""
        return await self.transaction(esc.timeline, incident_id)

    async def watchdog_beat(
        self, name: str, now: float, back: Outage, rules: IntakeRules
    ) -> int | None:
        """Record a heartbeat."""
        return await self.transaction(escalation_tx.watchdog_beat, name, now, back, rules)

    async def watchdog_check(
        self, name: str, now: float, expect_every: float, outage: Outage, rules: IntakeRules
    ) -> int | None:
        """Open the outage incident if the heartbeat is late."""
        return await self.transaction(
            escalation_tx.watchdog_check, name, now, expect_every, outage, rules
        )
