"""Apply escalation events to a stored incident (pure; shared by both store backends).

A store loads the incident row and its alerts under a row lock, asks `apply` what one event
changes, and writes the result — incident columns, outbox messages, timeline events — in the
same transaction. The timer is fenced: the worker feeds the event tagged with the *stored*
timer version, and the engine ignores it unless that is still the state's version.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from receiver.delivery.notify import IncidentInfo, body
from receiver.escalation.engine import (
    AckExpired,
    Acknowledged,
    AlertsAdded,
    EscalationState,
    Event,
    Notify,
    Opened,
    PolicyConfig,
    Resolved,
    TimerDue,
    Unacknowledged,
    step,
)
from receiver.intake.merge import AlertRecord
from receiver.oncall.people import Directory

NO_POLICY = PolicyConfig(name="(none)")  # routes without a policy: tell, never escalate
Verb = Literal["ack", "unack", "resolve"]
ALLOWED: Mapping[Verb, tuple[str, ...]] = {
    "ack": ("triggered", "acknowledged"),
    "unack": ("acknowledged",),
    "resolve": ("triggered", "acknowledged"),
}


@dataclass(frozen=True)
class EscalationRules:
    """Policies by name and the people/schedules directory targets resolve through."""

    policies: Mapping[str, PolicyConfig] = field(default_factory=dict)
    directory: Directory = field(default_factory=lambda: Directory([]))

    def policy(self, name: str | None) -> PolicyConfig | None:
        """Return the named policy, None when unnamed or no longer configured."""
        return None if name is None else self.policies.get(name)


EMPTY_RULES = EscalationRules()


@dataclass(frozen=True)
class Message:
    """One outbox row to write; `not_before` holds it back (quiet hours)."""

    channel: str
    kind: str
    recipient: str | None
    body: dict[str, Any]
    not_before: float | None = None


@dataclass(frozen=True)
class TimelineEvent:
    """One line of the incident's timeline."""

    kind: str
    actor: str = ""
    detail: str = ""


@dataclass(frozen=True)
class IncidentView:
    """What messages about an incident show: its fields and alerts."""

    info: IncidentInfo
    alerts: tuple[AlertRecord, ...]
    url: str = ""


@dataclass(frozen=True)
class Update:
    """What one event changed; `changed` False means the engine ignored it."""

    changed: bool
    state: str
    escalation: str
    next_step_at: float | None
    timer_version: int | None
    acked_by: str | None
    messages: tuple[Message, ...] = ()
    events: tuple[TimelineEvent, ...] = ()

    @property
    def paged(self) -> bool:
        """Return whether a firing message goes out."""
        return any(m.kind == "firing" for m in self.messages)


@dataclass(frozen=True)
class ActRequest:
    """A person's (or token's) action on an incident."""

    verb: Verb
    actor: str
    via: str


@dataclass(frozen=True)
class ActResult:
    """The outcome of an ActRequest: `found`, whether it was `allowed`, and the incident row."""

    found: bool
    allowed: bool = True
    incident: dict[str, Any] = field(default_factory=dict)
    changed: bool = False
    queued: int = 0
    reason: str = ""


def to_time(value: float) -> datetime:
    """Return epoch seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(value, UTC)


def _epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def state_of(row: Mapping[str, Any]) -> EscalationState:
    """Return the incident's stored escalation state, or one synthesised from core columns."""
    text = row.get("escalation")
    if text:
        return EscalationState.from_dict(json.loads(text))
    channels = tuple(json.loads(row["channels"]))
    people = tuple(json.loads(row["people"]))
    paged = bool(row["paged"])
    return EscalationState(
        status=row["state"],
        severity=row["severity"],
        acked_by=row.get("acked_by"),
        paged=dict.fromkeys(people, channels) if paged else {},
        channels=channels if paged and not people else (),
        route_channels=channels,
        route_people=people,
    )


def event_for_intake(
    action: str, severity: str, channels: Sequence[str], people: Sequence[str]
) -> Event | None:
    """Return the engine event an intake change feeds (None: nothing to tell the engine)."""
    if action == "open":
        return Opened(severity, tuple(channels), tuple(people))
    if action == "update":
        return AlertsAdded(severity)
    if action == "resolve":
        return Resolved("alertmanager")
    return None


def event_for_act(request: ActRequest) -> Event:
    """Return the engine event of a person's action."""
    if request.verb == "ack":
        return Acknowledged(request.actor)
    if request.verb == "unack":
        return Unacknowledged(request.actor)
    return Resolved(request.actor)


def due_event(state: EscalationState, timer_version: int) -> Event:
    """Return the event a due timer feeds, tagged with the stored (fencing) version."""
    if state.status == "acknowledged":
        return AckExpired(timer_version)
    return TimerDue(timer_version)


def apply(
    view: IncidentView,
    state: EscalationState,
    event: Event,
    now: float,
    policy: PolicyConfig,
    rules: EscalationRules,
    via: str = "",
) -> Update:
    """Feed one event to the engine; return the incident columns, messages and timeline."""
    new, actions = step(state, event, to_time(now), policy, rules.directory.resolve)
    status = "triggered" if new.status == "pending" else new.status
    if new is state:
        return Update(False, status, json.dumps(state.to_dict()), None, None, state.acked_by)
    notifies = [a for a in actions if isinstance(a, Notify)]
    messages = [m for n in notifies for m in _messages(view, n, status)]
    events = [*_input_events(event, via), *_step_events(notifies), *map(_told, notifies)]
    return Update(
        changed=True,
        state=status,
        escalation=json.dumps(new.to_dict()),
        next_step_at=_epoch(new.next_at),
        timer_version=None if new.next_at is None else new.version,
        acked_by=new.acked_by,
        messages=tuple(messages),
        events=tuple(events),
    )


def _messages(view: IncidentView, notify: Notify, status: str) -> list[Message]:
    text = body(notify.kind, view.info, view.alerts, status, view.url)
    text |= {"escalation_step": notify.step, "acted_by": notify.by}
    later = _epoch(notify.not_before)
    recipients: Sequence[str | None] = notify.targets or (None,)
    return [
        Message(channel, notify.kind, person, text, later)
        for person in recipients
        for channel in notify.via
    ]


def _input_events(event: Event, via: str) -> list[TimelineEvent]:
    how = f"via {via}" if via else ""
    if isinstance(event, Opened):
        return [TimelineEvent("fired", "alertmanager", f"severity {event.severity}")]
    if isinstance(event, AlertsAdded):
        return [TimelineEvent("alerts_added", "alertmanager", f"severity {event.severity}")]
    if isinstance(event, Acknowledged):
        return [TimelineEvent("acknowledged", event.by, how)]
    if isinstance(event, Unacknowledged):
        return [TimelineEvent("unacknowledged", event.by, how)]
    if isinstance(event, AckExpired):
        return [TimelineEvent("ack_expired", "", "escalation resumes")]
    if isinstance(event, Resolved):
        return [TimelineEvent("resolved", event.by, how)]
    return []


def _step_events(notifies: Sequence[Notify]) -> list[TimelineEvent]:
    """Return one `escalated` entry per policy step that paged (step 0 is the route's notice)."""
    ran = sorted({n.step for n in notifies if n.kind == "firing" and n.step > 0})
    return [TimelineEvent("escalated", "", f"step {number}") for number in ran]


def _told(notify: Notify) -> TimelineEvent:
    whom = ", ".join(notify.targets) or "channel"
    detail = f"{notify.kind} step {notify.step}: {whom} via {', '.join(notify.via) or 'nothing'}"
    if notify.not_before is not None:
        detail += f"; held until {notify.not_before.isoformat()} (quiet hours)"
    return TimelineEvent("notified", notify.by, detail)
