"""Shape stored incidents for the page templates (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from receiver.templates import humanize_duration
from receiver.web.render import safe_url

# A plain relative path: no scheme, host, backslash (browsers read `\\` as `/`) or space.
_RELATIVE = re.compile(r"/?[A-Za-z0-9_~-][A-Za-z0-9._~%/-]*(#[A-Za-z0-9._-]*)?")
LIST_VALUE_CHARS = 60  # a label value longer than this is cut on the list (full on the detail)
_IN_HEADLINE = frozenset({"alertname", "severity"})  # the list shows them as title and badge
_ACTORS = {"alertmanager": "Alertmanager", "watchdog": "the watchdog"}


def _epoch(moment: str | None) -> float | None:
    return datetime.fromisoformat(moment).timestamp() if moment else None


def _ago(moment: str | None, now: float) -> str:
    at = _epoch(moment)
    return "" if at is None else humanize_duration(now - at)


def page_link(value: object) -> str:
    """Return a link the page may show: http(s) as is, a relative path on this receiver."""
    text = str(value or "").strip()
    if _RELATIVE.fullmatch(text):
        return "/" + text.lstrip("/")  # `docs/runbooks/X.md` from the rules: served here
    return safe_url(text)


def _title(row: Mapping[str, Any]) -> str:
    labels = {**row.get("common_labels", {}), **row.get("group_labels", {})}
    name = labels.get("alertname", "")
    rest = " ".join(v for k, v in sorted(row.get("group_labels", {}).items()) if k != "alertname")
    return " ".join(part for part in (name, rest) if part) or f"incident {row['id']}"


def _cut(value: str, limit: int | None) -> str:
    return value if limit is None or len(value) <= limit else value[: limit - 1] + "…"


def _alert(alert: Mapping[str, Any], incident: Mapping[str, Any], cut: int | None) -> Any:
    annotations = alert.get("annotations", {})
    over = incident["state"] == "resolved" or alert.get("status") == "resolved"
    start = _epoch(alert.get("starts_at"))
    end = _epoch(alert.get("ends_at")) or _epoch(incident.get("resolved_at"))
    fired = humanize_duration(end - start) if over and start and end else ""
    return {
        "status": "resolved" if over else alert.get("status", ""),
        "fired": fired,
        "labels": [
            (k, _cut(str(v), cut))
            for k, v in sorted(alert.get("labels", {}).items())
            if cut is None or k not in _IN_HEADLINE
        ],
        "summary": annotations.get("summary", ""),
        "description": annotations.get("description", ""),
        "generator_url": safe_url(alert.get("generator_url")),
        "runbook_url": page_link(annotations.get("runbook_url")),
        "starts_at": alert.get("starts_at"),
        "ends_at": alert.get("ends_at"),
        "query": alert.get("generator_url", ""),
    }


def _step(row: Mapping[str, Any]) -> str:
    escalation = row.get("escalation")
    if isinstance(escalation, Mapping) and "step" in escalation:
        return str(escalation["step"])
    return str(row.get("step", ""))


def actor(name: str | None) -> str:
    """Return how the page names who acted (`alertmanager` → `Alertmanager`)."""
    return _ACTORS.get(name or "", name or "someone")


def resolver(row: Mapping[str, Any]) -> str:
    """Return who resolved an incident; intake leaves the name empty when Alertmanager did."""
    return actor(row.get("resolved_by") or "alertmanager")


def state_line(row: Mapping[str, Any], now: float) -> str:
    """Return e.g. `acknowledged by dana 3m ago`, `resolved by Alertmanager after 42m`."""
    state = row["state"]
    if state == "acknowledged":
        return f"acknowledged by {actor(row.get('acked_by'))} {_ago(row.get('acked_at'), now)} ago"
    if state == "resolved":
        start, end = _epoch(row.get("opened_at")), _epoch(row.get("resolved_at"))
        took = f" after {humanize_duration(end - start)}" if start and end else ""
        return f"resolved by {resolver(row)}{took}"
    return f"triggered {_ago(row.get('opened_at'), now)} ago"


def notified(
    notifications: Sequence[Mapping[str, Any]], names: Mapping[str, str] | None = None
) -> list[str]:
    """Return who was actually notified and how: `Alice via sms, email`, `channel via chat`."""
    ways: dict[str, list[str]] = {}
    for n in notifications:
        if n.get("status") != "sent" or n.get("kind") == "digest":
            continue
        person = n.get("recipient")
        whom = (names or {}).get(person, person) if person else "channel"
        if n["channel"] not in ways.setdefault(whom, []):
            ways[whom].append(n["channel"])
    return [f"{whom} via {', '.join(channels)}" for whom, channels in ways.items()]


def incident_view(
    row: Mapping[str, Any],
    now: float,
    cut: int | None = None,
    names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Return what the page shows of one incident; `cut` shortens label values (the list)."""
    annotations = row.get("common_annotations", {})
    alerts = [_alert(a, row, cut) for a in row.get("alerts", [])]
    runbook = page_link(annotations.get("runbook_url")) or next(
        (a["runbook_url"] for a in alerts if a["runbook_url"]), ""
    )
    count = row.get("alert_count", len(alerts))
    description = annotations.get("description", "")
    if not description and count == 1 and alerts:
        description = alerts[0]["description"]
    return {
        "id": row["id"],
        "state": row["state"],
        "state_line": state_line(row, now),
        "severity": row.get("severity", ""),
        "title": _title(row),
        "summary": annotations.get("summary", ""),
        "description": description,
        "age": _ago(row.get("opened_at"), now),
        "opened_at": row.get("opened_at"),
        "resolved_at": row.get("resolved_at"),
        "notified": notified(row.get("notifications", []), names),
        "step": _step(row),
        "runbook_url": runbook,
        "alerts": alerts,
        "alert_count": count,
        "more": max(0, count - len(alerts) - row.get("alert_offset", 0)),
        "events": timeline(row),
    }


def timeline(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return the incident's events, with its opening and resolution even where none was logged."""
    events = [_event(e) for e in row.get("events", [])]
    kinds = {e["kind"] for e in events}
    if row.get("opened_at") and not kinds & {"fired", "opened"}:
        events.append({"at": row["opened_at"], "kind": "opened", "actor": "", "detail": ""})
    if row.get("resolved_at") and "resolved" not in kinds:
        who = resolver(row)
        events.append({"at": row["resolved_at"], "kind": "resolved", "actor": who, "detail": ""})
    return sorted(events, key=lambda e: _epoch(e["at"]) or 0.0)


def _event(event: Mapping[str, Any]) -> dict[str, Any]:
    known = ("at", "kind", "actor", "detail")
    extra = {k: v for k, v in event.items() if k not in (*known, "id", "incident_id")}
    detail = event.get("detail", "")
    if not isinstance(detail, str):
        detail = str(detail)
    if extra:
        detail = " ".join([detail, *(f"{k}={v}" for k, v in sorted(extra.items()))]).strip()
    return {
        "at": event.get("at"),
        "kind": event.get("kind", ""),
        "actor": actor(event.get("actor")) if event.get("actor") else "",
        "detail": detail,
    }


def split(
    open_rows: Sequence[Mapping[str, Any]],
    done_rows: Sequence[Mapping[str, Any]],
    now: float,
    names: Mapping[str, str] | None = None,
) -> tuple[list[Any], list[Any]]:
    """Return the list's views, in the order read (triage order, newest resolved first)."""
    open_ = [incident_view(r, now, LIST_VALUE_CHARS, names) for r in open_rows]
    done = [incident_view(r, now, LIST_VALUE_CHARS, names) for r in done_rows]
    return open_, done
