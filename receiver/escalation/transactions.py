"""Escalation's transactions, written once over the store: acks, due timers, intake changes
handed to the engine, and the dead man's switch."""

from __future__ import annotations

from receiver.escalation import feed
from receiver.escalation.plan import ActRequest, ActResult, Update, state_of
from receiver.intake.decide import IntakeRules, Transition
from receiver.store import escalation_sql as repo
from receiver.store.base import Fired, Outage
from receiver.store.tx import Row, Tx


async def write(
    tx: Tx,
    row: Row | None,
    incident_id: int,
    update: Update,
    now: float,
    rules: IntakeRules,
    actor: str = "",
) -> int:
    """Write an engine update: incident columns, timeline, outbox messages; return messages."""
    await repo.save_update(tx, row, incident_id, update, now, actor)
    return await repo.queue(tx, incident_id, update.messages, now, rules)


async def intake(
    tx: Tx,
    incident: Row | None,
    incident_id: int,
    transition: Transition,
    now: float,
    rules: IntakeRules,
) -> tuple[int, float | None] | None:
    """Feed an intake change to the engine; return messages queued and the timer set.

    None when the incident has no policy.
    """
    update = feed.intake_update(incident, transition, incident_id, now, rules)
    if update is None:
        return None
    if not update.changed:
        return 0, None
    queued = await write(tx, incident, incident_id, update, now, rules, "alertmanager")
    return queued, update.next_step_at


async def act(
    tx: Tx, incident_id: int, request: ActRequest, now: float, rules: IntakeRules
) -> ActResult:
    """Apply a person's action to one incident, holding its row lock."""
    row = await repo.lock_incident(tx, incident_id)
    if row is None:
        return ActResult(found=False)
    reason = feed.refused(row, request)
    if reason:
        return ActResult(True, False, row, reason=reason)
    update = feed.act_update(row, await repo.alerts(tx, incident_id), request, now, rules)
    queued = 0
    if update.changed:
        queued = await write(tx, row, incident_id, update, now, rules, request.actor)
        if update.state == "resolved":
            await repo.close_group(tx, incident_id)
    after = await repo.incident(tx, incident_id)
    return ActResult(True, True, after, update.changed, queued)


async def escalate_due(tx: Tx, now: float, limit: int, rules: IntakeRules) -> list[Fired]:
    """Feed due timers to the engine; rows another replica holds are skipped, not waited for."""
    fired = []
    for row in await repo.due(tx, now, limit):
        update = feed.due_update(row, await repo.alerts(tx, row["id"]), now, rules)
        queued = 0
        if update is None:  # the policy is gone (config reload): stop escalating
            await repo.set_timer(tx, row["id"], (None, None))
        elif update.changed:
            queued = await write(tx, row, row["id"], update, now, rules)
        else:  # a stale timer: re-arm it from the state, which is the truth
            await repo.set_timer(tx, row["id"], feed.timer_of(state_of(row)))
        acted = update is not None and update.changed
        fired.append(Fired(row["id"], row["next_step_at"], acted, queued))
    return fired


async def watchdog_beat(
    tx: Tx, name: str, now: float, back: Outage, rules: IntakeRules
) -> int | None:
    """Record a heartbeat; resolve the outage incident if one is open."""
    row = await repo.watchdog(tx, name, now)
    await repo.beat(tx, name, now)
    incident_id = row["incident_id"]
    if row["down_since"] is None or incident_id is None:
        return None
    await repo.resolve_outage(tx, incident_id, now)
    await _queue_outage(tx, incident_id, back, now, rules)
    return int(incident_id)


async def watchdog_check(
    tx: Tx, name: str, now: float, expect_every: float, outage: Outage, rules: IntakeRules
) -> int | None:
    """Open the outage incident once, when the last heartbeat is older than `expect_every`."""
    # Never seen since the store was created: the row is made now, and the grace period starts.
    row = await repo.watchdog(tx, name, now)
    if row["down_since"] is not None or now - row["last_seen"] <= expect_every:
        return None
    incident_id = await repo.open_outage(tx, outage.write)
    await repo.mark_down(tx, name, now, incident_id)
    await _queue_outage(tx, incident_id, outage, now, rules)
    return incident_id


async def _queue_outage(
    tx: Tx, incident_id: int, outage: Outage, now: float, rules: IntakeRules
) -> None:
    messages = feed.outage_messages(outage, incident_id, rules)
    await repo.queue(tx, incident_id, messages, now, rules, threads=False)
    await repo.add_events(tx, incident_id, outage.events, now)
