"""Shape stored incidents for the page templates (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from receiver.web.render import age, safe_url


def _title(row: Mapping[str, Any]) -> str:
    labels = {**row.get("common_labels", {}), **row.get("group_labels", {})}
    name = labels.get("alertname", "")
    rest = " ".join(v for k, v in sorted(row.get("group_labels", {}).items()) if k != "alertname")
    return " ".join(part for part in (name, rest) if part) or f"incident {row['id']}"


def _alert(alert: Mapping[str, Any]) -> dict[str, Any]:
    annotations = alert.get("annotations", {})
    return {
        "status": alert.get("status", ""),
        "labels": sorted(alert.get("labels", {}).items()),
        "summary": annotations.get("summary", ""),
        "description": annotations.get("description", ""),
        "generator_url": safe_url(alert.get("generator_url")),
        "runbook_url": safe_url(annotations.get("runbook_url")),
    }


def _step(row: Mapping[str, Any]) -> str:
    escalation = row.get("escalation")
    if isinstance(escalation, Mapping) and "step" in escalation:
        return str(escalation["step"])
    return str(row.get("step", ""))


def incident_view(row: Mapping[str, Any], now: float) -> dict[str, Any]:
    """Return what the page shows of one incident (with alerts and events if loaded)."""
    annotations = row.get("common_annotations", {})
    alerts = [_alert(a) for a in row.get("alerts", [])]
    runbook = safe_url(annotations.get("runbook_url")) or next(
        (a["runbook_url"] for a in alerts if a["runbook_url"]), ""
    )
    return {
        "id": row["id"],
        "state": row["state"],
        "severity": row.get("severity", ""),
        "title": _title(row),
        "summary": annotations.get("summary", ""),
        "age": age(row.get("opened_at"), now),
        "opened_at": row.get("opened_at"),
        "resolved_at": row.get("resolved_at"),
        "people": list(row.get("people", [])),
        "step": _step(row),
        "acked_by": row.get("acked_by") or "",
        "resolved_by": row.get("resolved_by") or "",
        "runbook_url": runbook,
        "alerts": alerts,
        "events": [_event(e) for e in row.get("events", [])],
    }


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
        "actor": event.get("actor", ""),
        "detail": detail,
    }


def split(
    rows: Sequence[Mapping[str, Any]], now: float, recent: float
) -> tuple[list[Any], list[Any]]:
    """Return (open, recently resolved) views, newest first."""
    views = [incident_view(r, now) for r in rows]
    open_ = [v for v in views if v["state"] != "resolved"]
    done = [v for v in views if v["state"] == "resolved" and _within(v["resolved_at"], now, recent)]
    return open_, done


def _within(moment: str | None, now: float, window: float) -> bool:
    return moment is not None and now - datetime.fromisoformat(moment).timestamp() <= window
