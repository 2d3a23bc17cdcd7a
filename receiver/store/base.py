"""The store interface, its row types, and the decisions both backends share (pure).

Each backend keeps its SQL in one module; what happens to a payload is decided here and in
`receiver.incidents` / `receiver.notify`, so SQLite and PostgreSQL behave identically.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from receiver.incident_record import IncidentRecord, TimelineEntry
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
    # When an earlier attempt's request may have left (at-most-once): check before resending.
    started_at: float | None = None


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
    # The request may have reached the provider: keep the row's start mark, so the next
    # attempt asks the provider first (at-most-once channels). False clears the mark.
    maybe_sent: bool = False


@dataclass(frozen=True)
class Recovered:
    """Rows found in `sending` past their deadline after a crash, all due again.

    `retried`: at-least-once rows, and at-most-once rows whose request provably never left;
    `unsure`: at-most-once rows whose request may have left (the worker checks with the
    provider before resending, or falls back).
    """

    retried: tuple[int, ...] = ()
    unsure: tuple[int, ...] = ()


PRIORITIES = {"critical": 0, "warning": 1}
LOWEST_PRIORITY = 2


def priority(body: Mapping[str, Any]) -> int:
    """Return a message's lane priority: 0 critical, 1 warning, 2 anything else."""
    return PRIORITIES.get(str(body.get("severity", "")), LOWEST_PRIORITY)


@dataclass(frozen=True)
class Wanted:
    """What the worker can take now: free slots per channel lane and per recipient.

    `recipients` holds (channel, recipient) pairs already at the per-recipient cap, so one
    recipient whose deliveries hang cannot fill a lane. `strays` rows of channels that are not
    configured (any more) may be taken too: the worker fails them at once.
    """

    lanes: Mapping[str, int]
    per_recipient: int
    in_flight: Mapping[tuple[str, str], int] = field(default_factory=dict)
    strays: int = 0


class Picker:
    """Decide, candidate by candidate, which due rows fit the free slots (pure)."""

    def __init__(self, wanted: Wanted) -> None:
        self._wanted = wanted
        self._free = dict(wanted.lanes)
        self._strays = wanted.strays
        self._people = dict(wanted.in_flight)

    def fits(self, channel: str, recipient: str | None) -> bool:
        """Return whether a row of this channel and recipient may be claimed now."""
        if channel not in self._free:
            return self._strays > 0
        if self._free[channel] <= 0:
            return False
        if recipient is None:
            return True
        return self._people.get((channel, recipient), 0) < self._wanted.per_recipient

    def take(self, channel: str, recipient: str | None) -> None:
        """Count a claimed row against its lane and recipient."""
        if channel not in self._free:
            self._strays -= 1
            return
        self._free[channel] -= 1
        if recipient is not None:
            key = (channel, recipient)
            self._people[key] = self._people.get(key, 0) + 1

    def lanes(self, due: Iterable[str]) -> list[tuple[str, int]]:
        """Return the channels with due rows to read, and how many candidates to read of each."""
        out = []
        for name in due:
            if name not in self._free:
                if self._strays > 0:
                    out.append((name, self._strays))
            elif self._free[name] > 0:
                # More candidates than slots: some belong to recipients at their cap.
                out.append((name, self._free[name] * 4))
        return out


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
        """Make expired `sending` rows due again; see Recovered for the two kinds."""

    @abc.abstractmethod
    async def claim(
        self, now: float, wanted: Wanted, lease: float, max_messages: int, window: float
    ) -> list[OutboxRow]:
        """Mark due rows `sending` until now+lease and return them: most severe first per lane,
        within the free slots of `wanted`, rate limits applied."""

    @abc.abstractmethod
    async def start(self, row: OutboxRow, now: float) -> bool:
        """Commit that an at-most-once request is about to leave; False if the claim was lost."""

    @abc.abstractmethod
    async def finish(self, row: OutboxRow, result: Finish) -> bool:
        """Record an attempt's result; False when the claim was lost (fencing)."""

    @abc.abstractmethod
    async def incidents(
        self, state: str | None, labels: Mapping[str, str], limit: int
    ) -> list[IncidentRecord]:
        """Return incidents, newest first, filtered by state and common labels."""

    @abc.abstractmethod
    async def incident(self, incident_id: int) -> IncidentRecord | None:
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
    async def timeline(self, incident_id: int) -> list[TimelineEntry]:
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
