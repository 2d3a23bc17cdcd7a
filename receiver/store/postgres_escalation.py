"""PostgreSQL side of escalation: statements run inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from receiver.store import escalation_rows as e
from receiver.store import postgres_queries as q
from receiver.store import rows
from receiver.store.base import Fired, IncidentWrite, IntakeRules, Outage, Transition
from receiver.store.escalation_plan import ActRequest, ActResult, Update, state_of
from receiver.store.escalation_rows import pg

Conn = q.Conn
Row = Mapping[str, Any]
LOCK_INCIDENT = "SELECT * FROM incidents WHERE id = %s FOR UPDATE"
LOCK_WATCHDOG = "SELECT * FROM watchdogs WHERE name = %s FOR UPDATE"


async def _many(conn: Conn, sql: str, params: list[tuple[Any, ...]]) -> None:
    if params:
        async with conn.cursor() as cursor:
            await cursor.executemany(pg(sql).encode(), params)


async def write(
    conn: Conn,
    row: Row | None,
    incident_id: int,
    update: Update,
    now: float,
    rules: IntakeRules,
    actor: str = "",
) -> int:
    """Write an engine update: incident columns, outbox messages, timeline; return messages."""
    params = e.update_params(row, incident_id, update, now, actor)
    await conn.execute(pg(e.UPDATE_INCIDENT).encode(), params)
    messages = list(update.messages)
    if any(m.kind != "firing" for m in messages):
        found = await q.all_(conn, pg(e.THREADS), (incident_id,))
        messages = e.with_threads(messages, found)
    await _many(conn, q.INSERT_OUTBOX, rows.outbox_params(incident_id, messages, now, rules))
    await _many(conn, e.INSERT_EVENT, e.event_params(incident_id, update.events, now))
    return len(messages)


async def intake(
    conn: Conn,
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
    return await write(conn, incident, incident_id, update, now, rules, "alertmanager")


async def act(
    conn: Conn, incident_id: int, request: ActRequest, now: float, rules: IntakeRules
) -> ActResult:
    """Apply a person's action to one incident, holding its row lock."""
    row = await q.one_or_none(conn, LOCK_INCIDENT, (incident_id,))
    if row is None:
        return ActResult(found=False)
    reason = e.refused(row, request)
    if reason:
        return ActResult(True, False, row, reason=reason)
    alerts = await q.all_(conn, pg(e.ALERTS), (incident_id,))
    update = e.act_update(row, alerts, request, now, rules)
    queued = 0
    if update.changed:
        queued = await write(conn, row, incident_id, update, now, rules, request.actor)
        if update.state == "resolved":
            await conn.execute(pg(e.CLOSE_GROUP).encode(), (incident_id,))
    after = await q.one(conn, "SELECT * FROM incidents WHERE id = %s", (incident_id,))
    return ActResult(True, True, after, update.changed, queued)


async def escalate_due(conn: Conn, now: float, limit: int, rules: IntakeRules) -> list[Fired]:
    """Feed due timers to the engine; rows another replica holds are skipped, not waited for."""
    fired = []
    for row in await q.all_(conn, pg(e.DUE) + " FOR UPDATE SKIP LOCKED", (now, limit)):
        alerts = await q.all_(conn, pg(e.ALERTS), (row["id"],))
        update = e.due_update(row, alerts, now, rules)
        queued = 0
        if update is None:  # the policy is gone (config reload): stop escalating
            await conn.execute(pg(e.SET_TIMER).encode(), (None, None, row["id"]))
        elif update.changed:
            queued = await write(conn, row, row["id"], update, now, rules)
        else:  # a stale timer: re-arm it from the state, which is the truth
            timer = e.timer_of(state_of(row))
            await conn.execute(pg(e.SET_TIMER).encode(), (*timer, row["id"]))
        acted = update is not None and update.changed
        fired.append(Fired(row["id"], row["next_step_at"], acted, queued))
    return fired


async def _watchdog_row(conn: Conn, name: str, now: float) -> Row | None:
    """Return the watchdog's row locked; create it (seen now) when it does not exist yet."""
    await conn.execute(
        "INSERT INTO watchdogs (name, last_seen) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (name, now),
    )
    return await q.one_or_none(conn, LOCK_WATCHDOG, (name,))


async def watchdog_beat(
    conn: Conn, name: str, now: float, back: Outage, rules: IntakeRules
) -> int | None:
    """Record a heartbeat; resolve the outage incident if one is open."""
    row = await _watchdog_row(conn, name, now)
    assert row is not None
    await conn.execute(
        "UPDATE watchdogs SET last_seen = GREATEST(last_seen, %s), down_since = NULL, "
        "incident_id = NULL WHERE name = %s",
        (now, name),
    )
    incident_id = row["incident_id"]
    if row["down_since"] is None or incident_id is None:
        return None
    await conn.execute(
        "UPDATE incidents SET state = 'resolved', resolved_at = %s, resolved_by = 'watchdog', "
        "updated_at = %s WHERE id = %s AND state != 'resolved'",
        (now, now, incident_id),
    )
    await conn.execute(pg(e.CLOSE_GROUP).encode(), (incident_id,))
    await _queue_outage(conn, incident_id, back, now, rules)
    return int(incident_id)


async def watchdog_check(
    conn: Conn, name: str, now: float, expect_every: float, outage: Outage, rules: IntakeRules
) -> int | None:
    """Open the outage incident once, when the last heartbeat is older than `expect_every`."""
    row = await _watchdog_row(conn, name, now)
    assert row is not None
    if row["down_since"] is not None or now - row["last_seen"] <= expect_every:
        return None
    incident_id = await _open_outage(conn, outage.write)
    await conn.execute(
        "UPDATE watchdogs SET down_since = %s, incident_id = %s WHERE name = %s",
        (now, incident_id, name),
    )
    await _queue_outage(conn, incident_id, outage, now, rules)
    return incident_id


async def _open_outage(conn: Conn, write_: IncidentWrite) -> int:
    key = ("maintwatch", f"watchdog:{write_.group_labels.get('alertname', '')}")
    group = await q.one(
        conn,
        "INSERT INTO alert_groups (receiver, group_key) VALUES (%s, %s) "
        "ON CONFLICT (receiver, group_key) DO UPDATE SET group_key = EXCLUDED.group_key "
        "RETURNING id",
        key,
    )
    params = rows.incident_params(write_)
    params.update(group_id=group["id"], receiver=key[0], group_key=key[1])
    incident_id: int = (await q.one(conn, q.INSERT_INCIDENT, params))["id"]
    await conn.execute(
        "UPDATE alert_groups SET open_incident_id = %s WHERE id = %s", (incident_id, group["id"])
    )
    return incident_id


async def _queue_outage(
    conn: Conn, incident_id: int, outage: Outage, now: float, rules: IntakeRules
) -> None:
    messages = e.outage_messages(outage, incident_id, rules)
    await _many(conn, q.INSERT_OUTBOX, rows.outbox_params(incident_id, messages, now, rules))
    await _many(conn, e.INSERT_EVENT, e.event_params(incident_id, outage.events, now))


async def timeline(conn: Conn, incident_id: int) -> list[dict[str, Any]]:
    """Return the incident's timeline."""
    events = await q.all_(conn, pg(e.TIMELINE), (incident_id,))
    return e.timeline(events, await q.all_(conn, pg(e.DELIVERY_LOG), (incident_id,)))
