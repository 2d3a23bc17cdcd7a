"""What escalation reads and writes: incident engine columns, timers, timeline, the outbox,
and the dead man's switch rows. The transactions themselves are in
`receiver.escalation.transactions`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from receiver.delivery.notify import Planned
from receiver.escalation.plan import Message, TimelineEvent, Update
from receiver.incident_record import TimelineEntry
from receiver.intake.decide import IncidentWrite, IntakeRules
from receiver.store import escalation_rows as e
from receiver.store import queries as q
from receiver.store import rows
from receiver.store.gather import ById
from receiver.store.tx import Row, Tx, one

LOCK_WATCHDOG = "SELECT * FROM watchdogs WHERE name = ?{lock}"
ADD_WATCHDOG = "INSERT INTO watchdogs (name, last_seen) VALUES (?, ?) ON CONFLICT DO NOTHING"
BEAT = (
    "UPDATE watchdogs SET last_seen = {greatest}(last_seen, ?), down_since = NULL, "
    "incident_id = NULL WHERE name = ?"
)
BEAT_RESOLVE = (
    "UPDATE incidents SET state = 'resolved', resolved_at = ?, resolved_by = 'watchdog', "
    "updated_at = ? WHERE id = ? AND state != 'resolved'"
)
DOWN = "UPDATE watchdogs SET down_since = ?, incident_id = ? WHERE name = ?"
ADD_GROUP = "INSERT INTO alert_groups (receiver, group_key) VALUES (?, ?) ON CONFLICT DO NOTHING"
GROUP_ID = "SELECT id FROM alert_groups WHERE receiver = ? AND group_key = ?"
OPEN_GROUP = "UPDATE alert_groups SET open_incident_id = ? WHERE id = ?"
PAGED = ById("UPDATE incidents SET paged = TRUE WHERE id = ?")


async def lock_incident(tx: Tx, incident_id: int) -> Row | None:
    """Return an incident's row, locked until commit."""
    return await tx.fetchone(q.LOCK_INCIDENT, (incident_id,))


async def incident(tx: Tx, incident_id: int) -> Row:
    """Return an incident's row (it must exist)."""
    return await one(tx, q.INCIDENT, (incident_id,))


async def alerts(tx: Tx, incident_id: int) -> list[Row]:
    """Return an incident's alert rows."""
    return await tx.fetchall(q.ALERTS, (incident_id,))


async def due(tx: Tx, now: float, limit: int) -> list[Row]:
    """Return incidents whose timer is due, skipping those another replica holds."""
    return await tx.fetchall(e.DUE, (now, limit))


async def set_timer(tx: Tx, incident_id: int, timer: tuple[float | None, int | None]) -> None:
    """Set (or clear) an incident's escalation timer."""
    await tx.execute(e.SET_TIMER, (*timer, incident_id))


async def save_update(
    tx: Tx, row: Row | None, incident_id: int, update: Update, now: float, actor: str
) -> None:
    """Write the engine's columns of an update and its timeline events."""
    await tx.execute(e.UPDATE_INCIDENT, e.update_params(row, incident_id, update, now, actor))
    await add_events(tx, incident_id, update.events, now)


async def add_events(tx: Tx, incident_id: int, events: Sequence[TimelineEvent], now: float) -> None:
    """Append timeline events."""
    await tx.executemany(e.INSERT_EVENT, e.event_params(incident_id, events, now))


async def queue(
    tx: Tx,
    incident_id: int,
    messages: Sequence[Message] | Sequence[Planned],
    now: float,
    rules: IntakeRules,
    threads: bool = True,
) -> int:
    """Queue messages in the outbox; follow-ups reply in the chat thread of earlier ones."""
    out: list[Any] = list(messages)
    if threads and any(m.kind != "firing" for m in out):
        out = e.with_threads(out, await tx.fetchall(e.THREADS, (incident_id,)))
    await tx.executemany(q.INSERT_OUTBOX, rows.outbox_params(incident_id, out, now, rules))
    return len(out)


async def mark_paged(tx: Tx, incident_id: int) -> None:
    """Record that the incident has paged someone."""
    await tx.execute(PAGED, (incident_id,))


async def close_group(tx: Tx, incident_id: int) -> None:
    """Detach a resolved incident from its alert group."""
    await tx.execute(e.CLOSE_GROUP, (incident_id,))


async def watchdog(tx: Tx, name: str, now: float) -> Row:
    """Return a watchdog's row locked; create it (seen now) when it does not exist yet."""
    await tx.execute(ADD_WATCHDOG, (name, now))
    return await one(tx, LOCK_WATCHDOG, (name,))


async def beat(tx: Tx, name: str, now: float) -> None:
    """Record a heartbeat and end any outage mark."""
    await tx.execute(BEAT, (now, name))


async def resolve_outage(tx: Tx, incident_id: int, now: float) -> None:
    """Resolve the outage incident (if still open) and detach it from its group."""
    await tx.execute(BEAT_RESOLVE, (now, now, incident_id))
    await close_group(tx, incident_id)


async def mark_down(tx: Tx, name: str, now: float, incident_id: int) -> None:
    """Record that a watchdog's heartbeat is late and which incident says so."""
    await tx.execute(DOWN, (now, incident_id, name))


async def open_outage(tx: Tx, write: IncidentWrite) -> int:
    """Open the dead man's switch incident in its own alert group; return its id."""
    key = ("maintwatch", f"watchdog:{write.group_labels.get('alertname', '')}")
    await tx.execute(ADD_GROUP, key)
    group = await one(tx, GROUP_ID, key)
    params = rows.incident_params(write)
    params.update(id=None, group_id=group["id"], receiver=key[0], group_key=key[1])
    incident_id: int = (await one(tx, q.INSERT_INCIDENT_RETURNING, params))["id"]
    await tx.execute(OPEN_GROUP, (incident_id, group["id"]))
    return incident_id


async def timeline(tx: Tx, incident_id: int) -> list[TimelineEntry]:
    """Return the incident's timeline."""
    events = await tx.fetchall(e.TIMELINE, (incident_id,))
    merged = e.timeline(events, await tx.fetchall(e.DELIVERY_LOG, (incident_id,)))
    return [TimelineEntry.from_row(r) for r in merged]


async def next_timer(tx: Tx) -> float | None:
    """Return the earliest escalation timer."""
    found: float | None = (await one(tx, e.NEXT_TIMER))["t"]
    return found


async def overdue(tx: Tx, now: float) -> tuple[int, float | None]:
    """Count open incidents whose timer is before `now`, and return the oldest timer."""
    found = await one(tx, e.OVERDUE, (now,))
    return found["n"], found["oldest"]
