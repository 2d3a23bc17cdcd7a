"""What a webhook payload does to its alert group (pure): the incident to write, the messages.

`receiver.intake.apply` runs these decisions inside a store transaction; they do no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from receiver.delivery.notify import IncidentInfo, Planned, body, kind_for, plan
from receiver.escalation.plan import EscalationRules
from receiver.intake.merge import GroupState, Merge, merge
from receiver.intake.payload import Payload
from receiver.routing.routes import Route, route


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
    timer: float | None = None  # the escalation timer it set: the worker may wake earlier


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
    if write is None or not write.channels:  # a message per channel: none to write
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
