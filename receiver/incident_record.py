"""The incident as read: one typed model from the store to the API and the pages.

The store's readers (`Store.incidents`, `Store.incident`, `Store.timeline`) and the pages'
bounded reads (`receiver.web.reads`) build these records from rows of either backend; the
API serialises them with `to_json()`, which is the API's contract (receiver/openapi.yaml), and
the pages and the silencer read their attributes.

The write side is `IncidentWrite` (what intake stores); `IncidentInfo`/`IncidentView` are what
messages show, built from intake's merge rather than read back from the store.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Row = Mapping[str, Any]
Labels = dict[str, str]


def iso(value: float | None) -> str | None:
    """Format epoch seconds as RFC 3339 UTC, as the API shows times."""
    # Not imported from receiver.store.rows: the store's modules import this one.
    if value is None:
        return None
    return datetime.fromtimestamp(value, UTC).isoformat().replace("+00:00", "Z")


def _decoded(value: Any) -> Any:
    # SQLite stores JSON as TEXT; a reader may also hand over an already decoded value.
    return json.loads(value) if isinstance(value, str) else value


def _epoch(value: Any) -> float | None:
    # Raw rows carry epoch seconds; rows the query modules already shaped for the API carry
    # RFC 3339 text. Both read back to the same epoch, so `iso()` gives the same text again.
    if value is None:
        return None
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return float(value)


def _at(value: Any) -> float:
    moment = _epoch(value)
    if moment is None:
        raise ValueError("expected a time, got NULL")
    return moment


def _labels(value: Any) -> Labels:
    return dict(_decoded(value) or {})


def _names(value: Any) -> tuple[str, ...]:
    return tuple(_decoded(value) or ())


@dataclass(frozen=True)
class AlertRow:
    """One alert of an incident (an `incident_alerts` row)."""

    incident_id: int
    fingerprint: str
    status: str
    starts_at: float
    ends_at: float | None
    labels: Labels
    annotations: Labels
    generator_url: str
    updated_at: float

    @classmethod
    def from_row(cls, row: Row) -> AlertRow:
        """Build from a row of either backend."""
        return cls(
            incident_id=int(row["incident_id"]),
            fingerprint=row["fingerprint"],
            status=row["status"],
            starts_at=_at(row["starts_at"]),
            ends_at=_epoch(row["ends_at"]),
            labels=_labels(row["labels"]),
            annotations=_labels(row["annotations"]),
            generator_url=row["generator_url"] or "",
            updated_at=_at(row["updated_at"]),
        )

    def to_json(self) -> dict[str, Any]:
        """Return the API's JSON for the alert."""
        return {
            "incident_id": self.incident_id,
            "fingerprint": self.fingerprint,
            "status": self.status,
            "starts_at": iso(self.starts_at),
            "ends_at": iso(self.ends_at),
            "labels": self.labels,
            "annotations": self.annotations,
            "generator_url": self.generator_url,
            "updated_at": iso(self.updated_at),
        }


@dataclass(frozen=True)
class NotificationRow:
    """One message queued for an incident (an outbox row as shown, not its body).

    The pages read only who was notified how; the other columns default for their rows.
    """

    channel: str
    kind: str
    recipient: str | None
    status: str
    id: int | None = None
    attempts: int = 0
    created_at: float | None = None
    sent_at: float | None = None
    finished_at: float | None = None
    last_error: str = ""
    provider_id: str = ""
    fallback_of: int | None = None

    @classmethod
    def from_row(cls, row: Row) -> NotificationRow:
        """Build from a row of either backend (all columns, or the pages' few)."""
        return cls(
            channel=row["channel"],
            kind=row["kind"],
            recipient=row["recipient"],
            status=row["status"],
            id=row.get("id"),
            attempts=int(row.get("attempts") or 0),
            created_at=_epoch(row.get("created_at")),
            sent_at=_epoch(row.get("sent_at")),
            finished_at=_epoch(row.get("finished_at")),
            last_error=row.get("last_error") or "",
            provider_id=row.get("provider_id") or "",
            fallback_of=row.get("fallback_of"),
        )

    def to_json(self) -> dict[str, Any]:
        """Return the API's JSON for the notification."""
        return {
            "id": self.id,
            "channel": self.channel,
            "kind": self.kind,
            "recipient": self.recipient,
            "status": self.status,
            "attempts": self.attempts,
            "created_at": iso(self.created_at),
            "sent_at": iso(self.sent_at),
            "finished_at": iso(self.finished_at),
            "last_error": self.last_error,
            "provider_id": self.provider_id,
            "fallback_of": self.fallback_of,
        }


@dataclass(frozen=True)
class DeliveryRow:
    """One delivery attempt of one of the incident's messages (a `deliveries` row)."""

    id: int
    outbox_id: int
    attempt: int
    at: float
    outcome: str
    detail: str

    @classmethod
    def from_row(cls, row: Row) -> DeliveryRow:
        """Build from a row of either backend."""
        return cls(
            id=int(row["id"]),
            outbox_id=int(row["outbox_id"]),
            attempt=int(row["attempt"]),
            at=_at(row["at"]),
            outcome=row["outcome"],
            detail=row["detail"] or "",
        )

    def to_json(self) -> dict[str, Any]:
        """Return the API's JSON for the attempt."""
        return {
            "id": self.id,
            "outbox_id": self.outbox_id,
            "attempt": self.attempt,
            "at": iso(self.at),
            "outcome": self.outcome,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class TimelineEntry:
    """One entry of the incident's timeline: an event, or a delivery result (`delivery`)."""

    at: float
    kind: str
    actor: str
    detail: str

    @classmethod
    def from_row(cls, row: Row) -> TimelineEntry:
        """Build from a timeline entry (times as epoch seconds or RFC 3339)."""
        return cls(_at(row["at"]), row["kind"], row["actor"] or "", row["detail"] or "")

    def to_json(self) -> dict[str, Any]:
        """Return the API's JSON for the entry."""
        return {"at": iso(self.at), "kind": self.kind, "actor": self.actor, "detail": self.detail}


@dataclass(frozen=True)
class IncidentRecord:
    """An incident as read, with the parts a reader asked for.

    `alerts`, `notifications`, `deliveries` and `events` are None when not read (the list);
    the pages read a bounded page of alerts, so `alert_count`, `firing_count` and
    `alert_offset` say where that page sits among all of them. Columns the pages do not
    select keep their defaults there.
    """

    id: int
    state: str
    severity: str
    group_labels: Labels
    common_labels: Labels
    common_annotations: Labels
    opened_at: float
    group_id: int | None = None
    receiver: str = ""
    group_key: str = ""
    external_url: str = ""
    truncated_alerts: int = 0
    routes: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    people: tuple[str, ...] = ()
    policy: str | None = None
    digest: bool = False
    digested_at: float | None = None
    paged: bool = False
    updated_at: float | None = None
    resolved_at: float | None = None
    resolved_by: str | None = None
    step: int = 0
    next_step_at: float | None = None
    acked_at: float | None = None
    acked_by: str | None = None
    version: int = 0
    escalation: dict[str, Any] | None = None
    timer_version: int | None = None
    alerts: tuple[AlertRow, ...] | None = None
    notifications: tuple[NotificationRow, ...] | None = None
    deliveries: tuple[DeliveryRow, ...] | None = None
    events: tuple[TimelineEntry, ...] | None = None
    alert_count: int | None = None
    firing_count: int | None = None
    alert_offset: int = 0

    @classmethod
    def from_row(cls, row: Row) -> IncidentRecord:
        """Build from an `incidents` row of either backend, with any detail parts it holds.

        JSON columns may be text (SQLite) or decoded, flags 0/1 or booleans, times epoch
        seconds or RFC 3339; columns the row lacks keep their defaults.
        """
        get = row.get
        alerts, notices, deliveries, events = (
            get("alerts"),
            get("notifications"),
            get("deliveries"),
            get("events"),
        )
        return cls(
            id=int(row["id"]),
            state=row["state"],
            severity=row["severity"],
            group_labels=_labels(get("group_labels")),
            common_labels=_labels(get("common_labels")),
            common_annotations=_labels(get("common_annotations")),
            opened_at=_at(row["opened_at"]),
            group_id=get("group_id"),
            receiver=get("receiver") or "",
            group_key=get("group_key") or "",
            external_url=get("external_url") or "",
            truncated_alerts=int(get("truncated_alerts") or 0),
            routes=_names(get("routes")),
            channels=_names(get("channels")),
            people=_names(get("people")),
            policy=get("policy"),
            digest=bool(get("digest")),
            digested_at=_epoch(get("digested_at")),
            paged=bool(get("paged")),
            updated_at=_epoch(get("updated_at")),
            resolved_at=_epoch(get("resolved_at")),
            resolved_by=get("resolved_by"),
            step=int(get("step") or 0),
            next_step_at=_epoch(get("next_step_at")),
            acked_at=_epoch(get("acked_at")),
            acked_by=get("acked_by"),
            version=int(get("version") or 0),
            escalation=_decoded(get("escalation")),
            timer_version=get("timer_version"),
            alert_count=get("alert_count"),
            firing_count=get("firing_count"),
            alert_offset=int(get("alert_offset") or 0),
            alerts=None if alerts is None else tuple(AlertRow.from_row(r) for r in alerts),
            notifications=None
            if notices is None
            else tuple(NotificationRow.from_row(r) for r in notices),
            deliveries=None
            if deliveries is None
            else tuple(DeliveryRow.from_row(r) for r in deliveries),
            events=None if events is None else tuple(TimelineEntry.from_row(r) for r in events),
        )

    def to_json(self) -> dict[str, Any]:
        """Return the API's JSON for the incident (and the detail parts that were read)."""
        out: dict[str, Any] = {
            "id": self.id,
            "group_id": self.group_id,
            "receiver": self.receiver,
            "group_key": self.group_key,
            "state": self.state,
            "severity": self.severity,
            "group_labels": self.group_labels,
            "common_labels": self.common_labels,
            "common_annotations": self.common_annotations,
            "external_url": self.external_url,
            "truncated_alerts": self.truncated_alerts,
            "routes": list(self.routes),
            "channels": list(self.channels),
            "people": list(self.people),
            "policy": self.policy,
            "digest": self.digest,
            "digested_at": iso(self.digested_at),
            "paged": self.paged,
            "opened_at": iso(self.opened_at),
            "updated_at": iso(self.updated_at),
            "resolved_at": iso(self.resolved_at),
            "resolved_by": self.resolved_by,
            "step": self.step,
            "next_step_at": iso(self.next_step_at),
            "acked_at": iso(self.acked_at),
            "acked_by": self.acked_by,
            "version": self.version,
            "escalation": self.escalation,
            "timer_version": self.timer_version,
        }
        for key, part in (
            ("alerts", self.alerts),
            ("notifications", self.notifications),
            ("deliveries", self.deliveries),
            ("events", self.events),
        ):
            if part is not None:
                out[key] = [p.to_json() for p in part]
        return out
