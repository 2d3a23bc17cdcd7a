"""SQLite store: one file in WAL mode with synchronous=FULL; every call runs on one writer thread.

A single thread owns the connection, so writes are serialized without locks in Python and a
commit returns only once the WAL is on disk (the webhook answers 200 after that). The storage
scripts are shared with PostgreSQL; here they run to completion on the writer thread.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from receiver.escalation import transactions as escalation_tx
from receiver.escalation.plan import ActRequest, ActResult
from receiver.incident_record import IncidentRecord, TimelineEntry
from receiver.intake import apply as intake
from receiver.intake.payload import Payload
from receiver.store import escalation_sql as esc
from receiver.store import groups, outbox_sql, queries, retention_sql
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
from receiver.store.batch import WriterThread
from receiver.store.dialect import SQLITE, Dialect
from receiver.store.migrate import migrate
from receiver.store.tx import Params, Row, Script, run_sync

P = ParamSpec("P")
T = TypeVar("T")
Batch = tuple[Sequence[intake.Item], tuple[str, int] | None]
_FATAL: tuple[type[Exception], ...] = (sqlite3.OperationalError, StoreUnavailable)


def _unavailable(func: Callable[P, T]) -> Callable[P, T]:
    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return func(*args, **kwargs)
        except sqlite3.OperationalError as exc:
            # Locked, read-only, disk full or I/O errors: transient for the caller (503/retry).
            raise StoreUnavailable(f"sqlite: {exc}") from exc

    return wrapper


def dict_row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> dict[str, Any]:
    """Return rows as plain dicts, like psycopg's dict_row, so both share the row converters."""
    return {column[0]: value for column, value in zip(cursor.description, values, strict=True)}


class SqliteTx:
    """The scripts' transaction on the writer thread's connection (calls never suspend)."""

    dialect: Dialect = SQLITE

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run a statement; return the number of rows it changed."""
        return self.db.execute(SQLITE.render(sql), params).rowcount

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """Run a query; return its first row, if any."""
        found: Row | None = self.db.execute(SQLITE.render(sql), params).fetchone()
        return found

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Run a query; return every row."""
        return self.db.execute(SQLITE.render(sql), params).fetchall()

    async def executemany(self, sql: str, params: Sequence[Params]) -> None:
        """Run a statement once per parameter set."""
        if params:
            self.db.executemany(SQLITE.render(sql), params)


class SqliteBackend(Store):
    """The default store."""

    fatal = _FATAL

    def __init__(self, path: Path | str, inline: bool = False) -> None:
        """`inline`: run every call on the caller's thread, for a process that has nothing
        else to do while the store works (the inbox applier): no thread hand-off per call."""
        self.path = Path(path)
        self._inline = inline
        self._writer: WriterThread[intake.Item, IngestResult] | None = None
        self._db: sqlite3.Connection | None = None

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        if self._inline:
            if self._db is None:
                raise StoreUnavailable("sqlite store is not open")
            return _unavailable(func)(*args)
        if self._writer is None:
            raise StoreUnavailable("sqlite store is not open")
        return await self._writer.call(_unavailable(func), *args)

    @property
    def db(self) -> sqlite3.Connection:
        """Return the connection (use it on the writer thread only)."""
        if self._db is None:
            raise StoreUnavailable("sqlite store is not open")
        return self._db

    async def open(self) -> None:
        """Open the database file and apply migrations."""
        if self._inline:
            _unavailable(self._connect)()
            return
        self._writer = WriterThread(_unavailable(self._ingest_batch), "sqlite-writer")
        self._writer.start()
        await self._run(self._connect)

    def _connect(self) -> None:
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = dict_row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # durable once COMMIT returns
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._in_tx(migrate)

    async def close(self) -> None:
        """Close the connection and stop the writer thread."""
        if self._inline:
            db, self._db = self._db, None
            if db is not None:
                db.close()
            return
        writer, self._writer = self._writer, None  # refuse new calls; queued ones still run
        if writer is None:
            return
        if self._db is not None:
            await writer.call(self._db.close)
        await writer.stop()

    @contextmanager
    def _tx(self) -> Iterator[SqliteTx]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield SqliteTx(self.db)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _in_tx(self, script: Script[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        with self._tx() as tx:
            return run_sync(script(tx, *args, **kwargs))

    def _read(self, script: Script[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        # Without BEGIN IMMEDIATE: a read needs no write lock (and works on a read-only file).
        return run_sync(script(SqliteTx(self.db), *args, **kwargs))

    async def transaction(self, script: Script[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a storage script in one transaction on the writer thread (see Store)."""
        return await self._run(functools.partial(self._in_tx, script, *args, **kwargs))

    async def ping(self) -> None:
        """Take the write lock and let it go: a read-only or locked file is not ready."""
        await self._run(self._ping)

    def _ping(self) -> None:
        with self._tx():
            # A lock alone touches no file, and SQLite skips an UPDATE that changes nothing;
            # writing the header's user_version back is the smallest write it must commit.
            version = int(self.db.execute("PRAGMA user_version").fetchone()["user_version"])
            self.db.execute(f"PRAGMA user_version = {version}")

    async def ingest(self, payload: Payload, now: float, rules: IntakeRules) -> IngestResult:
        """Apply a payload; concurrent intakes share one commit (and one fsync)."""
        if self._inline:
            (result,) = await self._run(self._apply, [(payload, now, rules)], None)
            if isinstance(result, Exception):
                raise result
            return result
        if self._writer is None:
            raise StoreUnavailable("sqlite store is not open")
        return await self._writer.submit((payload, now, rules))

    async def ingest_batch(
        self,
        items: Sequence[tuple[Payload, float]],
        rules: IntakeRules,
        mark: tuple[str, int] | None = None,
    ) -> list[IngestResult | Exception]:
        """Apply payloads in order in one transaction, each failing alone; save `mark` in it."""
        batch = [(payload, now, rules) for payload, now in items]
        return await self._run(self._apply, batch, mark)

    def _ingest_batch(self, items: list[intake.Item]) -> list[IngestResult | Exception]:
        return self._apply(items, None)

    def _apply(
        self, items: Sequence[intake.Item], mark: tuple[str, int] | None
    ) -> list[IngestResult | Exception]:
        # Optimistic: no savepoints (two statements per payload) while every payload applies.
        try:
            return self._in_tx(intake.apply_batch, items, mark, False, _FATAL)
        except _FATAL:
            raise  # the database itself is in trouble: fail the whole batch
        except Exception:
            # The batch was rolled back; redo it isolated so only the bad payload fails.
            # Intake is deterministic (the same items, the same `now`), so the rest apply alike.
            return self._in_tx(intake.apply_batch, items, mark, True, _FATAL)

    async def inbox_mark(self, inbox_id: str) -> int:
        """Return the last inbox sequence number applied (0 if none)."""
        return await self._run(self._read, groups.inbox_mark, inbox_id)

    async def recover(self, now: float) -> Recovered:
        """Handle rows left in `sending` by a crashed or stuck worker."""
        return await self._run(self._in_tx, outbox_sql.recover, now)

    async def claim(
        self, now: float, wanted: Wanted, lease: float, max_messages: int, window: float
    ) -> list[OutboxRow]:
        """Claim due rows, lane by lane."""
        return await self._run(
            self._in_tx, outbox_sql.claim, now, wanted, lease, max_messages, window
        )

    async def start(self, row: OutboxRow, now: float) -> bool:
        """Commit the start mark, fenced by the claim's attempt number."""
        return await self._run(self._in_tx, outbox_sql.start, row, now)

    async def finish(self, row: OutboxRow, result: Finish) -> bool:
        """Record an attempt's result, fenced by the claim's attempt number."""
        return await self._run(self._in_tx, outbox_sql.finish, row, result)

    async def incidents(
        self, state: str | None, labels: Mapping[str, str], limit: int
    ) -> list[IncidentRecord]:
        """List incidents."""
        return await self._run(self._read, queries.list_incidents, state, dict(labels), limit)

    async def incident(self, incident_id: int) -> IncidentRecord | None:
        """Return one incident with alerts, outbox rows and delivery log."""
        return await self._run(self._read, queries.show_incident, incident_id)

    async def resolve(
        self, incident_id: int, now: float, by: str, rules: IntakeRules
    ) -> IngestResult | None:
        """Resolve an incident by hand."""
        return await self._run(self._in_tx, intake.resolve, incident_id, now, by, rules)

    async def stats(self) -> Stats:
        """Count incidents and outbox rows by state."""
        return await self._run(self._read, queries.stats)

    async def prune(self, target: PruneTarget, before: float, limit: int) -> int:
        """Delete one bounded batch of expired rows (receiver.store.retention)."""
        return await self._run(self._in_tx, retention_sql.prune, target, before, limit)

    async def act(
        self, incident_id: int, request: ActRequest, now: float, rules: IntakeRules
    ) -> ActResult:
        """Apply an ack/unack/resolve (the single writer serializes it)."""
        return await self._run(self._in_tx, escalation_tx.act, incident_id, request, now, rules)

    async def escalate_due(self, now: float, limit: int, rules: IntakeRules) -> list[Fired]:
        """Feed due timers to the engine."""
        return await self._run(self._in_tx, escalation_tx.escalate_due, now, limit, rules)

    async def next_timer(self) -> float | None:
        """Return the earliest escalation timer."""
        return await self._run(self._read, esc.next_timer)

    async def overdue(self, now: float) -> tuple[int, float | None]:
        """Count open incidents whose timer is before `now`."""
        return await self._run(self._read, esc.overdue, now)

    async def timeline(self, incident_id: int) -> list[TimelineEntry]:
        """Return the incident's timeline."""
        return await self._run(self._read, esc.timeline, incident_id)

    async def watchdog_beat(
        self, name: str, now: float, back: Outage, rules: IntakeRules
    ) -> int | None:
        """Record a heartbeat."""
        return await self._run(self._in_tx, escalation_tx.watchdog_beat, name, now, back, rules)

    async def watchdog_check(
        self, name: str, now: float, expect_every: float, outage: Outage, rules: IntakeRules
    ) -> int | None:
        """Open the outage incident if the heartbeat is late."""
        return await self._run(
            self._in_tx, escalation_tx.watchdog_check, name, now, expect_every, outage, rules
        )
