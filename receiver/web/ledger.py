"""Small tables of the ack paths and the digest (migration 003), on either store backend.

Statements are written like the store's own (`?` placeholders) and run through
`Store.transaction` (the SQLite writer thread, or a pooled PostgreSQL connection), so these
writes serialize with intake exactly like the store's own.
"""

from __future__ import annotations

import json
from typing import Any

from receiver.store import Store
from receiver.store.tx import Tx

Row = dict[str, Any]

USE_LINK = (
    "INSERT INTO used_links (token_id, incident_id, used_at, expires_at) "
    "VALUES (?, ?, ?, ?) ON CONFLICT (token_id) DO NOTHING"
)
FORGET_LINK = "DELETE FROM used_links WHERE token_id = ?"
PURGE_LINKS = "DELETE FROM used_links WHERE expires_at < ?"
CLAIM_DIGEST = (
    "INSERT INTO digest_runs (digest, last_date, sent_at) VALUES (?, ?, ?) "
    "ON CONFLICT (digest) DO UPDATE SET last_date = excluded.last_date, "
    "sent_at = excluded.sent_at WHERE digest_runs.last_date < excluded.last_date"
)
LAST_DIGESTS = "SELECT digest, last_date FROM digest_runs"
COUNT_HELP = "SELECT COUNT(*) AS n FROM sms_help_replies WHERE phone = ? AND at > ?"
ADD_HELP = "INSERT INTO sms_help_replies (phone, at) VALUES (?, ?)"
PURGE_HELP = "DELETE FROM sms_help_replies WHERE at < ?"
DIGEST_INCIDENTS = (
    "SELECT id, state, severity, routes, channels, common_labels, group_labels, "
    "common_annotations, external_url, truncated_alerts, opened_at, resolved_at "
    "FROM incidents WHERE digest = ? AND opened_at < ? "
    "AND (opened_at >= ? OR state <> 'resolved') ORDER BY id"
)
ALERTS_OF = "SELECT * FROM incident_alerts WHERE incident_id = ? ORDER BY fingerprint"
_JSON = ("routes", "channels", "common_labels", "group_labels", "common_annotations", "labels")
_JSON_ALERT = ("labels", "annotations")


def _decode(row: Row, columns: tuple[str, ...]) -> Row:
    return {k: json.loads(v) if k in columns and isinstance(v, str) else v for k, v in row.items()}


class Ledger:
    """Used link ids, digest runs and SMS help replies in the receiver's store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def execute(self, sql: str, *params: Any) -> int:
        """Run one statement in its own transaction; return the affected row count."""
        return await self.store.transaction(_execute, sql, params)

    async def query(self, sql: str, *params: Any) -> list[Row]:
        """Return the rows of one query."""
        return await self.store.transaction(_query, sql, params)

    async def use_link(
        self, token_id: str, incident_id: int, expires_at: float, now: float
    ) -> bool:
        """Record a link as used; False when it was used before."""
        await self.execute(PURGE_LINKS, now)
        return await self.execute(USE_LINK, token_id, incident_id, now, expires_at) == 1

    async def forget_link(self, token_id: str) -> None:
        """Make a link usable again (its action failed for a transient reason)."""
        await self.execute(FORGET_LINK, token_id)

    async def claim_digest(self, digest: str, date: str, now: float) -> bool:
        """Record `date` as sent for a digest; False when it was sent for that date already."""
        return await self.execute(CLAIM_DIGEST, digest, date, now) == 1

    async def last_digests(self) -> dict[str, str]:
        """Return the local date each digest was last sent for."""
        return {r["digest"]: r["last_date"] for r in await self.query(LAST_DIGESTS)}

    async def allow_help(self, phone: str, now: float, limit: int, window: float) -> bool:
        """Count a help reply to `phone` if fewer than `limit` went out within `window`."""
        await self.execute(PURGE_HELP, now - window)
        found = await self.query(COUNT_HELP, phone, now - window)
        if found[0]["n"] >= limit:
            return False
        await self.execute(ADD_HELP, phone, now)
        return True

    async def digest_incidents(self, since: float, until: float) -> list[Row]:
        """Return info incidents opened in [since, until) or still open, with their alerts."""
        found = [_decode(r, _JSON) for r in await self.query(DIGEST_INCIDENTS, True, until, since)]
        for row in found:
            alerts = await self.query(ALERTS_OF, row["id"])
            row["alerts"] = [_decode(a, _JSON_ALERT) for a in alerts]
        return found


async def _execute(tx: Tx, sql: str, params: tuple[Any, ...]) -> int:
    return await tx.execute(sql, params)


async def _query(tx: Tx, sql: str, params: tuple[Any, ...]) -> list[Row]:
    return await tx.fetchall(sql, params)
