"""SQLite store: one file in WAL mode with synchronous=FULL; every call runs on one writer thread.

A single thread owns the connection, so writes are serialized without locks in Python and a
commit returns only once the WAL is on disk (the webhook answers 200 after that).
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from receiver.incident_record import IncidentRecord, TimelineEntry
from receiver.notify import Planned
from receiver.store import escalation_rows as e
from receiver.store import outbox_sql as o
from receiver.store import retention_sql, rows
from receiver.store import sqlite_escalation as esc
from receiver.store import sqlite_queries as q
from receiver.store.base import (
    Finish,
    Fired,
    IngestResult,
    IntakeRules,
    Outage,
    OutboxRow,
    Picker,
    PruneTarget,
    Recovered,
    Stats,
    Store,
    StoreUnavailable,
    Transition,
    Wanted,
    decide,
    outbox_entries,
    rate_limit,
)
from receiver.store.batch import WriterThread
from receiver.store.escalation_plan import ActRequest, ActResult
from receiver.webhook import Payload

P = ParamSpec("P")
T = TypeVar("T")


def _unavailable(func: Callable[P, T]) -> Callable[P, T]:
    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return func(*args, **kwargs)
        except sqlite3.OperationalError as exc:
            # Locked, read-only, disk full or I/O errors: transient for the caller (503/retry).
            raise StoreUnavailable(f"sqlite: {exc}") from exc

    return wrapper


class SqliteBackend(Store):
    """The default store."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._writer: WriterThread[tuple[Payload, float, IntakeRules], IngestResult] | None = None
        self._db: sqlite3.Connection | None = None

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
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
        self._writer = WriterThread(_unavailable(self._ingest_batch), "sqlite-writer")
        self._writer.start()
        await self._run(self._connect)

    def _connect(self) -> None:
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = q.dict_row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # durable once COMMIT returns
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _migrate(self) -> None:
        with self._tx():
            self.db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            found = self.db.execute("SELECT MAX(version) AS v FROM schema_version").fetchone()["v"]
            current = found or 0
            for version, sql in rows.migrations("sqlite"):
                if version > current:
                    # Comments may hold semicolons; the migrations have no "--" in string literals.
                    plain = re.sub(r"--[^\n]*", "", sql)
                    for statement in filter(str.strip, plain.split(";")):
                        self.db.execute(statement)
                    self.db.execute("INSERT INTO schema_version VALUES (?)", (version,))

    async def close(self) -> None:
        """Close the connection and stop the writer thread."""
        writer, self._writer = self._writer, None  # refuse new calls; queued ones still run
        if writer is None:
            return
        if self._db is not None:
            await writer.call(self._db.close)
        await writer.stop()

    @contextmanager
    def _tx(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

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
        if self._writer is None:
            raise StoreUnavailable("sqlite store is not open")
        return await self._writer.submit((payload, now, rules))

    def _ingest_batch(
        self, items: list[tuple[Payload, float, IntakeRules]]
    ) -> list[IngestResult | Exception]:
        # Optimistic: no savepoints (two statements per payload) while every payload applies.
        try:
            with self._tx():
                return [self._ingest_one(payload, now, rules) for payload, now, rules in items]
        except sqlite3.OperationalError:
            raise  # the database itself is in trouble: fail the whole batch
        except Exception:
            # The batch was rolled back; redo it isolated so only the bad payload fails.
            # Intake is deterministic (the same items, the same `now`), so the rest apply alike.
            return self._ingest_isolated(items)

    def _ingest_isolated(
        self, items: list[tuple[Payload, float, IntakeRules]]
    ) -> list[IngestResult | Exception]:
        out: list[IngestResult | Exception] = []
        with self._tx():
            for payload, now, rules in items:
                # A savepoint per payload: one bad payload does not undo the others.
                self.db.execute("SAVEPOINT intake")
                try:
                    out.append(self._ingest_one(payload, now, rules))
                except sqlite3.OperationalError:
                    raise  # the database itself is in trouble: fail the whole batch
                except Exception as exc:  # handed to that payload's caller, not swallowed
                    self.db.execute("ROLLBACK TO intake")
                    out.append(exc)
                self.db.execute("RELEASE intake")
        return out

    def _ingest_one(self, payload: Payload, now: float, rules: IntakeRules) -> IngestResult:
        db = self.db
        key = (payload.receiver, payload.groupKey)
        # Most deliveries are for known groups (group_interval, repeat_interval): look up first.
        group = (
            db.execute(q.SELECT_GROUP, key).fetchone() or db.execute(q.INSERT_GROUP, key).fetchone()
        )
        incident, alerts = None, []
        if group["open_incident_id"] is not None:
            incident = db.execute(
                "SELECT * FROM incidents WHERE id = ?", (group["open_incident_id"],)
            ).fetchone()
            alerts = db.execute(
                "SELECT * FROM incident_alerts WHERE incident_id = ?", (incident["id"],)
            ).fetchall()
        state, meta = rows.group_from(group["marks"], incident, alerts)
        transition = decide(state, meta, payload, now, rules)
        if not transition.merge.changed:
            return IngestResult("none")
        incident_id = self._write(group["id"], key, incident, transition, now, rules)
        db.execute(
            "UPDATE alert_groups SET marks = ?, open_incident_id = ? WHERE id = ?",
            (
                rows.marks_to(transition.merge.marks),
                None if transition.merge.action == "resolve" else incident_id,
                group["id"],
            ),
        )
        queued = 0
        if incident_id is not None and transition.incident is not None:
            queued = self._queue(incident_id, transition, now, rules, incident)
        return IngestResult(transition.merge.action, incident_id, queued)

    def _write(
        self,
        group_id: int,
        key: tuple[str, str],
        incident: Any,
        transition: Transition,
        now: float,
        rules: IntakeRules,
    ) -> int | None:
        write = transition.incident
        if write is None:
            return None
        params = rows.incident_params(write)
        if incident is None:
            params.update(group_id=group_id, receiver=key[0], group_key=key[1])
            cursor = self.db.execute(q.INSERT_INCIDENT, params)
            incident_id = int(cursor.lastrowid or 0)
        else:
            incident_id = incident["id"]
            self.db.execute(q.UPDATE_INCIDENT, {**params, "id": incident_id})
        self.db.executemany(
            q.UPSERT_ALERT,
            [rows.alert_params(incident_id, a, now) for a in transition.merge.alerts.values()],
        )
        return incident_id

    def _queue(
        self,
        incident_id: int,
        transition: Transition,
        now: float,
        rules: IntakeRules,
        incident: Any = None,
    ) -> int:
        assert transition.incident is not None
        escalated = esc.intake(self.db, incident, incident_id, transition, now, rules)
        if escalated is not None:  # the route has a policy: the engine decides
            return escalated
        planned = outbox_entries(transition, incident_id, transition.incident.state, rules)
        if any(p.kind != "firing" for p in planned):  # follow-ups reply in the chat thread
            planned = e.with_threads(planned, self.db.execute(e.THREADS, (incident_id,)).fetchall())
        self._insert_outbox(incident_id, planned, now, rules, None)
        if any(p.kind == "firing" for p in planned):
            self.db.execute("UPDATE incidents SET paged = 1 WHERE id = ?", (incident_id,))
        return len(planned)

    def _insert_outbox(
        self,
        incident_id: int,
        planned: list[Planned],
        now: float,
        rules: IntakeRules,
        fallback_of: int | None,
    ) -> None:
        if not planned:
            return
        self.db.executemany(
            q.INSERT_OUTBOX, rows.outbox_params(incident_id, planned, now, rules, fallback_of)
        )

    async def recover(self, now: float) -> Recovered:
        """Handle rows left in `sending` by a crashed or stuck worker."""
        return await self._run(self._recover, now)

    def _recover(self, now: float) -> Recovered:
        with self._tx():
            found = self.db.execute(o.EXPIRED, (now,)).fetchall()
            for row in found:
                self.db.execute(o.REQUEUE, (now, row["id"]))
                self.db.execute(q.DELIVERY, (row["id"], row["attempts"], now, *o.recovery(row)))
            return o.recovered(found)

    async def claim(
        self, now: float, wanted: Wanted, lease: float, max_messages: int, window: float
    ) -> list[OutboxRow]:
        """Claim due rows, lane by lane."""
        return await self._run(self._claim, now, wanted, lease, max_messages, window)

    def _claim(
        self, now: float, wanted: Wanted, lease: float, max_messages: int, window: float
    ) -> list[OutboxRow]:
        picker = Picker(wanted)
        with self._tx():
            channels = [r["channel"] for r in self.db.execute(o.DUE_CHANNELS, (now,))]
            due = [
                row
                for lane, limit in picker.lanes(channels)
                for row in self.db.execute(o.LANE, (lane, now, limit)).fetchall()
            ]
            claimed = []
            for row in sorted(due, key=o.claim_order):
                if not picker.fits(row["channel"], row["recipient"]):
                    continue
                if row["rate_key"] is not None:
                    recent = self.db.execute(o.RECENT, (row["rate_key"], now - window))
                    until = rate_limit([r["sent_at"] for r in recent], now, max_messages, window)
                    if until is not None:
                        self.db.execute(o.DEFER, (until, row["id"]))
                        continue
                self.db.execute(o.CLAIM, (now + lease, now, row["id"]))
                picker.take(row["channel"], row["recipient"])
                claimed.append(rows.outbox_row(row, row["attempts"] + 1))
            return claimed

    async def start(self, row: OutboxRow, now: float) -> bool:
        """Commit the start mark, fenced by the claim's attempt number."""
        return await self._run(self._start, row, now)

    def _start(self, row: OutboxRow, now: float) -> bool:
        with self._tx():
            return self.db.execute(o.START, (now, row.id, row.attempts)).rowcount == 1

    async def finish(self, row: OutboxRow, result: Finish) -> bool:
        """Record an attempt's result, fenced by the claim's attempt number."""
        return await self._run(self._finish, row, result)

    def _finish(self, row: OutboxRow, result: Finish) -> bool:
        with self._tx():
            if self.db.execute(o.FINISH, o.finish_params(row, result)).rowcount == 0:
                return False
            self.db.execute(
                q.DELIVERY, (row.id, row.attempts, result.now, o.log_outcome(result), result.detail)
            )
            if result.fallback is not None:
                fallback = o.fallback_params(row, result.fallback, result.now)
                self.db.execute(q.INSERT_OUTBOX, fallback)
            return True

    async def incidents(
        self, state: str | None, labels: Mapping[str, str], limit: int
    ) -> list[IncidentRecord]:
        """List incidents."""
        found = await self._run(q.list_incidents, self.db, state, dict(labels), limit)
        return [IncidentRecord.from_row(r) for r in found]

    async def incident(self, incident_id: int) -> IncidentRecord | None:
        """Return one incident with alerts, outbox rows and delivery log."""
        found = await self._run(q.show_incident, self.db, incident_id)
        return None if found is None else IncidentRecord.from_row(found)

    async def resolve(
        self, incident_id: int, now: float, by: str, rules: IntakeRules
    ) -> IngestResult | None:
        """Resolve an incident by hand."""
        return await self._run(self._resolve, incident_id, now, by, rules)

    def _resolve(
        self, incident_id: int, now: float, by: str, rules: IntakeRules
    ) -> IngestResult | None:
        with self._tx():
            row = self.db.execute("SELECT * FROM incidents WHERE id = ?", (incident_id,)).fetchone()
            if row is None:
                return None
            if row["state"] == "resolved":
                return IngestResult("none", incident_id)
            alerts = self.db.execute(
                "SELECT * FROM incident_alerts WHERE incident_id = ?", (incident_id,)
            ).fetchall()
            self.db.execute(
                "UPDATE incidents SET state = 'resolved', resolved_at = ?, resolved_by = ?, "
                "updated_at = ?, version = version + 1 WHERE id = ?",
                (now, by, now, incident_id),
            )
            self.db.execute(
                "UPDATE alert_groups SET open_incident_id = NULL WHERE open_incident_id = ?",
                (incident_id,),
            )
            transition = rows.manual_resolve(row, alerts, now)
            queued = self._queue(incident_id, transition, now, rules)
            return IngestResult("resolve", incident_id, queued)

    async def stats(self) -> Stats:
        """Count incidents and outbox rows by state."""
        return await self._run(q.stats, self.db)

    async def prune(self, target: PruneTarget, before: float, limit: int) -> int:
        """Delete one bounded batch of expired rows (receiver.retention)."""
        return await self._run(self._prune, target, before, limit)

    def _prune(self, target: PruneTarget, before: float, limit: int) -> int:
        with self._tx():
            return retention_sql.prune_sqlite(self.db, target, before, limit)

    def _in_tx(self, func: Callable[..., T], *args: Any) -> T:
        with self._tx():
            return func(self.db, *args)

    async def act(
        self, incident_id: int, request: ActRequest, now: float, rules: IntakeRules
    ) -> ActResult:
        """Apply an ack/unack/resolve (the single writer serializes it)."""
        return await self._run(self._in_tx, esc.act, incident_id, request, now, rules)

    async def escalate_due(self, now: float, limit: int, rules: IntakeRules) -> list[Fired]:
        """Feed due timers to the engine."""
        return await self._run(self._in_tx, esc.escalate_due, now, limit, rules)

    async def next_timer(self) -> float | None:
        """Return the earliest escalation timer."""
        found = await self._run(lambda: self.db.execute(e.NEXT_TIMER).fetchone())
        return None if found is None else found["t"]

    async def overdue(self, now: float) -> tuple[int, float | None]:
        """Count open incidents whose timer is before `now`."""
        found = await self._run(lambda: self.db.execute(e.OVERDUE, (now,)).fetchone())
        return found["n"], found["oldest"]

    async def timeline(self, incident_id: int) -> list[TimelineEntry]:
        """Return the incident's timeline."""
        found = await self._run(esc.timeline, self.db, incident_id)
        return [TimelineEntry.from_row(r) for r in found]

    async def watchdog_beat(
        self, name: str, now: float, back: Outage, rules: IntakeRules
    ) -> int | None:
        """Record a heartbeat."""
        return await self._run(self._in_tx, esc.watchdog_beat, name, now, back, rules)

    async def watchdog_check(
        self, name: str, now: float, expect_every: float, outage: Outage, rules: IntakeRules
    ) -> int | None:
        """Open the outage incident if the heartbeat is late."""
        return await self._run(
            self._in_tx, esc.watchdog_check, name, now, expect_every, outage, rules
        )
