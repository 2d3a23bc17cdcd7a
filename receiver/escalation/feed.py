"""What the escalation engine answers for a stored incident: intake, a person, a due timer.

Pure: rows in (as the store's scripts read them), the engine's `Update` out; the scripts in
`transactions.py` read and write around these.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from receiver.delivery.notify import IncidentInfo
from receiver.escalation.model import EscalationState
from receiver.escalation.plan import (
    ALLOWED,
    EMPTY_RULES,
    NO_POLICY,
    ActRequest,
    IncidentView,
    Message,
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


def timer_of(state: EscalationState) -> tuple[float | None, int | None]:
    """Return the (next_step_at, timer_version) columns the state calls for."""
    if state.next_at is None:
        return None, None
    return state.next_at.timestamp(), state.version


def outage_messages(outage: Outage, incident_id: int, rules: IntakeRules) -> list[Message]:
    """Return the outage's messages with the incident's link filled in."""
    url = rules.incident_url(incident_id)
    return [replace(m, body={**m.body, "incident_url": url}) for m in outage.messages]
