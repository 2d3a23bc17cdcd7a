"""Retention SQL for both backends: pick a bounded batch of expired ids, then delete by id.

Selecting ids first (locked with SKIP LOCKED on PostgreSQL) keeps every delete of one batch on
the same rows, and a batch's transaction short, so intake never waits long behind pruning.
"""

from __future__ import annotations

from typing import Literal

from receiver.store.tx import Tx

Target = Literal["incidents", "notifications"]

# Resolved long enough ago, nothing left to deliver, and not held by the dead man's switch.
_INCIDENTS = """
SELECT i.id FROM incidents i
WHERE i.state = 'resolved' AND i.resolved_at < ?
  AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.incident_id = i.id
                  AND o.status IN ('pending', 'sending'))
  AND NOT EXISTS (SELECT 1 FROM watchdogs w WHERE w.incident_id = i.id)
ORDER BY i.resolved_at LIMIT ?{skip_locked of i}
"""
# Finished messages of resolved incidents; a row a fallback copy points at goes after the copy.
_NOTIFICATIONS = """
SELECT o.id FROM outbox o JOIN incidents i ON i.id = o.incident_id
WHERE o.status IN ('sent', 'failed', 'unknown') AND o.finished_at < ?
  AND i.state = 'resolved'
  AND NOT EXISTS (SELECT 1 FROM outbox f WHERE f.fallback_of = o.id)
ORDER BY o.finished_at LIMIT ?{skip_locked of o}
"""
_DELETE: dict[Target, tuple[str, ...]] = {
    "incidents": (
        "DELETE FROM deliveries WHERE outbox_id IN (SELECT id FROM outbox WHERE incident_id {any})",
        "DELETE FROM outbox WHERE incident_id {any}",
        "DELETE FROM incident_events WHERE incident_id {any}",
        "DELETE FROM incident_alerts WHERE incident_id {any}",
        "DELETE FROM incidents WHERE id {any}",
    ),
    "notifications": (
        "DELETE FROM deliveries WHERE outbox_id {any}",
        "DELETE FROM outbox WHERE id {any}",
    ),
}
_SELECT: dict[Target, str] = {"incidents": _INCIDENTS, "notifications": _NOTIFICATIONS}


async def prune(tx: Tx, target: Target, before: float, limit: int) -> int:
    """Delete one batch in the caller's transaction; rows another replica holds are skipped."""
    ids = [row["id"] for row in await tx.fetchall(_SELECT[target], (before, limit))]
    if ids:
        for statement in _DELETE[target]:
            await tx.execute(statement, (tx.dialect.ids(ids),))
    return len(ids)
