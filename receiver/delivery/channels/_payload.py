"""Shapes shared by channels: the documented JSON form of a notification, colours, links."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from receiver.delivery.channels.base import AlertView, Notification
from receiver.delivery.templates import headline, runbook_link, safe_link, top_labels

PAYLOAD_VERSION = "1"

_COLOURS = {"critical": "#E01E5A", "warning": "#ECB22E", "info": "#1D9BD1"}
_RESOLVED = "#2EB886"
_ACKNOWLEDGED = "#7A7A7A"
_OTHER = "#1D9BD1"


def colour(notification: Notification) -> str:
    """Return a hex colour: green when resolved, grey when acknowledged, else by severity."""
    if notification.kind == "resolved" or notification.incident_status == "resolved":
        return _RESOLVED
    if notification.kind == "acknowledged":
        return _ACKNOWLEDGED
    return _COLOURS.get(notification.severity, _OTHER)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _alert(alert: AlertView) -> dict[str, Any]:
    return {
        "fingerprint": alert.fingerprint,
        "status": alert.status,
        "labels": alert.labels,
        "annotations": alert.annotations,
        "starts_at": _iso(alert.starts_at),
        "ends_at": _iso(alert.ends_at),
        "generator_url": alert.generator_url,
    }


def links(notification: Notification) -> dict[str, str]:
    """Return the non-empty links of a notification, keyed by role."""
    candidates = {
        "incident": notification.incident_url,
        "ack": notification.ack_url,
        "resolve": notification.resolve_url,
        "runbook": runbook_link(notification),
        "alertmanager": notification.external_url,
    }
    # Every role goes into chat markup as a link: only http(s), nothing that ends the link early.
    return {role: safe_link(url) for role, url in candidates.items() if safe_link(url)}


def notification_payload(notification: Notification, text: str) -> dict[str, Any]:
    """Return the documented JSON shape (version 1) of a notification."""
    n = notification
    return {
        "version": PAYLOAD_VERSION,
        "id": n.id,
        "kind": n.kind,
        "incident": {"id": n.incident_id, "status": n.incident_status},
        "severity": n.severity,
        "title": n.title,
        "text": text,
        "group_labels": n.group_labels,
        "common_labels": n.common_labels,
        "common_annotations": n.common_annotations,
        "alerts": [_alert(a) for a in n.alerts],
        "truncated_alerts": n.truncated_alerts,
        "recipient": asdict(n.recipient) if n.recipient else None,
        "escalation_step": n.escalation_step,
        "reply_code": n.reply_code,
        "acted_by": n.acted_by,
        "links": links(n),
    }


def facts(notification: Notification) -> list[tuple[str, str]]:
    """Return the key/value facts chat messages show: severity, status, count, top labels."""
    n = notification
    rows = [
        ("severity", n.severity),
        ("status", headline(n)),
        ("alerts", str(len(n.alerts) + n.truncated_alerts)),
    ]
    return rows + top_labels(n)
