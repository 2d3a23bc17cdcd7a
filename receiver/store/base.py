"""The store interface, its row types, and the decisions both backends share (pure).

Each backend keeps its SQL in one module; what happens to a payload is decided here and in
`receiver.incidents` / `receiver.notify`, so SQLite and PostgreSQL behave identically.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from receiver.incidents import GroupState, Merge, merge
from receiver.notify import IncidentInfo, Planned, body, kind_for, plan
from receiver.routing import Route, route
from receiver.store.escalation_plan import (
    ActRequest,
    ActResult,
    EscalationRules,
    Message,
    TimelineEvent,
)
from receiver.webhook import Payload

Outcome = Literal["sent", "pending", "failed", "unknown"]
STATES = ("triggered", "acknowledged", "resolved")
OUTBOX_STATES = ("pending", "sending", "sent", "failed", "unknown")
PruneTarget = Literal["incidents", "notifications"]  # see receiver.retention


class StoreError(Exception):
    """Base of the store's errors."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or is locked; callers answer 503 and retry later."""


@dataclass(frozen=True)
class IntakeRules:
    """Everything the pure intake logic needs from the config."""

    routes: tuple[Route, ...]
    severity_label: str = "severity"
    default_severity: str = "warning"
    external_url: str = ""
    at_most_once: frozenset[str] = frozenset()
    escalation: EscalationRules | None = None  # None: no policies, the core notify path only

    def incident_url(self, incident_id: int) -> str:
        """Return the receiver's page for an incident (empty without external_url)."""
        base = self.external_url.rstrip("/")
        return f"{base}/incidents/{incident_id}" if base else ""

    def rate_key(self, channel: str, recipient: str | None) -> str | None:
        """Return the rate-limit key of an at-most-once (SMS) message, None for others."""
        if channel not in self.at_most_once:
            return None
        return f"person:{recipient}" if recipient else f"channel:{channel}"


@dataclass(frozen=True)
class IncidentMeta:
    """Stored routing facts of the open incident."""

    channels: tuple[str, ...]
    people: tuple[str, ...]
    paged: bool
    opened_at: float


@dataclass(frozen=True)
class IncidentWrite:
    """The incident columns an intake writes (insert on open, update otherwise)."""

    state: str
    severity: str
    group_labels: dict[str, str]
    common_labels: dict[str, str]
    common_annotations: dict[str, str]
    external_url: str
    truncated_alerts: int
    routes: tuple[str, ...]
    channels: tuple[str, ...]
    people: tuple[str, ...]
    policy: str | None
    digest: bool
    paged: bool
    updated_at: float
    resolved_at: float | None


@dataclass(frozen=True)
class Transition:
    """A payload's effect on a group: the merge, and the incident row to write."""

    merge: Merge
    incident: IncidentWrite | None


@dataclass(frozen=True)
class IngestResult:
    """What an intake did (for logs, metrics and the worker's wake-up)."""

    action: str
    incident_id: int | None = None
    notifications: int = 0


def decide(
    group: GroupState, meta: IncidentMeta | None, payload: Payload, now: float, rules: IntakeRules
) -> Transition:
    """Return the effect of `payload` on `group` (pure)."""
    result = merge(group, payload, rules.severity_label, rules.default_severity)
    if result.action in ("none", "marks"):
        return Transition(result, None)
    if meta is None:
        labels = {**payload.groupLabels, **payload.commonLabels}
        decision = route(rules.routes, labels)
        routes, channels, people, policy = (
            decision.routes,
            decision.channels,
            decision.people,
            decision.policy,
        )
        paged = False
    else:
        routes, channels, people, policy, paged = (), meta.channels, meta.people, None, meta.paged
    resolved = result.action == "resolve"
    write = IncidentWrite(
        state="resolved" if resolved else "triggered",
        severity=result.severity,
        group_labels=dict(payload.groupLabels),
        common_labels=dict(payload.commonLabels),
        common_annotations=dict(payload.commonAnnotations),
        external_url=payload.externalURL,
        truncated_alerts=payload.truncatedAlerts,
        routes=routes,
        channels=channels,
        people=people,
        policy=policy,
        digest=result.severity == "info",
        paged=paged,
        updated_at=now,
        resolved_at=now if resolved else None,
    )
    return Transition(result, write)


def outbox_entries(
    transition: Transition, incident_id: int, state: str, rules: IntakeRules
) -> list[Planned]:
    """Return the notifications to queue for an incident change (pure)."""
    write = transition.incident
    if write is None:
        return []
    info = IncidentInfo(
        id=incident_id,
        state=state,
        severity=write.severity,
        group_labels=write.group_labels,
        common_labels=write.common_labels,
        common_annotations=write.common_annotations,
        truncated_alerts=write.truncated_alerts,
        external_url=write.external_url,
        channels=write.channels,
        people=write.people,
        paged=write.paged,
    )
    kind = kind_for(transition.merge, info)
    if kind is None:
        return []
    alerts = sorted(transition.merge.all_alerts.values(), key=lambda a: (a.status, a.fingerprint))
    message = body(kind, info, alerts, state, rules.incident_url(incident_id))
    return plan(kind, info, message)


def rate_limit(
    recent: Sequence[float], now: float, max_messages: int, window: float
) -> float | None:
    """Return when a message may go out if `recent` send times fill the window, else None."""
    inside = sorted(t for t in recent if t > now - window)
    if len(inside) < max_messages:
        return None
    return inside[len(inside) - max_messages] + window


@dataclass(frozen=True)
class OutboxRow:
    """A claimed outbox row (status `sending`)."""

    id: int
    incident_id: int
    channel: str
    kind: str
    recipient: str | None
    body: dict[str, Any]
    attempts: int
    at_most_once: bool
    created_at: float
    fallback_of: int | None


@dataclass(frozen=True)
class Fallback:
    """A copy of a failed message to queue for the fallback channel."""

    channel: str
    at_most_once: bool
    rate_key: str | None


@dataclass(frozen=True)
class Finish:
    """How a delivery attempt ended; `fallback` asks for a copy on another channel."""

    outcome: Outcome
    now: float
    detail: str = ""
    next_attempt_at: float | None = None
    provider_id: str = ""
    fallback: Fallback | None = None
    thread: dict[str, str] = field(default_factory=dict)  # chat thread to reply into later


@dataclass(frozen=True)
class Recovered:
    """Rows found in `sending` past their deadline after a crash."""

    retried: tuple[int, ...] = ()
    unknown: tuple[int, ...] = ()


@dataclass(frozen=True)
class Fired:
    """A due timer the worker handled: when it was due, and how many messages it queued."""

    incident_id: int
    due_at: float
    acted: bool
    queued: int


@dataclass(frozen=True)
class Outage:
    """The dead man's switch incident to open (or resolve), and the messages to queue then."""

    write: IncidentWrite
    messages: tuple[Message, ...]
    events: tuple[TimelineEvent, ...]


@dataclass(frozen=True)
class Stats:
    """Counts for the metrics gauges."""

    incidents: dict[str, int] = field(default_factory=dict)
    outbox: dict[str, int] = field(default_factory=dict)
    oldest_pending: float | None = None


class Store(abc.ABC):
    """Durable state: groups, incidents, alerts, outbox and delivery log."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and apply migrations."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections and threads."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers."""

    @abc.abstractmethod
    async def ingest(self, payload: Payload, now: float, rules: IntakeRules) -> IngestResult:
        """Apply a payload and queue its notifications in one durable transaction."""

    @abc.abstractmethod
    async def recover(self, now: float) -> Recovered:
        """Requeue expired at-least-once `sending` rows; mark at-most-once ones `unknown`."""

    @abc.abstractmethod
    async def claim(
        self, now: float, limit: int, lease: float, max_messages: int, window: float
    ) -> list[OutboxRow]:
        """Mark due rows `sending` until now+lease and return them (rate limits applied)."""

    @abc.abstractmethod
    async def finish(self, row: OutboxRow, result: Finish) -> bool:
        """Record an attempt's result; False when the claim was lost (fencing)."""

    @abc.abstractmethod
    async def incidents(
        self, state: str | None, labels: Mapping[str, str], limit: int
    ) -> list[dict[str, Any]]:
        """Return incidents, newest first, filtered by state and common labels."""

    @abc.abstractmethod
    async def incident(self, incident_id: int) -> dict[str, Any] | None:
        """Return one incident with its alerts and delivery log."""

    @abc.abstractmethod
    async def resolve(
        self, incident_id: int, now: float, by: str, rules: IntakeRules
    ) -> IngestResult | None:
        """Resolve an incident by hand and queue `resolved` messages; None if not found."""

    @abc.abstractmethod
    async def stats(self) -> Stats:
        """Return counts for the metrics gauges."""

    @abc.abstractmethod
    async def act(
        self, incident_id: int, request: ActRequest, now: float, rules: IntakeRules
    ) -> ActResult:
        """Apply an ack/unack/resolve under the incident's row lock, queueing its messages."""

    @abc.abstractmethod
    async def escalate_due(self, now: float, limit: int, rules: IntakeRules) -> list[Fired]:
        """Claim incidents whose timer is due (skipping locked ones) and feed them the engine."""

    @abc.abstractmethod
    async def next_timer(self) -> float | None:
        """Return the earliest escalation timer, if any."""

    @abc.abstractmethod
    async def overdue(self, now: float) -> tuple[int, float | None]:
        """Return how many open incidents have a timer before `now`, and the oldest one."""

    @abc.abstractmethod
    async def timeline(self, incident_id: int) -> list[dict[str, Any]]:
        """Return the incident's timeline: events and delivery results, oldest first."""

    @abc.abstractmethod
    async def watchdog_beat(
        self, name: str, now: float, back: Outage, rules: IntakeRules
    ) -> int | None:
        """Record a heartbeat; when it ends an outage, resolve its incident and return its id."""

    @abc.abstractmethod
    async def watchdog_check(
        self, name: str, now: float, expect_every: float, outage: Outage, rules: IntakeRules
    ) -> int | None:
        """Open the outage incident once when the heartbeat is late; return its id if opened."""

    @abc.abstractmethod
    async def prune(self, target: PruneTarget, before: float, limit: int) -> int:
        """Delete up to `limit` expired rows of `target` older than `before`; return how many."""
