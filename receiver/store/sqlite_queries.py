"""SQLite statements and read-only queries (run on the store's writer thread)."""

from __future__ import annotations

import sqlite3
from typing import Any

from receiver.store import rows
from receiver.store.base import Stats

SELECT_GROUP = (
    "SELECT id, marks, open_incident_id FROM alert_groups WHERE receiver = ? AND group_key = ?"
)
INSERT_GROUP = (
    "INSERT INTO alert_groups (receiver, group_key) VALUES (?, ?) "
    "RETURNING id, marks, open_incident_id"
)
INSERT_INCIDENT = """
INSERT INTO incidents (group_id, receiver, group_key, state, severity, group_labels,
    common_labels, common_annotations, external_url, truncated_alerts, routes, channels, people,
    policy, digest, paged, opened_at, updated_at, resolved_at)
VALUES (:group_id, :receiver, :group_key, :state, :severity, :group_labels, :common_labels,
    :common_annotations, :external_url, :truncated_alerts, :routes, :channels, :people, :policy,
    :digest, :paged, :updated_at, :updated_at, :resolved_at)
"""
UPDATE_INCIDENT = """
UPDATE incidents SET state = CASE WHEN :state = 'resolved' THEN 'resolved' ELSE state END,
    severity = :severity, group_labels = :group_labels, common_labels = :common_labels,
    common_annotations = :common_annotations, external_url = :external_url,
    truncated_alerts = :truncated_alerts, updated_at = :updated_at,
    resolved_at = COALESCE(resolved_at, :resolved_at), version = version + 1
WHERE id = :id
"""
UPSERT_ALERT = """
INSERT INTO incident_alerts (incident_id, fingerprint, status, starts_at, ends_at, labels,
    annotations, generator_url, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (incident_id, fingerprint) DO UPDATE SET status = excluded.status,
    starts_at = excluded.starts_at, ends_at = excluded.ends_at, labels = excluded.labels,
    annotations = excluded.annotations, generator_url = excluded.generator_url,
    updated_at = excluded.updated_at
"""
INSERT_OUTBOX = """
INSERT INTO outbox (incident_id, channel, kind, recipient, body, status, at_most_once, rate_key,
    created_at, next_attempt_at, fallback_of, priority)
VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?)
"""
DELIVERY = "INSERT INTO deliveries (outbox_id, attempt, at, outcome, detail) VALUES (?, ?, ?, ?, ?)"


def list_incidents(
    db: sqlite3.Connection, state: str | None, labels: dict[str, str], limit: int
) -> list[dict[str, Any]]:
    """Return incidents, newest first, filtered by state and common labels."""
    sql = "SELECT * FROM incidents WHERE (? IS NULL OR state = ?)"
    params: list[Any] = [state, state]
    for name, value in labels.items():
        sql += " AND json_extract(common_labels, ?) = ?"
        params += ['$."' + name.replace('"', '\\"') + '"', value]
    sql += " ORDER BY id DESC LIMIT ?"
    return [rows.to_json(r) for r in db.execute(sql, [*params, limit])]


def show_incident(db: sqlite3.Connection, incident_id: int) -> dict[str, Any] | None:
    """Return one incident with its alerts, outbox rows and delivery log."""
    row = db.execute("SELECT * FROM incidents WHERE id = ?", (incident_id,)).fetchone()
    if row is None:
        return None
    out = rows.to_json(row)
    out["alerts"] = [
        rows.to_json(r)
        for r in db.execute(
            "SELECT * FROM incident_alerts WHERE incident_id = ? ORDER BY fingerprint",
            (incident_id,),
        )
    ]
    out["notifications"] = [
        rows.to_json(r)
        for r in db.execute(
            "SELECT id, channel, kind, recipient, status, attempts, created_at, sent_at, "
            "finished_at, last_error, provider_id, fallback_of FROM outbox "
            "WHERE incident_id = ? ORDER BY id",
            (incident_id,),
        )
    ]
    out["deliveries"] = [
        rows.to_json(r)
        for r in db.execute(
            "SELECT d.* FROM deliveries d JOIN outbox o ON o.id = d.outbox_id "
            "WHERE o.incident_id = ? ORDER BY d.id",
            (incident_id,),
        )
    ]
    return out


def stats(db: sqlite3.Connection) -> Stats:
    """Count incidents and outbox rows by state."""
    incidents = {
        r["state"]: r["n"]
        for r in db.execute("SELECT state, COUNT(*) AS n FROM incidents GROUP BY state")
    }
    outbox = {
        r["status"]: r["n"]
        for r in db.execute("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status")
    }
    oldest = db.execute(
        "SELECT MIN(created_at) AS t FROM outbox WHERE status IN ('pending', 'sending')"
    ).fetchone()["t"]
    return Stats(incidents, outbox, oldest)


def dict_row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> dict[str, Any]:
    """Return rows as plain dicts, like psycopg's dict_row."""
    # Plain dicts, like psycopg's dict_row, so both backends share the row converters.
    return {column[0]: value for column, value in zip(cursor.description, values, strict=True)}
