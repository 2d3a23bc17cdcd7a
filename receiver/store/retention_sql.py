"""Retention SQL for both backends: pick a bounded batch of expired ids, then delete by id.

Selecting ids first (locked with SKIP LOCKED on PostgreSQL) keeps every delete of one batch on
the same rows, and a batch's transaction short, so intake never waits long behind pruning.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Literal

from receiver.store import postgres_queries as pq

Target = Literal["incidents", "notifications"]

# Resolved long enough ago, nothing left to deliver, and not held by the dead man's switch.
_INCIDENTS = """
SELECT i.id FROM incidents i
WHERE i.state = 'resolved' AND i.resolved_at < {p}
  AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.incident_id = i.id
                  AND o.status IN ('pending', 'sending'))
  AND NOT EXISTS (SELECT 1 FROM watchdogs w WHERE w.incident_id = i.id)
ORDER BY i.resolved_at LIMIT {p}
"""
# Finished messages of resolved incidents; a row a fallback copy points at goes after the copy.
_NOTIFICATIONS = """
SELECT o.id FROM outbox o JOIN incidents i ON i.id = o.incident_id
WHERE o.status IN ('sent', 'failed', 'unknown') AND o.finished_at < {p}
  AND i.state = 'resolved'
  AND NOT EXISTS (SELECT 1 FROM outbox f WHERE f.fallback_of = o.id)
ORDER BY o.finished_at LIMIT {p}
"""
_DELETE: dict[Target, tuple[str, ...]] = {
    "incidents": (
        "DELETE FROM deliveries WHERE outbox_id IN (SELECT id FROM outbox WHERE incident_id {ids})",
        "DELETE FROM outbox WHERE incident_id {ids}",
        "DELETE FROM incident_events WHERE incident_id {ids}",
        "DELETE FROM incident_alerts WHERE incident_id {ids}",
        "DELETE FROM incidents WHERE id {ids}",
    ),
    "notifications": (
        "DELETE FROM deliveries WHERE outbox_id {ids}",
        "DELETE FROM outbox WHERE id {ids}",
    ),
}
_SELECT: dict[Target, str] = {"incidents": _INCIDENTS, "notifications": _NOTIFICATIONS}
_LOCK: dict[Target, str] = {
    "incidents": " FOR UPDATE OF i SKIP LOCKED",
    "notifications": " FOR UPDATE OF o SKIP LOCKED",
}


def prune_sqlite(db: sqlite3.Connection, target: Target, before: float, limit: int) -> int:
    """Delete one batch in the caller's transaction (the writer thread); return its size."""
    found = db.execute(_SELECT[target].format(p="?"), (before, limit)).fetchall()
    ids = [row["id"] for row in found]
    if ids:
        marks = f"IN ({','.join('?' * len(ids))})"
        for sql in _DELETE[target]:
            db.execute(sql.format(ids=marks), ids)
    return len(ids)


async def prune_postgres(conn: pq.Conn, target: Target, before: float, limit: int) -> int:
    """Delete one batch in the caller's transaction; rows another replica holds are skipped."""
    sql = _SELECT[target].format(p="%s").rstrip() + _LOCK[target]
    ids: list[Any] = [row["id"] for row in await pq.all_(conn, sql, (before, limit))]
    if ids:
        for statement in _DELETE[target]:
            await conn.execute(statement.format(ids="= ANY(%s)").encode(), (ids,))
    return len(ids)
