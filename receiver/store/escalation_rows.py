"""Escalation statements and the row helpers around the engine."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from receiver.delivery.notify import IncidentInfo, Planned
from receiver.escalation.model import EscalationState
from receiver.escalation.plan import (
    ALLOWED,
    EMPTY_RULES,
    NO_POLICY,
    ActRequest,
    IncidentView,
    Message,
    TimelineEvent,
    Update,
    apply,
    due_event,
    event_for_act,
    event_for_intake,
    state_of,
)
from receiver.intake.decide import IntakeRules, Transition
from receiver.store import rows
from receiver.store.base import Outage

Row = Mapping[str, Any]

UPDATE_INCIDENT = """
UPDATE incidents SET state = ?, escalation = ?, next_step_at = ?, timer_version = ?,
    acked_by = ?, acked_at = ?, paged = (paged OR ?), resolved_at = COALESCE(resolved_at, ?),
    resolved_by = COALESCE(resolved_by, ?), updated_at = ?
WHERE id = ?
"""
SET_TIMER = "UPDATE incidents SET next_step_at = ?, timer_version = ? WHERE id = ?"
INSERT_EVENT = (
    "INSERT INTO incident_events (incident_id, at, kind, actor, detail) VALUES (?, ?, ?, ?, ?)"
)
DUE = (
    "SELECT * FROM incidents WHERE next_step_at <= ? AND state != 'resolved' "
    "ORDER BY next_step_at, id LIMIT ?{skip_locked}"
)
THREADS = "SELECT channel, thread FROM outbox WHERE incident_id = ? AND thread != '{}'"
NEXT_TIMER = "SELECT MIN(next_step_at) AS t FROM incidents WHERE next_step_at IS NOT NULL"
OVERDUE = (
    "SELECT COUNT(*) AS n, MIN(next_step_at) AS oldest FROM incidents "
    "WHERE next_step_at < ? AND state != 'resolved'"
)
CLOSE_GROUP = "UPDATE alert_groups SET open_incident_id = NULL WHERE open_incident_id = ?"
TIMELINE = "SELECT at, kind, actor, detail FROM incident_events WHERE incident_id = ? ORDER BY id"
DELIVERY_LOG = (
    "SELECT d.at, d.outcome, d.detail, o.channel, o.kind, o.recipient FROM deliveries d "
    "JOIN outbox o ON o.id = d.outbox_id WHERE o.incident_id = ? ORDER BY d.id"
)


def view_of(row: Row, alerts: Sequence[Row], rules: IntakeRules) -> IncidentView:
    """Return what messages about a stored incident show."""
    info = IncidentInfo(
        id=row["id"],
        state=row["state"],
        severity=row["severity"],
        group_labels=json.loads(row["group_labels"]),
        common_labels=json.loads(row["common_labels"]),
        common_annotations=json.loads(row["common_annotations"]),
        truncated_alerts=row["truncated_alerts"],
        external_url=row["external_url"],
        channels=tuple(json.loads(row["channels"])),
        people=tuple(json.loads(row["people"])),
        paged=bool(row["paged"]),
    )
    records = sorted((rows.alert_from(a) for a in alerts), key=lambda a: (a.status, a.fingerprint))
    return IncidentView(info, tuple(records), rules.incident_url(row["id"]))


def intake_update(
    incident: Row | None, transition: Transition, incident_id: int, now: float, rules: IntakeRules
) -> Update | None:
    """Return the engine's answer to an intake change; None: the route has no policy (core)."""
    write = transition.incident
    escalation = rules.escalation
    if write is None or escalation is None:
        return None
    policy = escalation.policy(write.policy if incident is None else incident["policy"])
    if policy is None:
        return None
    merge = transition.merge
    event = event_for_intake(merge.action, write.severity, write.channels, write.people)
    if incident is None:
        state = EscalationState()
        row_state = "triggered"
    else:
        state = state_of(incident)
        row_state = incident["state"]
    if event is None:
        return Update(False, row_state, json.dumps(state.to_dict()), None, None, state.acked_by)
    alerts = sorted(merge.all_alerts.values(), key=lambda a: (a.status, a.fingerprint))
    info = IncidentInfo(
        incident_id,
        row_state,
        write.severity,
        write.group_labels,
        write.common_labels,
        write.common_annotations,
        write.truncated_alerts,
        write.external_url,
        write.channels,
        write.people,
        write.paged,
    )
    view = IncidentView(info, tuple(alerts), rules.incident_url(incident_id))
    return apply(view, state, event, now, policy, escalation)


def act_update(
    row: Row, alerts: Sequence[Row], request: ActRequest, now: float, rules: IntakeRules
) -> Update:
    """Return the engine's answer to a person's action (no policy: tell, never escalate)."""
    escalation = rules.escalation or EMPTY_RULES
    policy = escalation.policy(row["policy"]) or NO_POLICY
    event = event_for_act(request)
    view = view_of(row, alerts, rules)
    return apply(view, state_of(row), event, now, policy, escalation, request.via)


def due_update(row: Row, alerts: Sequence[Row], now: float, rules: IntakeRules) -> Update | None:
    """Return the engine's answer to a due timer; None when the policy is gone (drop the timer)."""
    escalation = rules.escalation
    policy = None if escalation is None else escalation.policy(row["policy"])
    if policy is None or escalation is None or row["timer_version"] is None:
        return None
    state = state_of(row)
    event = due_event(state, row["timer_version"])
    return apply(view_of(row, alerts, rules), state, event, now, policy, escalation)


def refused(row: Row, request: ActRequest) -> str:
    """Return why the incident's state does not allow the action ('' when it does)."""
    if row["state"] in ALLOWED[request.verb]:
        return ""
    return f"cannot {request.verb}: it is {row['state']}"


def acked_at(row: Row | None, update: Update, now: float) -> float | None:
    """Return the acked_at column: kept while the same ack stands, now for a new one."""
    if update.state != "acknowledged":
        return None
    if row is not None and row["state"] == "acknowledged" and row["acked_by"] == update.acked_by:
        return row["acked_at"]  # type: ignore[no-any-return]
    return now


def update_params(
    row: Row | None, incident_id: int, update: Update, now: float, actor: str
) -> tuple[Any, ...]:
    """Return UPDATE_INCIDENT's parameters."""
    resolved = update.state == "resolved"
    return (
        update.state,
        update.escalation,
        update.next_step_at,
        update.timer_version,
        update.acked_by,
        acked_at(row, update, now),
        update.paged,
        now if resolved else None,
        actor if resolved else None,
        now,
        incident_id,
    )


M = TypeVar("M", Message, Planned)


def with_threads(messages: Sequence[M], found: Sequence[Row]) -> list[M]:
    """Attach the chat thread refs earlier deliveries returned, per channel, to follow-ups."""
    threads: dict[str, dict[str, str]] = {}
    for item in found:
        threads.setdefault(item["channel"], {}).update(json.loads(item["thread"]))
    out = []
    for message in messages:
        ref = threads.get(message.channel)
        if ref and message.kind != "firing":
            message = replace(message, body={**message.body, "thread": ref})
        out.append(message)
    return out


def event_params(
    incident_id: int, events: Sequence[TimelineEvent], now: float
) -> list[tuple[Any, ...]]:
    """Return INSERT_EVENT parameters for timeline entries."""
    return [(incident_id, now, e.kind, e.actor, e.detail) for e in events]


def timer_of(state: EscalationState) -> tuple[float | None, int | None]:
    """Return the (next_step_at, timer_version) columns the state calls for."""
    if state.next_at is None:
        return None, None
    return state.next_at.timestamp(), state.version


def outage_messages(outage: Outage, incident_id: int, rules: IntakeRules) -> list[Message]:
    """Return the outage's messages with the incident's link filled in."""
    url = rules.incident_url(incident_id)
    return [replace(m, body={**m.body, "incident_url": url}) for m in outage.messages]


def timeline(events: Sequence[Row], deliveries: Sequence[Row]) -> list[dict[str, Any]]:
    """Merge timeline events and delivery results into one list ordered by time."""
    merged = [dict(e) for e in events]
    for d in deliveries:
        whom = f" → {d['recipient']}" if d["recipient"] else ""
        detail = f"{d['kind']} via {d['channel']}{whom}: {d['outcome']}"
        merged.append(
            {"at": d["at"], "kind": "delivery", "actor": "", "detail": _join(detail, d["detail"])}
        )
    merged.sort(key=lambda e: e["at"])
    return [{**e, "at": rows.iso(e["at"])} for e in merged]


def _join(head: str, tail: str) -> str:
    return f"{head} ({tail})" if tail else head
