"""SQLite side of escalation: run on the store's single writer thread, inside its transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from receiver.store import escalation_rows as e
from receiver.store import rows
from receiver.store import sqlite_queries as q
from receiver.store.base import Fired, IncidentWrite, IntakeRules, Outage, Transition
from receiver.store.escalation_plan import ActRequest, ActResult, Update, state_of

Row = Mapping[str, Any]


def write(
    db: sqlite3.Connection,
    row: Row | None,
    incident_id: int,
    update: Update,
    now: float,
    rules: IntakeRules,
    actor: str = "",
) -> int:
    """Write an engine update: incident columns, outbox messages, timeline; return messages."""
    db.execute(e.UPDATE_INCIDENT, e.update_params(row, incident_id, update, now, actor))
    messages = list(update.messages)
    if any(m.kind != "firing" for m in messages):
        messages = e.with_threads(messages, db.execute(e.THREADS, (incident_id,)).fetchall())
    db.executemany(q.INSERT_OUTBOX, rows.outbox_params(incident_id, messages, now, rules))
    db.executemany(e.INSERT_EVENT, e.event_params(incident_id, update.events, now))
    return len(messages)


def intake(
    db: sqlite3.Connection,
    incident: Row | None,
    incident_id: int,
    transition: Transition,
    now: float,
    rules: IntakeRules,
) -> int | None:
    """Feed an intake change to the engine; None when the incident has no policy."""
    update = e.intake_update(incident, transition, incident_id, now, rules)
    if update is None:
        return None
    if not update.changed:
        return 0
    return write(db, incident, incident_id, update, now, rules, "alertmanager")


def act(
    db: sqlite3.Connection, incident_id: int, request: ActRequest, now: float, rules: IntakeRules
) -> ActResult:
    """Apply a person's action to one incident."""
    row = db.execute("SELECT * FROM incidents WHERE id = ?", (incident_id,)).fetchone()
    if row is None:
        return ActResult(found=False)
    reason = e.refused(row, request)
    if reason:
        return ActResult(True, False, dict(row), reason=reason)
    alerts = db.execute(e.ALERTS, (incident_id,)).fetchall()
    update = e.act_update(row, alerts, request, now, rules)
    queued = 0
    if update.changed:
        queued = write(db, row, incident_id, update, now, rules, request.actor)
        if update.state == "resolved":
            db.execute(e.CLOSE_GROUP, (incident_id,))
    after = db.execute("SELECT * FROM incidents WHERE id = ?", (incident_id,)).fetchone()
    return ActResult(True, True, dict(after), update.changed, queued)


def escalate_due(db: sqlite3.Connection, now: float, limit: int, rules: IntakeRules) -> list[Fired]:
    """Feed every due timer (up to `limit`) to the engine."""
    fired = []
    for row in db.execute(e.DUE, (now, limit)).fetchall():
        alerts = db.execute(e.ALERTS, (row["id"],)).fetchall()
        update = e.due_update(row, alerts, now, rules)
        queued = 0
        if update is None:  # the policy is gone (config reload): stop escalating
            db.execute(e.SET_TIMER, (None, None, row["id"]))
        elif update.changed:
            queued = write(db, row, row["id"], update, now, rules)
        else:  # a stale timer: re-arm it from the state, which is the truth
            db.execute(e.SET_TIMER, (*e.timer_of(state_of(row)), row["id"]))
        acted = update is not None and update.changed
        fired.append(Fired(row["id"], row["next_step_at"], acted, queued))
    return fired


def watchdog_beat(
    db: sqlite3.Connection, name: str, now: float, back: Outage, rules: IntakeRules
) -> int | None:
    """Record a heartbeat; resolve the outage incident if one is open."""
    row = db.execute("SELECT * FROM watchdogs WHERE name = ?", (name,)).fetchone()
    if row is None:
        db.execute("INSERT INTO watchdogs (name, last_seen) VALUES (?, ?)", (name, now))
        return None
    db.execute(
        "UPDATE watchdogs SET last_seen = MAX(last_seen, ?), down_since = NULL, "
        "incident_id = NULL WHERE name = ?",
        (now, name),
    )
    incident_id = row["incident_id"]
    if row["down_since"] is None or incident_id is None:
        return None
    db.execute(
        "UPDATE incidents SET state = 'resolved', resolved_at = ?, resolved_by = ?, "
        "updated_at = ? WHERE id = ? AND state != 'resolved'",
        (now, "watchdog", now, incident_id),
    )
    db.execute(e.CLOSE_GROUP, (incident_id,))
    _queue_outage(db, incident_id, back, now, rules)
    return int(incident_id)


def watchdog_check(
    db: sqlite3.Connection,
    name: str,
    now: float,
    expect_every: float,
    outage: Outage,
    rules: IntakeRules,
) -> int | None:
    """Open the outage incident once, when the last heartbeat is older than `expect_every`."""
    row = db.execute("SELECT * FROM watchdogs WHERE name = ?", (name,)).fetchone()
    if row is None:  # never seen since the store was created: the grace period starts now
        db.execute("INSERT INTO watchdogs (name, last_seen) VALUES (?, ?)", (name, now))
        return None
    if row["down_since"] is not None or now - row["last_seen"] <= expect_every:
        return None
    incident_id = _open_outage(db, outage.write)
    db.execute(
        "UPDATE watchdogs SET down_since = ?, incident_id = ? WHERE name = ?",
        (now, incident_id, name),
    )
    _queue_outage(db, incident_id, outage, now, rules)
    return incident_id


def _open_outage(db: sqlite3.Connection, write_: IncidentWrite) -> int:
    key = ("maintwatch", f"watchdog:{write_.group_labels.get('alertname', '')}")
    db.execute(
        "INSERT INTO alert_groups (receiver, group_key) VALUES (?, ?) ON CONFLICT DO NOTHING", key
    )
    group = db.execute(
        "SELECT id FROM alert_groups WHERE receiver = ? AND group_key = ?", key
    ).fetchone()
    params = rows.incident_params(write_)
    params.update(group_id=group["id"], receiver=key[0], group_key=key[1])
    incident_id = int(db.execute(q.INSERT_INCIDENT, params).lastrowid or 0)
    db.execute(
        "UPDATE alert_groups SET open_incident_id = ? WHERE id = ?", (incident_id, group["id"])
    )
    return incident_id


def _queue_outage(
    db: sqlite3.Connection, incident_id: int, outage: Outage, now: float, rules: IntakeRules
) -> None:
    messages = e.outage_messages(outage, incident_id, rules)
    db.executemany(q.INSERT_OUTBOX, rows.outbox_params(incident_id, messages, now, rules))
    db.executemany(e.INSERT_EVENT, e.event_params(incident_id, outage.events, now))


def timeline(db: sqlite3.Connection, incident_id: int) -> list[dict[str, Any]]:
    """Return the incident's timeline."""
    events = db.execute(e.TIMELINE, (incident_id,)).fetchall()
    return e.timeline(events, db.execute(e.DELIVERY_LOG, (incident_id,)).fetchall())
