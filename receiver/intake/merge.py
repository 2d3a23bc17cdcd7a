"""Merge a webhook payload into an alert group's state (pure; shared by both stores).

Ordering rule for one alert (fingerprint) — Alertmanager gives no sequence numbers, so each
alert's own timestamps order the observations:

* a later `startsAt` is a newer firing period and always wins (a genuine re-fire: Prometheus
  sets a new `startsAt` when an alert becomes active again);
* within the same `startsAt`, `resolved` is final: a payload showing the alert `firing` with
  the `startsAt` we already saw resolved is an older, reordered delivery and is ignored;
* an observation with an earlier `startsAt` than the one we know is stale and ignored.

The group keeps this per-fingerprint watermark across incidents, so a late duplicate of an
old payload never re-opens a resolved incident. Identical redeliveries change nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from receiver.intake.payload import Alert, Payload

Status = Literal["firing", "resolved"]
Action = Literal["none", "marks", "refresh", "open", "update", "resolve"]
TIERS = ("info", "warning", "critical")


@dataclass(frozen=True)
class Mark:
    """The newest observation of one alert: its firing period and whether it ended."""

    starts_at: float
    status: Status
    ends_at: float | None = None


@dataclass(frozen=True)
class AlertRecord:
    """One alert as stored in an incident."""

    fingerprint: str
    status: Status
    starts_at: float
    ends_at: float | None
    labels: dict[str, str]
    annotations: dict[str, str]
    generator_url: str = ""


@dataclass(frozen=True)
class OpenIncident:
    """The group's incident that is not resolved yet."""

    id: int
    state: Literal["triggered", "acknowledged"]
    severity: str
    alerts: dict[str, AlertRecord] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupState:
    """What the store knows about one (receiver, groupKey)."""

    marks: dict[str, Mark] = field(default_factory=dict)
    incident: OpenIncident | None = None


@dataclass(frozen=True)
class Merge:
    """What a payload changes; `alerts` are the records to upsert into the incident."""

    action: Action
    marks: dict[str, Mark]
    alerts: dict[str, AlertRecord]
    new_firing: tuple[str, ...] = ()
    severity: str = "info"
    all_alerts: dict[str, AlertRecord] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """Return whether anything must be written."""
        return self.action != "none"


def is_newer(seen: Mark, known: Mark | None) -> bool:
    """Return whether observation `seen` supersedes `known` (see the module docstring)."""
    if known is None:
        return True
    if seen.starts_at != known.starts_at:
        return seen.starts_at > known.starts_at
    return known.status == "firing" and seen.status == "resolved"


def record(alert: Alert) -> AlertRecord:
    """Return the stored form of a payload alert."""
    return AlertRecord(
        fingerprint=alert.fingerprint,
        status=alert.status,
        starts_at=alert.starts,
        ends_at=alert.ends if alert.status == "resolved" else None,
        labels=dict(alert.labels),
        annotations=dict(alert.annotations),
        generator_url=alert.generatorURL,
    )


def tier(labels: Mapping[str, str], label: str, default: str) -> str:
    """Return the severity tier (critical, warning, info) of one alert's labels."""
    value = labels.get(label, "").lower()
    return value if value in TIERS else default


def _max_tier(records: Mapping[str, AlertRecord], label: str, default: str, floor: str) -> str:
    tiers = [tier(r.labels, label, default) for r in records.values() if r.status == "firing"]
    return max([floor, *tiers], key=TIERS.index)


def _observe(
    group: GroupState, payload: Payload
) -> tuple[dict[str, Mark], dict[str, AlertRecord], list[str], bool]:
    marks = dict(group.marks)
    updates: dict[str, AlertRecord] = {}
    firing: list[str] = []
    open_alerts = group.incident.alerts if group.incident else {}
    newer_seen = False
    for alert in payload.alerts:
        seen = Mark(alert.starts, alert.status, alert.ends if alert.status == "resolved" else None)
        known = marks.get(alert.fingerprint)
        fresh = record(alert)
        if is_newer(seen, known):
            marks[alert.fingerprint] = seen
            updates[alert.fingerprint] = fresh
            newer_seen = True
            if alert.status == "firing":
                firing.append(alert.fingerprint)
        elif seen == known and open_alerts.get(alert.fingerprint, fresh) != fresh:
            updates[alert.fingerprint] = fresh  # same period, new annotation values: refresh
    return marks, updates, firing, newer_seen


def merge(group: GroupState, payload: Payload, severity_label: str, default: str) -> Merge:
    """Return what `payload` changes in `group` (pure)."""
    marks, updates, firing, newer = _observe(group, payload)
    incident = group.incident
    if incident is None:
        if not firing:
            return Merge("marks" if newer else "none", marks, {})
        alerts = updates
        severity = _max_tier(alerts, severity_label, default, "info")
        return Merge("open", marks, alerts, tuple(firing), severity, alerts)
    if not updates:
        return Merge("none", marks, {}, severity=incident.severity, all_alerts=incident.alerts)
    all_alerts = {**incident.alerts, **updates}
    severity = _max_tier(all_alerts, severity_label, default, incident.severity)
    if all(r.status == "resolved" for r in all_alerts.values()):
        action: Action = "resolve"
    elif firing:
        action = "update"
    else:
        action = "refresh"
    return Merge(action, marks, updates, tuple(firing), severity, all_alerts)
