"""PostgreSQL statements, query helpers and read-only queries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg

from receiver.store import rows
from receiver.store.base import Stats

Conn = psycopg.AsyncConnection[dict[str, Any]]

INSERT_INCIDENT = """
INSERT INTO incidents (group_id, receiver, group_key, state, severity, group_labels,
    common_labels, common_annotations, external_url, truncated_alerts, routes, channels, people,
    policy, digest, paged, opened_at, updated_at, resolved_at)
VALUES (%(group_id)s, %(receiver)s, %(group_key)s, %(state)s, %(severity)s, %(group_labels)s,
    %(common_labels)s, %(common_annotations)s, %(external_url)s, %(truncated_alerts)s,
    %(routes)s, %(channels)s, %(people)s, %(policy)s, %(digest)s, %(paged)s, %(updated_at)s,
    %(updated_at)s, %(resolved_at)s)
RETURNING id
"""
UPDATE_INCIDENT = """
UPDATE incidents SET state = CASE WHEN %(state)s = 'resolved' THEN 'resolved' ELSE state END,
    severity = %(severity)s, group_labels = %(group_labels)s, common_labels = %(common_labels)s,
    common_annotations = %(common_annotations)s, external_url = %(external_url)s,
    truncated_alerts = %(truncated_alerts)s, updated_at = %(updated_at)s,
    resolved_at = COALESCE(resolved_at, %(resolved_at)s), version = version + 1
WHERE id = %(id)s
"""
UPSERT_ALERT = """
INSERT INTO incident_alerts (incident_id, fingerprint, status, starts_at, ends_at, labels,
    annotations, generator_url, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (incident_id, fingerprint) DO UPDATE SET status = excluded.status,
    starts_at = excluded.starts_at, ends_at = excluded.ends_at, labels = excluded.labels,
    annotations = excluded.annotations, generator_url = excluded.generator_url,
    updated_at = excluded.updated_at
"""
INSERT_OUTBOX = """
INSERT INTO outbox (incident_id, channel, kind, recipient, body, status, at_most_once, rate_key,
    created_at, next_attempt_at, fallback_of, priority)
VALUES (%s, %s, %s, %s, %s, 'pending', %s, %s, %s, %s, %s, %s)
"""
DELIVERY = (
    "INSERT INTO deliveries (outbox_id, attempt, at, outcome, detail) VALUES (%s, %s, %s, %s, %s)"
)
NOTIFICATIONS = (
    "SELECT id, channel, kind, recipient, status, attempts, created_at, sent_at, finished_at, "
    "last_error, provider_id, fallback_of FROM outbox WHERE incident_id = %s ORDER BY id"
)


async def all_(conn: Conn, sql: str, params: Any) -> list[dict[str, Any]]:
    """Run a query and return every row."""
    cursor = await conn.execute(sql.encode(), params)
    return await cursor.fetchall()


async def one_or_none(conn: Conn, sql: str, params: Any) -> dict[str, Any] | None:
    """Run a query and return its first row, if any."""
    cursor = await conn.execute(sql.encode(), params)
    return await cursor.fetchone()


async def one(conn: Conn, sql: str, params: Any) -> dict[str, Any]:
    """Run a query that must return a row."""
    found = await one_or_none(conn, sql, params)
    assert found is not None, sql
    return found


async def list_incidents(
    conn: Conn, state: str | None, labels: Mapping[str, str], limit: int
) -> list[dict[str, Any]]:
    """Return incidents, newest first, filtered by state and common labels."""
    sql = "SELECT * FROM incidents WHERE (%s::text IS NULL OR state = %s)"
    params: list[Any] = [state, state]
    for name, value in labels.items():
        sql += " AND common_labels::jsonb ->> %s = %s"
        params += [name, value]
    sql += " ORDER BY id DESC LIMIT %s"
    return [rows.to_json(r) for r in await all_(conn, sql, [*params, limit])]


async def show_incident(conn: Conn, incident_id: int) -> dict[str, Any] | None:
    """Return one incident with its alerts, outbox rows and delivery log."""
    row = await one_or_none(conn, "SELECT * FROM incidents WHERE id = %s", (incident_id,))
    if row is None:
        return None
    out = rows.to_json(row)
    for key, sql in (
        ("alerts", "SELECT * FROM incident_alerts WHERE incident_id = %s ORDER BY fingerprint"),
        ("notifications", NOTIFICATIONS),
        (
            "deliveries",
            "SELECT d.* FROM deliveries d JOIN outbox o ON o.id = d.outbox_id "
            "WHERE o.incident_id = %s ORDER BY d.id",
        ),
    ):
        out[key] = [rows.to_json(r) for r in await all_(conn, sql, (incident_id,))]
    return out


async def stats(conn: Conn) -> Stats:
    """Count incidents and outbox rows by state."""
    incidents = await all_(conn, "SELECT state, COUNT(*) AS n FROM incidents GROUP BY state", ())
    outbox = await all_(conn, "SELECT status, COUNT(*) AS n FROM outbox GROUP BY status", ())
    oldest = await one(
        conn, "SELECT MIN(created_at) AS t FROM outbox WHERE status IN ('pending', 'sending')", ()
    )
    return Stats(
        {r["state"]: r["n"] for r in incidents},
        {r["status"]: r["n"] for r in outbox},
        oldest["t"],
    )
