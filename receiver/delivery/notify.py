"""Turn an incident change into outbox entries, and outbox bodies back into Notifications (pure).

Severity tiers: critical and warning notify at once (escalation comes with policies); info never
pages and is only stored for the daily digest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from receiver.delivery.channels import AlertView, Notification, Recipient
from receiver.delivery.channels.base import NotificationKind
from receiver.intake.merge import AlertRecord, Merge

PAGING_TIERS = frozenset({"critical", "warning"})
# (incident id, person id) → ack_url, resolve_url, reply_code; see WebState.link_fields
LinkFields = Callable[[int, str | None], Mapping[str, str]]
_NO_ACTIONS = frozenset({"resolved", "digest"})  # kinds that ask nobody to act
_ACTION_FIELDS = (
    "ack_url",
    "resolve_url",
    "reply_code",
    "chat_callback_url",
    "chat_ack_token",
    "chat_resolve_token",
)


@dataclass(frozen=True)
class IncidentInfo:
    """The incident fields a message shows.

    Built by intake and the escalation worker from what they are writing, not read back from
    the store; readers use `receiver.incident_record.IncidentRecord`, which holds these fields.
    """

    id: int
    state: str
    severity: str
    group_labels: dict[str, str]
    common_labels: dict[str, str]
    common_annotations: dict[str, str]
    truncated_alerts: int
    external_url: str
    channels: tuple[str, ...]
    people: tuple[str, ...]
    paged: bool


@dataclass(frozen=True)
class Planned:
    """One outbox row to write: a message for one channel (and maybe one person)."""

    channel: str
    kind: NotificationKind
    recipient: str | None
    body: dict[str, Any]
    not_before: float | None = None  # held back until then (quiet hours); None: due now


def title(
    status: str, alerts: Sequence[AlertRecord], group: Mapping[str, str], common: Mapping[str, str]
) -> str:
    """Return Alertmanager's default title, e.g. `[FIRING:2] QueueBacklog (ops warning)`."""
    firing = sum(1 for a in alerts if a.status == "firing")
    head = f"[{status.upper()}:{firing}]" if status == "firing" else f"[{status.upper()}]"
    values = " ".join(v for _, v in sorted(group.items()))
    extra = [v for k, v in sorted(common.items()) if k not in group]
    return f"{head} {values}" + (f" ({' '.join(extra)})" if extra else "")


def kind_for(merge: Merge, incident: IncidentInfo) -> NotificationKind | None:
    """Return which message an incident change calls for, if any."""
    if merge.severity not in PAGING_TIERS:
        return None
    if merge.action == "resolve":
        return "resolved" if incident.paged else None
    if merge.action == "open" or (merge.new_firing and not incident.paged):
        return "firing"
    if merge.action == "update":
        return "updated"
    return None


def _alert_json(alert: AlertRecord) -> dict[str, Any]:
    # A shallow copy: dataclasses.asdict deep-copies every label dict and dominated intake time.
    return dict(vars(alert))


def body(
    kind: NotificationKind,
    incident: IncidentInfo,
    alerts: Sequence[AlertRecord],
    state: str,
    incident_url: str,
) -> dict[str, Any]:
    """Return the stored message body (a Notification without id, incident id and recipient)."""
    status = "resolved" if state == "resolved" else "firing"
    return {
        "kind": kind,
        "incident_status": state,
        "severity": incident.severity,
        "title": title(status, alerts, incident.group_labels, incident.common_labels),
        "group_labels": incident.group_labels,
        "common_labels": incident.common_labels,
        "common_annotations": incident.common_annotations,
        "alerts": [_alert_json(a) for a in alerts],
        "truncated_alerts": incident.truncated_alerts,
        "external_url": incident.external_url,
        "incident_url": incident_url,
    }


def plan(kind: NotificationKind, incident: IncidentInfo, message: dict[str, Any]) -> list[Planned]:
    """Return one entry per channel, or per (channel, person) when the route names people."""
    recipients: Sequence[str | None] = incident.people or (None,)
    return [
        Planned(channel, kind, person, message)
        for channel in incident.channels
        for person in recipients
    ]


def _time(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def notification(
    row_id: int,
    incident_id: int,
    body: Mapping[str, Any],
    recipient: Recipient | None,
    links: LinkFields | None = None,
) -> Notification:
    """Rebuild the Notification a channel sends from a stored outbox body."""
    extra = dict(links(incident_id, recipient.id if recipient else None)) if links else {}
    if body["kind"] in _NO_ACTIONS:
        for key in _ACTION_FIELDS:
            extra.pop(key, None)
    if body["kind"] == "acknowledged" or body["incident_status"] != "triggered":
        # Acknowledging applies only to a triggered incident; resolving still applies.
        extra.pop("ack_url", None)
    alerts = tuple(
        AlertView(
            fingerprint=a["fingerprint"],
            status=a["status"],
            labels=a["labels"],
            annotations=a["annotations"],
            starts_at=_time(a["starts_at"]) or datetime.fromtimestamp(0, UTC),
            ends_at=_time(a["ends_at"]),
            generator_url=a["generator_url"],
        )
        for a in body["alerts"]
    )
    return Notification(
        id=str(row_id),
        kind=body["kind"],
        incident_id=incident_id,
        incident_status=body["incident_status"],
        severity=body["severity"],
        title=body["title"],
        group_labels=body["group_labels"],
        common_labels=body["common_labels"],
        common_annotations=body["common_annotations"],
        alerts=alerts,
        truncated_alerts=body["truncated_alerts"],
        recipient=recipient,
        external_url=body["external_url"],
        incident_url=body["incident_url"],
        receiver_url=extra.get("receiver_url", ""),
        ack_url=extra.get("ack_url", ""),
        resolve_url=extra.get("resolve_url", ""),
        reply_code=extra.get("reply_code", ""),
        chat_callback_url=extra.get("chat_callback_url", ""),
        chat_ack_token=extra.get("chat_ack_token", ""),
        chat_resolve_token=extra.get("chat_resolve_token", ""),
        # Written by the escalation worker; rows queued by the core path lack them.
        escalation_step=body.get("escalation_step", 0),
        acted_by=body.get("acted_by", ""),
        thread=body.get("thread", {}),
    )
