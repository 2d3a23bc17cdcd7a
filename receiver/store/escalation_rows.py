"""Escalation statements and their row and parameter helpers (engine answers: escalation.feed)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from receiver.delivery.notify import Planned
from receiver.escalation.plan import (
    Message,
    TimelineEvent,
    Update,
)
from receiver.store import rows

Row = Mapping[str, Any]

UPDATE_INCIDENT = """
UPDATE incidents SET state = ?, escalation = ?, next_step_at = ?, timer_version = ?,
    acked_by = ?, acked_at = ?, paged = (paged OR ?), resolved_at = COALESCE(resolved_at, ?),
    resolved_by = COALESCE(resolved_by, ?), updated_at = ?
WHERE id = ?
"""
SET_TIMER = "UPDATE incidents SET next_step_at = ?, timer_version = ? WHERE id = ?"
INSERT_EVENT = (
    "INSERT INTO incident_events (incident_id, at, kind, actor, detail) VALUES (?, ?, ?, ?, ?)"
)
DUE = (
    "SELECT * FROM incidents WHERE next_step_at <= ? AND state != 'resolved' "
    "ORDER BY next_step_at, id LIMIT ?{skip_locked}"
)
THREADS = "SELECT channel, thread FROM outbox WHERE incident_id = ? AND thread != '{}'"
NEXT_TIMER = "SELECT MIN(next_step_at) AS t FROM incidents WHERE next_step_at IS NOT NULL"
OVERDUE = (
    "SELECT COUNT(*) AS n, MIN(next_step_at) AS oldest FROM incidents "
    "WHERE next_step_at < ? AND state != 'resolved'"
)
CLOSE_GROUP = "UPDATE alert_groups SET open_incident_id = NULL WHERE open_incident_id = ?"
TIMELINE = "SELECT at, kind, actor, detail FROM incident_events WHERE incident_id = ? ORDER BY id"
DELIVERY_LOG = (
    "SELECT d.at, d.outcome, d.detail, o.channel, o.kind, o.recipient FROM deliveries d "
    "JOIN outbox o ON o.id = d.outbox_id WHERE o.incident_id = ? ORDER BY d.id"
)


def acked_at(row: Row | None, update: Update, now: float) -> float | None:
    """Return the acked_at column: kept while the same ack stands, now for a new one."""
    if update.state != "acknowledged":
        return None
    if row is not None and row["state"] == "acknowledged" and row["acked_by"] == update.acked_by:
        return row["acked_at"]  # type: ignore[no-any-return]
    return now


def update_params(
    row: Row | None, incident_id: int, update: Update, now: float, actor: str
) -> tuple[Any, ...]:
    """Return UPDATE_INCIDENT's parameters."""
    resolved = update.state == "resolved"
    return (
        update.state,
        update.escalation,
        update.next_step_at,
        update.timer_version,
        update.acked_by,
        acked_at(row, update, now),
        update.paged,
        now if resolved else None,
        actor if resolved else None,
        now,
        incident_id,
    )


M = TypeVar("M", Message, Planned)


def with_threads(messages: Sequence[M], found: Sequence[Row]) -> list[M]:
    """Attach the chat thread refs earlier deliveries returned, per channel, to follow-ups."""
    threads: dict[str, dict[str, str]] = {}
    for item in found:
        threads.setdefault(item["channel"], {}).update(json.loads(item["thread"]))
    out = []
    for message in messages:
        ref = threads.get(message.channel)
        if ref and message.kind != "firing":
            message = replace(message, body={**message.body, "thread": ref})
        out.append(message)
    return out


def event_params(
    incident_id: int, events: Sequence[TimelineEvent], now: float
) -> list[tuple[Any, ...]]:
    """Return INSERT_EVENT parameters for timeline entries."""
    return [(incident_id, now, e.kind, e.actor, e.detail) for e in events]


def timeline(events: Sequence[Row], deliveries: Sequence[Row]) -> list[dict[str, Any]]:
    """Merge timeline events and delivery results into one list ordered by time."""
    merged = [dict(e) for e in events]
    for d in deliveries:
        whom = f" → {d['recipient']}" if d["recipient"] else ""
        detail = f"{d['kind']} via {d['channel']}{whom}: {d['outcome']}"
        merged.append(
            {"at": d["at"], "kind": "delivery", "actor": "", "detail": _join(detail, d["detail"])}
        )
    merged.sort(key=lambda e: e["at"])
    return [{**e, "at": rows.iso(e["at"])} for e in merged]


def _join(head: str, tail: str) -> str:
    return f"{head} ({tail})" if tail else head
