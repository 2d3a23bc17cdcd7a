"""PostgreSQL store: several receiver replicas share it; claims use FOR UPDATE SKIP LOCKED.

A small fixed set of async connections; a connection that fails is replaced on its next use.
Intakes lock their alert group's row (`FOR UPDATE`), so two replicas receiving the same group
(Alertmanager HA pairs) apply payloads one after the other.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row

from receiver.config import PostgresStore
from receiver.incident_record import IncidentRecord, TimelineEntry
from receiver.notify import Planned
from receiver.store import escalation_rows as e
from receiver.store import outbox_sql as o
from receiver.store import postgres_escalation as esc
from receiver.store import postgres_queries as q
from receiver.store import retention_sql, rows
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
from receiver.store.escalation_plan import ActRequest, ActResult
from receiver.webhook import Payload

Conn = q.Conn
_MIGRATION_LOCK = 0x6D77_7263  # pg_advisory_xact_lock key: one replica migrates at a time
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0  # seconds between connection attempts while down


class PostgresBackend(Store):
    """The store for several replicas."""

    def __init__(self, config: PostgresStore) -> None:
        self.config = config
        self._idle: asyncio.Queue[Conn | None] = asyncio.Queue()
        self._all: list[Conn] = []
        self._migrated = False
        self._migrating = asyncio.Lock()
        # While the server is down, requests fail fast instead of each waiting for a connect
        # timeout; the wait doubles up to BACKOFF_MAX and resets on the first good connect.
        self._backoff = 0.0
        self._retry_at = 0.0
        self._last_error = ""

    async def _connect(self) -> Conn:
        wait = self._retry_at - time.monotonic()
        if wait > 0:
            raise StoreUnavailable(f"{self._last_error} (next attempt in {wait:.1f}s)")
        password = self.config.password_file or self.config.password
        dsn = self.config.dsn
        if password is not None:
            dsn = psycopg.conninfo.make_conninfo(dsn, password=password.get_secret_value())
        try:
            conn: Conn = await psycopg.AsyncConnection.connect(
                dsn, row_factory=dict_row, connect_timeout=5
            )
        except psycopg.OperationalError as exc:
            self._backoff = min(BACKOFF_MAX, max(BACKOFF_FIRST, self._backoff * 2))
            self._retry_at = time.monotonic() + self._backoff
            self._last_error = f"postgres: {exc}".strip()
            raise StoreUnavailable(self._last_error) from exc
        self._backoff, self._retry_at = 0.0, 0.0
        self._all.append(conn)
        return conn

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[Conn]:
        conn = await self._idle.get()
        try:
            if conn is None or conn.closed or conn.broken:
                conn = await self._connect()
            if not self._migrated:
                await self._migrate(conn)
            async with conn.transaction():
                yield conn
        except psycopg.OperationalError as exc:
            await self._discard(conn)
            conn = None
            raise StoreUnavailable(f"postgres: {exc}".strip()) from exc
        except StoreUnavailable:
            conn = None
            raise
        finally:
            self._idle.put_nowait(conn)

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

    async def _migrate(self, conn: Conn) -> None:
        async with self._migrating:
            if self._migrated:
                return
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
                )
                cursor = await conn.execute("SELECT MAX(version) AS v FROM schema_version")
                current = (await cursor.fetchone() or {}).get("v") or 0
                for version, sql in rows.migrations("postgres"):
                    if version > current:
                        await conn.execute(sql.encode())
                        await conn.execute("INSERT INTO schema_version VALUES (%s)", (version,))
            self._migrated = True

    async def close(self) -> None:
        """Close every connection."""
        for conn in list(self._all):
            await self._discard(conn)

    async def ping(self) -> None:
        """Run a trivial query."""
        async with self._tx() as conn:
            await conn.execute("SELECT 1")

    async def ingest(self, payload: Payload, now: float, rules: IntakeRules) -> IngestResult:
        """Apply a payload in one transaction, holding the group's row lock."""
        key = (payload.receiver, payload.groupKey)
        async with self._tx() as conn:
            await conn.execute(
                "INSERT INTO alert_groups (receiver, group_key) VALUES (%s, %s) "
                "ON CONFLICT DO NOTHING",
                key,
            )
            group = await q.one(
                conn,
                "SELECT id, marks, open_incident_id FROM alert_groups "
                "WHERE receiver = %s AND group_key = %s FOR UPDATE",
                key,
            )
            incident, alerts = None, []
            if group["open_incident_id"] is not None:
                incident = await q.one(
                    conn, "SELECT * FROM incidents WHERE id = %s", (group["open_incident_id"],)
                )
                alerts = await q.all_(
                    conn, "SELECT * FROM incident_alerts WHERE incident_id = %s", (incident["id"],)
                )
            state, meta = rows.group_from(group["marks"], incident, alerts)
            transition = decide(state, meta, payload, now, rules)
            if not transition.merge.changed:
                return IngestResult("none")
            incident_id = await self._write(conn, group["id"], key, incident, transition, now)
            open_id = None if transition.merge.action == "resolve" else incident_id
            await conn.execute(
                "UPDATE alert_groups SET marks = %s, open_incident_id = %s WHERE id = %s",
                (rows.marks_to(transition.merge.marks), open_id, group["id"]),
            )
            queued = 0
            if incident_id is not None and transition.incident is not None:
                queued = await self._queue(conn, incident_id, transition, now, rules, incident)
            return IngestResult(transition.merge.action, incident_id, queued)

    async def _write(
        self,
        conn: Conn,
        group_id: int,
        key: tuple[str, str],
        incident: Any,
        transition: Transition,
        now: float,
    ) -> int | None:
        write = transition.incident
        if write is None:
            return None
        params = rows.incident_params(write)
        if incident is None:
            params.update(group_id=group_id, receiver=key[0], group_key=key[1])
            incident_id: int = (await q.one(conn, q.INSERT_INCIDENT, params))["id"]
        else:
            incident_id = incident["id"]
            await conn.execute(q.UPDATE_INCIDENT, {**params, "id": incident_id})
        async with conn.cursor() as cursor:
            await cursor.executemany(
                q.UPSERT_ALERT,
                [rows.alert_params(incident_id, a, now) for a in transition.merge.alerts.values()],
            )
        return incident_id

    async def _queue(
        self,
        conn: Conn,
        incident_id: int,
        transition: Transition,
        now: float,
        rules: IntakeRules,
        incident: Any = None,
    ) -> int:
        assert transition.incident is not None
        escalated = await esc.intake(conn, incident, incident_id, transition, now, rules)
        if escalated is not None:  # the route has a policy: the engine decides
            return escalated
        planned = outbox_entries(transition, incident_id, transition.incident.state, rules)
        if any(p.kind != "firing" for p in planned):  # follow-ups reply in the chat thread
            found = await q.all_(conn, e.pg(e.THREADS), (incident_id,))
            planned = e.with_threads(planned, found)
        await self._insert_outbox(conn, incident_id, planned, now, rules)
        if any(p.kind == "firing" for p in planned):
            await conn.execute("UPDATE incidents SET paged = TRUE WHERE id = %s", (incident_id,))
        return len(planned)

    async def _insert_outbox(
        self, conn: Conn, incident_id: int, planned: list[Planned], now: float, rules: IntakeRules
    ) -> None:
        if not planned:
            return
        async with conn.cursor() as cursor:
            await cursor.executemany(
                q.INSERT_OUTBOX, rows.outbox_params(incident_id, planned, now, rules)
            )

    async def recover(self, now: float) -> Recovered:
        """Handle rows left in `sending` by a crashed or stuck worker."""
        async with self._tx() as conn:
            found = await q.all_(conn, e.pg(o.EXPIRED) + " FOR UPDATE SKIP LOCKED", (now,))
            for row in found:
                await conn.execute(e.pg(o.REQUEUE).encode(), (now, row["id"]))
                outcome = (row["id"], row["attempts"], now, *o.recovery(row))
                await conn.execute(q.DELIVERY, outcome)
            return o.recovered(found)

    async def claim(
        self, now: float, wanted: Wanted, lease: float, max_messages: int, window: float
    ) -> list[OutboxRow]:
        """Claim due rows lane by lane; rows another replica holds are skipped, not waited for."""
        picker = Picker(wanted)
        async with self._tx() as conn:
            channels = [r["channel"] for r in await q.all_(conn, e.pg(o.DUE_CHANNELS), (now,))]
            due = []
            for lane, limit in picker.lanes(channels):
                lane_sql = e.pg(o.LANE) + " FOR UPDATE SKIP LOCKED"
                due += await q.all_(conn, lane_sql, (lane, now, limit))
            claimed = []
            for row in sorted(due, key=o.claim_order):
                if not picker.fits(row["channel"], row["recipient"]):
                    continue
                if row["rate_key"] is not None and await self._deferred(
                    conn, row, now, max_messages, window
                ):
                    continue
                await conn.execute(e.pg(o.CLAIM).encode(), (now + lease, now, row["id"]))
                picker.take(row["channel"], row["recipient"])
                claimed.append(rows.outbox_row(row, row["attempts"] + 1))
            return claimed

    async def _deferred(
        self, conn: Conn, row: dict[str, Any], now: float, max_messages: int, window: float
    ) -> bool:
        # Serialize rate checks for one person across replicas.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (row["rate_key"],))
        recent = await q.all_(conn, e.pg(o.RECENT), (row["rate_key"], now - window))
        until = rate_limit([r["sent_at"] for r in recent], now, max_messages, window)
        if until is None:
            return False
        await conn.execute(e.pg(o.DEFER).encode(), (until, row["id"]))
        return True

    async def start(self, row: OutboxRow, now: float) -> bool:
        """Commit the start mark, fenced by the claim's attempt number."""
        async with self._tx() as conn:
            cursor = await conn.execute(e.pg(o.START).encode(), (now, row.id, row.attempts))
            return cursor.rowcount == 1

    async def finish(self, row: OutboxRow, result: Finish) -> bool:
        """Record an attempt's result, fenced by the claim's attempt number."""
        async with self._tx() as conn:
            cursor = await conn.execute(e.pg(o.FINISH).encode(), o.finish_params(row, result))
            if cursor.rowcount == 0:
                return False
            log = (row.id, row.attempts, result.now, o.log_outcome(result), result.detail)
            await conn.execute(q.DELIVERY, log)
            if result.fallback is not None:
                fallback = o.fallback_params(row, result.fallback, result.now)
                await conn.execute(q.INSERT_OUTBOX, fallback)
            return True

    async def resolve(
        self, incident_id: int, now: float, by: str, rules: IntakeRules
    ) -> IngestResult | None:
        """Resolve an incident by hand."""
        async with self._tx() as conn:
            row = await q.one_or_none(
                conn, "SELECT * FROM incidents WHERE id = %s FOR UPDATE", (incident_id,)
            )
            if row is None:
                return None
            if row["state"] == "resolved":
                return IngestResult("none", incident_id)
            alerts = await q.all_(
                conn, "SELECT * FROM incident_alerts WHERE incident_id = %s", (incident_id,)
            )
            await conn.execute(
                "UPDATE incidents SET state = 'resolved', resolved_at = %s, resolved_by = %s, "
                "updated_at = %s, version = version + 1 WHERE id = %s",
                (now, by, now, incident_id),
            )
            await conn.execute(
                "UPDATE alert_groups SET open_incident_id = NULL WHERE open_incident_id = %s",
                (incident_id,),
            )
            transition = rows.manual_resolve(row, alerts, now)
            queued = await self._queue(conn, incident_id, transition, now, rules)
            return IngestResult("resolve", incident_id, queued)

    async def incidents(
        self, state: str | None, labels: Mapping[str, str], limit: int
    ) -> list[IncidentRecord]:
        """List incidents, newest first."""
        async with self._tx() as conn:
            found = await q.list_incidents(conn, state, labels, limit)
        return [IncidentRecord.from_row(r) for r in found]

    async def incident(self, incident_id: int) -> IncidentRecord | None:
        """Return one incident with alerts, outbox rows and delivery log."""
        async with self._tx() as conn:
            found = await q.show_incident(conn, incident_id)
        return None if found is None else IncidentRecord.from_row(found)

    async def stats(self) -> Stats:
        """Count incidents and outbox rows by state."""
        async with self._tx() as conn:
            return await q.stats(conn)

    async def prune(self, target: PruneTarget, before: float, limit: int) -> int:
        """Delete one bounded batch of expired rows (receiver.retention)."""
        async with self._tx() as conn:
            return await retention_sql.prune_postgres(conn, target, before, limit)

    async def act(
        self, incident_id: int, request: ActRequest, now: float, rules: IntakeRules
    ) -> ActResult:
        """Apply an ack/unack/resolve under the incident's row lock."""
        async with self._tx() as conn:
            return await esc.act(conn, incident_id, request, now, rules)

    async def escalate_due(self, now: float, limit: int, rules: IntakeRules) -> list[Fired]:
        """Feed due timers to the engine (FOR UPDATE SKIP LOCKED)."""
        async with self._tx() as conn:
            return await esc.escalate_due(conn, now, limit, rules)

    async def next_timer(self) -> float | None:
        """Return the earliest escalation timer."""
        async with self._tx() as conn:
            found = await q.one(conn, e.NEXT_TIMER, ())
        return found["t"]  # type: ignore[no-any-return]

    async def overdue(self, now: float) -> tuple[int, float | None]:
        """Count open incidents whose timer is before `now`."""
        async with self._tx() as conn:
            found = await q.one(conn, e.pg(e.OVERDUE), (now,))
        return found["n"], found["oldest"]

    async def timeline(self, incident_id: int) -> list[TimelineEntry]:
        """Return the incident's timeline."""
        async with self._tx() as conn:
            events = await esc.timeline(conn, incident_id)
        return [TimelineEntry.from_row(r) for r in events]

    async def watchdog_beat(
        self, name: str, now: float, back: Outage, rules: IntakeRules
    ) -> int | None:
        """Record a heartbeat."""
        async with self._tx() as conn:
            return await esc.watchdog_beat(conn, name, now, back, rules)

    async def watchdog_check(
        self, name: str, now: float, expect_every: float, outage: Outage, rules: IntakeRules
    ) -> int | None:
        """Open the outage incident if the heartbeat is late."""
        async with self._tx() as conn:
            return await esc.watchdog_check(conn, name, now, expect_every, outage, rules)
