"""Escalation's transactions: engine updates, acks, due timers and the dead man's switch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from receiver.decide import IncidentWrite, IntakeRules, Transition
from receiver.escalation_plan import ActRequest, ActResult, Update, state_of
from receiver.store import escalation_rows as e
from receiver.store import queries as q
from receiver.store import rows
from receiver.store.base import Fired, Outage
from receiver.store.tx import Tx, one

Row = Mapping[str, Any]

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


async def write(
    tx: Tx,
    row: Row | None,
    incident_id: int,
    update: Update,
    now: float,
    rules: IntakeRules,
    actor: str = "",
) -> int:
    """Write an engine update: incident columns, outbox messages, timeline; return messages."""
    await tx.execute(e.UPDATE_INCIDENT, e.update_params(row, incident_id, update, now, actor))
    messages = list(update.messages)
    if any(m.kind != "firing" for m in messages):
        messages = e.with_threads(messages, await tx.fetchall(e.THREADS, (incident_id,)))
    await tx.executemany(q.INSERT_OUTBOX, rows.outbox_params(incident_id, messages, now, rules))
    await tx.executemany(e.INSERT_EVENT, e.event_params(incident_id, update.events, now))
    return len(messages)


async def intake(
    tx: Tx,
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
    return await write(tx, incident, incident_id, update, now, rules, "alertmanager")


async def act(
    tx: Tx, incident_id: int, request: ActRequest, now: float, rules: IntakeRules
) -> ActResult:
    """Apply a person's action to one incident, holding its row lock."""
    row = await tx.fetchone(q.LOCK_INCIDENT, (incident_id,))
    if row is None:
        return ActResult(found=False)
    reason = e.refused(row, request)
    if reason:
        return ActResult(True, False, row, reason=reason)
    alerts = await tx.fetchall(q.ALERTS, (incident_id,))
    update = e.act_update(row, alerts, request, now, rules)
    queued = 0
    if update.changed:
        queued = await write(tx, row, incident_id, update, now, rules, request.actor)
        if update.state == "resolved":
            await tx.execute(e.CLOSE_GROUP, (incident_id,))
    after = await one(tx, q.INCIDENT, (incident_id,))
    return ActResult(True, True, after, update.changed, queued)


async def escalate_due(tx: Tx, now: float, limit: int, rules: IntakeRules) -> list[Fired]:
    """Feed due timers to the engine; rows another replica holds are skipped, not waited for."""
    fired = []
    for row in await tx.fetchall(e.DUE, (now, limit)):
        alerts = await tx.fetchall(q.ALERTS, (row["id"],))
        update = e.due_update(row, alerts, now, rules)
        queued = 0
        if update is None:  # the policy is gone (config reload): stop escalating
            await tx.execute(e.SET_TIMER, (None, None, row["id"]))
        elif update.changed:
            queued = await write(tx, row, row["id"], update, now, rules)
        else:  # a stale timer: re-arm it from the state, which is the truth
            await tx.execute(e.SET_TIMER, (*e.timer_of(state_of(row)), row["id"]))
        acted = update is not None and update.changed
        fired.append(Fired(row["id"], row["next_step_at"], acted, queued))
    return fired


async def _watchdog_row(tx: Tx, name: str, now: float) -> Row:
    """Return the watchdog's row locked; create it (seen now) when it does not exist yet."""
    await tx.execute(ADD_WATCHDOG, (name, now))
    return await one(tx, LOCK_WATCHDOG, (name,))


async def watchdog_beat(
    tx: Tx, name: str, now: float, back: Outage, rules: IntakeRules
) -> int | None:
    """Record a heartbeat; resolve the outage incident if one is open."""
    row = await _watchdog_row(tx, name, now)
    await tx.execute(BEAT, (now, name))
    incident_id = row["incident_id"]
    if row["down_since"] is None or incident_id is None:
        return None
    await tx.execute(BEAT_RESOLVE, (now, now, incident_id))
    await tx.execute(e.CLOSE_GROUP, (incident_id,))
    await _queue_outage(tx, incident_id, back, now, rules)
    return int(incident_id)


async def watchdog_check(
    tx: Tx, name: str, now: float, expect_every: float, outage: Outage, rules: IntakeRules
) -> int | None:
    """Open the outage incident once, when the last heartbeat is older than `expect_every`."""
    # Never seen since the store was created: the row is made now, and the grace period starts.
    row = await _watchdog_row(tx, name, now)
    if row["down_since"] is not None or now - row["last_seen"] <= expect_every:
        return None
    incident_id = await _open_outage(tx, outage.write)
    await tx.execute(DOWN, (now, incident_id, name))
    await _queue_outage(tx, incident_id, outage, now, rules)
    return incident_id


async def _open_outage(tx: Tx, write_: IncidentWrite) -> int:
    key = ("maintwatch", f"watchdog:{write_.group_labels.get('alertname', '')}")
    await tx.execute(ADD_GROUP, key)
    group = await one(tx, GROUP_ID, key)
    params = rows.incident_params(write_)
    params.update(group_id=group["id"], receiver=key[0], group_key=key[1])
    incident_id: int = (await one(tx, q.INSERT_INCIDENT, params))["id"]
    await tx.execute(OPEN_GROUP, (incident_id, group["id"]))
    return incident_id


async def _queue_outage(
    tx: Tx, incident_id: int, outage: Outage, now: float, rules: IntakeRules
) -> None:
    messages = e.outage_messages(outage, incident_id, rules)
    await tx.executemany(q.INSERT_OUTBOX, rows.outbox_params(incident_id, messages, now, rules))
    await tx.executemany(e.INSERT_EVENT, e.event_params(incident_id, outage.events, now))


async def timeline(tx: Tx, incident_id: int) -> list[dict[str, Any]]:
    """Return the incident's timeline."""
    events = await tx.fetchall(e.TIMELINE, (incident_id,))
    return e.timeline(events, await tx.fetchall(e.DELIVERY_LOG, (incident_id,)))


async def next_timer(tx: Tx) -> float | None:
    """Return the earliest escalation timer."""
    found: float | None = (await one(tx, e.NEXT_TIMER))["t"]
    return found


async def overdue(tx: Tx, now: float) -> tuple[int, float | None]:
    """Count open incidents whose timer is before `now`, and return the oldest timer."""
    found = await one(tx, e.OVERDUE, (now,))
    return found["n"], found["oldest"]
