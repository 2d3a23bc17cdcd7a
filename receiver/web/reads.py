"""What the pages read, bounded: capped lists, alert pages, who was notified (either backend).

A 10 000-alert incident must not make a page view load, decode and render 10 000 alerts:
the list shows the first few alerts of each incident, the detail page one page of them, and
the counts come from SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from receiver.store import Store
from receiver.store.rows import to_json
from receiver.web.ledger import Ledger, Row

LIST_LIMIT = 200  # incidents per section of the list
LIST_ALERTS = 5  # alerts each incident shows on the list
PAGE_ALERTS = 50  # alerts per page of an incident

_COLUMNS = (
    "id, state, severity, group_labels, common_labels, common_annotations, people, step, "
    "escalation, acked_by, acked_at, resolved_by, resolved_at, opened_at, truncated_alerts, "
    "paged, channels"
)
# S608: these statements are built from the constants above only; values go in as parameters.
OPEN = f"SELECT {_COLUMNS} FROM incidents WHERE state <> 'resolved' ORDER BY id DESC LIMIT %s"  # noqa: S608
RECENT = (
    f"SELECT {_COLUMNS} FROM incidents WHERE state = 'resolved' AND resolved_at >= %s "  # noqa: S608
    "ORDER BY resolved_at DESC LIMIT %s"
)
ONE = f"SELECT {_COLUMNS} FROM incidents WHERE id = %s"  # noqa: S608
# Firing before resolved, then newest first; a window numbers each incident's alerts.
_ORDER = "CASE status WHEN 'firing' THEN 0 ELSE 1 END, starts_at DESC, fingerprint"
FIRST_ALERTS = (
    "SELECT * FROM (SELECT a.*, ROW_NUMBER() OVER (PARTITION BY incident_id ORDER BY "  # noqa: S608
    f"{_ORDER}) AS n, COUNT(*) OVER (PARTITION BY incident_id) AS total "
    "FROM incident_alerts a WHERE incident_id IN ({ids})) ranked WHERE n <= %s ORDER BY n"
)
ALERT_PAGE = (
    f"SELECT * FROM incident_alerts WHERE incident_id = %s ORDER BY {_ORDER} LIMIT %s OFFSET %s"  # noqa: S608
)
ALERT_COUNTS = (
    "SELECT COUNT(*) AS total, SUM(CASE status WHEN 'firing' THEN 1 ELSE 0 END) AS firing "
    "FROM incident_alerts WHERE incident_id = %s"
)
NOTIFIED = (
    "SELECT incident_id, channel, recipient, kind, status FROM outbox "
    "WHERE incident_id IN ({ids}) ORDER BY id"
)


def _in(count: int) -> str:
    return ", ".join(["%s"] * count)


class PageReads:
    """Bounded reads for the incidents pages."""

    def __init__(self, ledger: Ledger, store: Store) -> None:
        self.ledger, self.store = ledger, store

    async def listing(self, recent_since: float) -> tuple[list[Row], list[Row]]:
        """Return (open, recently resolved) incidents with their first alerts and notices."""
        open_ = [to_json(r) for r in await self.ledger.query(OPEN, LIST_LIMIT)]
        done = [to_json(r) for r in await self.ledger.query(RECENT, recent_since, LIST_LIMIT)]
        await self._attach(open_ + done)
        return open_, done

    async def _attach(self, incidents: Sequence[Row]) -> None:
        if not incidents:
            return
        ids = [i["id"] for i in incidents]
        by_id: dict[int, Any] = {i["id"]: i for i in incidents}
        for i in incidents:
            i.update(alerts=[], alert_count=0, notifications=[])
        sql = FIRST_ALERTS.replace("{ids}", _in(len(ids)))
        for a in await self.ledger.query(sql, *ids, LIST_ALERTS):
            owner = by_id[a["incident_id"]]
            owner["alerts"].append(to_json(a))
            owner["alert_count"] = int(a["total"])
        for n in await self.ledger.query(NOTIFIED.replace("{ids}", _in(len(ids))), *ids):
            by_id[n["incident_id"]]["notifications"].append(dict(n))

    async def detail(self, incident_id: int, page: int) -> Row | None:
        """Return one incident with one page of alerts, its notifications and timeline."""
        found = await self.ledger.query(ONE, incident_id)
        if not found:
            return None
        incident = to_json(found[0])
        counts = (await self.ledger.query(ALERT_COUNTS, incident_id))[0]
        offset = (page - 1) * PAGE_ALERTS
        alerts = await self.ledger.query(ALERT_PAGE, incident_id, PAGE_ALERTS, offset)
        notices = await self.ledger.query(NOTIFIED.replace("{ids}", "%s"), incident_id)
        incident.update(
            alerts=[to_json(a) for a in alerts],
            alert_count=int(counts["total"] or 0),
            firing_count=int(counts["firing"] or 0),
            alert_offset=offset,
            notifications=[dict(n) for n in notices],
            events=await self.store.timeline(incident_id),
        )
        return incident
