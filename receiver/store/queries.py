"""Statements on incidents, alerts and the outbox, and the read-only queries of the API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from receiver.incident_record import IncidentRecord
from receiver.store.base import Stats
from receiver.store.gather import Insert
from receiver.store.tx import Tx, one

INSERT_INCIDENT = Insert(
    "incidents",
    "id, group_id, receiver, group_key, state, severity, group_labels, common_labels, "
    "common_annotations, external_url, truncated_alerts, routes, channels, people, policy, "
    "digest, paged, opened_at, updated_at, resolved_at",
    named=True,
    values={"id": "{next_id of incidents}", "opened_at": ":updated_at"},
)
# Without an id taken ahead: the database numbers the row and says which.
INSERT_INCIDENT_RETURNING = INSERT_INCIDENT + " RETURNING id"
UPDATE_INCIDENT = """
UPDATE incidents SET state = CASE WHEN :state = 'resolved' THEN 'resolved' ELSE state END,
    severity = :severity, group_labels = :group_labels, common_labels = :common_labels,
    common_annotations = :common_annotations, external_url = :external_url,
    truncated_alerts = :truncated_alerts, updated_at = :updated_at,
    resolved_at = COALESCE(resolved_at, :resolved_at), version = version + 1
WHERE id = :id
"""
UPSERT_ALERT = Insert(
    "incident_alerts",
    "incident_id, fingerprint, status, starts_at, ends_at, labels, annotations, generator_url, "
    "updated_at",
    tail="ON CONFLICT (incident_id, fingerprint) DO UPDATE SET status = excluded.status, "
    "starts_at = excluded.starts_at, ends_at = excluded.ends_at, labels = excluded.labels, "
    "annotations = excluded.annotations, generator_url = excluded.generator_url, "
    "updated_at = excluded.updated_at",
)
INSERT_OUTBOX = Insert(
    "outbox",
    "incident_id, channel, kind, recipient, body, status, at_most_once, rate_key, created_at, "
    "next_attempt_at, fallback_of, priority",
    values={"status": "'pending'"},
)
DELIVERY = "INSERT INTO deliveries (outbox_id, attempt, at, outcome, detail) VALUES (?, ?, ?, ?, ?)"
INCIDENT = "SELECT * FROM incidents WHERE id = ?"
LOCK_INCIDENT = "SELECT * FROM incidents WHERE id = ?{lock}"
ALERTS = "SELECT * FROM incident_alerts WHERE incident_id = ?"
NOTIFICATIONS = (
    "SELECT id, channel, kind, recipient, status, attempts, created_at, sent_at, finished_at, "
    "last_error, provider_id, fallback_of FROM outbox WHERE incident_id = ? ORDER BY id"
)
SHOWN = {
    "alerts": "SELECT * FROM incident_alerts WHERE incident_id = ? ORDER BY fingerprint",
    "notifications": NOTIFICATIONS,
    "deliveries": (
        "SELECT d.* FROM deliveries d JOIN outbox o ON o.id = d.outbox_id "
        "WHERE o.incident_id = ? ORDER BY d.id"
    ),
}


async def list_incidents(
    tx: Tx, state: str | None, labels: Mapping[str, str], limit: int
) -> list[IncidentRecord]:
    """Return incidents, newest first, filtered by state and common labels."""
    sql = "SELECT * FROM incidents WHERE (CAST(? AS TEXT) IS NULL OR state = ?)"
    params: list[Any] = [state, state]
    for name, value in labels.items():
        sql += " AND {common_label} = ?"
        params += [tx.dialect.json_key(name), value]
    sql += " ORDER BY id DESC LIMIT ?"
    return [IncidentRecord.from_row(r) for r in await tx.fetchall(sql, [*params, limit])]


async def show_incident(tx: Tx, incident_id: int) -> IncidentRecord | None:
    """Return one incident with its alerts, outbox rows and delivery log."""
    row = await tx.fetchone(INCIDENT, (incident_id,))
    if row is None:
        return None
    parts = {key: await tx.fetchall(sql, (incident_id,)) for key, sql in SHOWN.items()}
    return IncidentRecord.from_row({**row, **parts})


async def stats(tx: Tx) -> Stats:
    """Count incidents and outbox rows by state."""
    incidents = await tx.fetchall("SELECT state, COUNT(*) AS n FROM incidents GROUP BY state")
    outbox = await tx.fetchall("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status")
    oldest = await one(
        tx, "SELECT MIN(created_at) AS t FROM outbox WHERE status IN ('pending', 'sending')"
    )
    inbox = await one(tx, "SELECT COUNT(*) AS n, MIN(received_at) AS t FROM inbox")
    return Stats(
        {r["state"]: r["n"] for r in incidents},
        {r["status"]: r["n"] for r in outbox},
        oldest["t"],
        int(inbox["n"]),
        inbox["t"],
    )
