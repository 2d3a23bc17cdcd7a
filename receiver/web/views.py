"""Shape stored incidents for the page templates (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from receiver.delivery.templates import humanize_duration
from receiver.incident_record import (
    AlertRow,
    IncidentRecord,
    NotificationRow,
    TimelineEntry,
    iso,
)
from receiver.web.render import safe_url

# A plain relative path: no scheme, host, backslash (browsers read `\\` as `/`) or space.
_RELATIVE = re.compile(r"/?[A-Za-z0-9_~-][A-Za-z0-9._~%/-]*(#[A-Za-z0-9._-]*)?")
LIST_VALUE_CHARS = 60  # a label value longer than this is cut on the list (full on the detail)
_IN_HEADLINE = frozenset({"alertname", "severity"})  # the list shows them as title and badge
_ACTORS = {"alertmanager": "Alertmanager", "watchdog": "the watchdog"}


def _ago(moment: float | None, now: float) -> str:
    return "" if moment is None else humanize_duration(now - moment)


def page_link(value: object) -> str:
    """Return a link the page may show: http(s) as is, a relative path on this receiver."""
    text = str(value or "").strip()
    if _RELATIVE.fullmatch(text):
        return "/" + text.lstrip("/")  # `docs/runbooks/X.md` from the rules: served here
    return safe_url(text)


def _title(row: IncidentRecord) -> str:
    labels = {**row.common_labels, **row.group_labels}
    name = labels.get("alertname", "")
    rest = " ".join(v for k, v in sorted(row.group_labels.items()) if k != "alertname")
    return " ".join(part for part in (name, rest) if part) or f"incident {row.id}"


def _cut(value: str, limit: int | None) -> str:
    return value if limit is None or len(value) <= limit else value[: limit - 1] + "…"


def _alert(alert: AlertRow, incident: IncidentRecord, cut: int | None) -> Any:
    annotations = alert.annotations
    over = incident.state == "resolved" or alert.status == "resolved"
    start = alert.starts_at
    end = alert.ends_at or incident.resolved_at
    fired = humanize_duration(end - start) if over and start and end else ""
    return {
        "status": "resolved" if over else alert.status,
        "fired": fired,
        "labels": [
            (k, _cut(str(v), cut))
            for k, v in sorted(alert.labels.items())
            if cut is None or k not in _IN_HEADLINE
        ],
        "summary": annotations.get("summary", ""),
        "description": annotations.get("description", ""),
        "generator_url": safe_url(alert.generator_url),
        "runbook_url": page_link(annotations.get("runbook_url")),
        "starts_at": iso(alert.starts_at),
        "ends_at": iso(alert.ends_at),
        "query": alert.generator_url,
    }


def _step(row: IncidentRecord) -> str:
    # The engine's state holds the step it is on; the column lags it by a timer tick.
    escalation = row.escalation
    if isinstance(escalation, Mapping) and "step" in escalation:
        return str(escalation["step"])
    return str(row.step)


def actor(name: str | None) -> str:
    """Return how the page names who acted (`alertmanager` → `Alertmanager`)."""
    return _ACTORS.get(name or "", name or "someone")


def resolver(row: IncidentRecord) -> str:
    """Return who resolved an incident; intake leaves the name empty when Alertmanager did."""
    return actor(row.resolved_by or "alertmanager")


def state_line(row: IncidentRecord, now: float) -> str:
    """Return e.g. `acknowledged by dana 3m ago`, `resolved by Alertmanager after 42m`."""
    state = row.state
    if state == "acknowledged":
        return f"acknowledged by {actor(row.acked_by)} {_ago(row.acked_at, now)} ago"
    if state == "resolved":
        start, end = row.opened_at, row.resolved_at
        took = f" after {humanize_duration(end - start)}" if start and end else ""
        return f"resolved by {resolver(row)}{took}"
    return f"triggered {_ago(row.opened_at, now)} ago"


def notified(
    notifications: Sequence[NotificationRow], names: Mapping[str, str] | None = None
) -> list[str]:
    """Return who was actually notified and how: `Alice via sms, email`, `channel via chat`."""
    ways: dict[str, list[str]] = {}
    for n in notifications:
        if n.status != "sent" or n.kind == "digest":
            continue
        person = n.recipient
        whom = (names or {}).get(person, person) if person else "channel"
        if n.channel not in ways.setdefault(whom, []):
            ways[whom].append(n.channel)
    return [f"{whom} via {', '.join(channels)}" for whom, channels in ways.items()]


def incident_view(
    row: IncidentRecord,
    now: float,
    cut: int | None = None,
    names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Return what the page shows of one incident; `cut` shortens label values (the list)."""
    annotations = row.common_annotations
    alerts = [_alert(a, row, cut) for a in row.alerts or ()]
    runbook = page_link(annotations.get("runbook_url")) or next(
        (a["runbook_url"] for a in alerts if a["runbook_url"]), ""
    )
    count = len(alerts) if row.alert_count is None else row.alert_count
    description = annotations.get("description", "")
    if not description and count == 1 and alerts:
        description = alerts[0]["description"]
    return {
        "id": row.id,
        "state": row.state,
        "state_line": state_line(row, now),
        "severity": row.severity,
        "title": _title(row),
        "summary": annotations.get("summary", ""),
        "description": description,
        "age": _ago(row.opened_at, now),
        "opened_at": iso(row.opened_at),
        "resolved_at": iso(row.resolved_at),
        "notified": notified(row.notifications or (), names),
        "step": _step(row),
        "runbook_url": runbook,
        "alerts": alerts,
        "alert_count": count,
        "more": max(0, count - len(alerts) - row.alert_offset),
        "events": timeline(row),
    }


def timeline(row: IncidentRecord) -> list[dict[str, Any]]:
    """Return the incident's events, with its opening and resolution even where none was logged."""
    events = list(row.events or ())
    kinds = {e.kind for e in events}
    if not kinds & {"fired", "opened"}:
        events.append(TimelineEntry(row.opened_at, "opened", "", ""))
    if row.resolved_at and "resolved" not in kinds:
        # Intake leaves the name empty when Alertmanager resolved it (see `resolver`).
        by = row.resolved_by or "alertmanager"
        events.append(TimelineEntry(row.resolved_at, "resolved", by, ""))
    return [_event(e) for e in sorted(events, key=lambda e: e.at)]


def _event(event: TimelineEntry) -> dict[str, Any]:
    return {
        "at": iso(event.at),
        "kind": event.kind,
        "actor": actor(event.actor) if event.actor else "",
        "detail": event.detail,
    }


def split(
    open_rows: Sequence[IncidentRecord],
    done_rows: Sequence[IncidentRecord],
    now: float,
    names: Mapping[str, str] | None = None,
) -> tuple[list[Any], list[Any]]:
    """Return the list's views, in the order read (triage order, newest resolved first)."""
    open_ = [incident_view(r, now, LIST_VALUE_CHARS, names) for r in open_rows]
    done = [incident_view(r, now, LIST_VALUE_CHARS, names) for r in done_rows]
    return open_, done
