"""What the pages read, bounded: capped lists, alert pages, who was notified (either backend).

A 10 000-alert incident must not make a page view load, decode and render 10 000 alerts:
the list shows the first few alerts of each incident, the detail page one page of them, and
the counts come from SQL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from receiver.store import Store
from receiver.store.rows import to_json
from receiver.web.ledger import Row
from receiver.web.recent import Recent

Query = Callable[..., Awaitable[list[Row]]]  # (sql with ? placeholders, *params) → rows

LIST_OPEN = 50  # open incidents per page of the list
LIST_RESOLVED = 20  # recently resolved ones under them (the API has them all)
LIST_ALERTS = 5  # alerts each incident shows on the list
PAGE_ALERTS = 50  # alerts per page of an incident

_COLUMNS = (
    "id, state, severity, group_labels, common_labels, common_annotations, people, step, "
    "escalation, acked_by, acked_at, resolved_by, resolved_at, opened_at, truncated_alerts, "
    "paged, channels"
)
# S608: these statements are built from the constants above only; values go in as parameters.
# Triage order in SQL, so a page of the list is the right 50: state, severity, newest.
OPEN = (
    f"SELECT {_COLUMNS} FROM incidents WHERE state <> 'resolved' "  # noqa: S608
    "ORDER BY CASE state WHEN 'triggered' THEN 0 ELSE 1 END, "
    "CASE severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 WHEN 'info' THEN 2 ELSE 3 END, "
    "opened_at DESC, id DESC LIMIT ? OFFSET ?"
)
OPEN_COUNT = "SELECT COUNT(*) AS n FROM incidents WHERE state <> 'resolved'"
RECENT = (
    f"SELECT {_COLUMNS} FROM incidents WHERE state = 'resolved' AND resolved_at >= ? "  # noqa: S608
    "ORDER BY resolved_at DESC LIMIT ?"
)
ONE = f"SELECT {_COLUMNS} FROM incidents WHERE id = ?"  # noqa: S608
# Firing before resolved, then newest first; a window numbers each incident's alerts.
_ORDER = "CASE status WHEN 'firing' THEN 0 ELSE 1 END, starts_at DESC, fingerprint"
# One top-N query per incident, joined: LIMIT on an incident's own rows is a cheap partial
# sort, where a window over every alert of a 10 000-alert incident sorts them all.
_FIRST = (
    "SELECT * FROM (SELECT * FROM incident_alerts WHERE incident_id = ? "  # noqa: S608
    f"ORDER BY {_ORDER} LIMIT ?) first_alerts"
)
COUNTS = (
    "SELECT incident_id, COUNT(*) AS total FROM incident_alerts "
    "WHERE incident_id IN ({ids}) GROUP BY incident_id"
)
ALERT_PAGE = (
    f"SELECT * FROM incident_alerts WHERE incident_id = ? ORDER BY {_ORDER} LIMIT ? OFFSET ?"  # noqa: S608
)
ALERT_COUNTS = (
    "SELECT COUNT(*) AS total, SUM(CASE status WHEN 'firing' THEN 1 ELSE 0 END) AS firing "
    "FROM incident_alerts WHERE incident_id = ?"
)
NOTIFIED = (
    "SELECT incident_id, channel, recipient, kind, status FROM outbox "
    "WHERE incident_id IN ({ids}) ORDER BY id"
)


def _in(count: int) -> str:
    return ", ".join(["?"] * count)


class PageReads:
    """Bounded reads for the incidents pages."""

    def __init__(self, query: Query, store: Store) -> None:
        self.query, self.store = query, store
        self.recent: Recent[Any] = Recent()

    async def listing(self, recent_since: float, page: int) -> tuple[list[Row], list[Row], int]:
        """Return one page of open incidents, the recently resolved, and how many are open."""
        result: tuple[list[Row], list[Row], int] = await self.recent.get(
            ("list", page), lambda: self._listing(recent_since, page)
        )
        return result

    async def detail(self, incident_id: int, page: int) -> Row | None:
        """Return one incident with one page of alerts, its notifications and timeline."""
        result: Row | None = await self.recent.get(
            ("incident", incident_id, page), lambda: self._detail(incident_id, page)
        )
        return result

    async def _listing(self, recent_since: float, page: int) -> tuple[list[Row], list[Row], int]:
        offset = (page - 1) * LIST_OPEN
        open_ = [to_json(r) for r in await self.query(OPEN, LIST_OPEN, offset)]
        done = [to_json(r) for r in await self.query(RECENT, recent_since, LIST_RESOLVED)]
        total = (await self.query(OPEN_COUNT))[0]["n"]
        await self._attach(open_ + done)
        return open_, done, int(total)

    async def _attach(self, incidents: Sequence[Row]) -> None:
        if not incidents:
            return
        ids = [i["id"] for i in incidents]
        by_id: dict[int, Any] = {i["id"]: i for i in incidents}
        for i in incidents:
            i.update(alerts=[], alert_count=0, notifications=[])
        first = " UNION ALL ".join([_FIRST] * len(ids))
        for a in await self.query(first, *(v for i in ids for v in (i, LIST_ALERTS))):
            by_id[a["incident_id"]]["alerts"].append(to_json(a))
        for c in await self.query(COUNTS.replace("{ids}", _in(len(ids))), *ids):
            by_id[c["incident_id"]]["alert_count"] = int(c["total"])
        for n in await self.query(NOTIFIED.replace("{ids}", _in(len(ids))), *ids):
            by_id[n["incident_id"]]["notifications"].append(dict(n))

    async def _detail(self, incident_id: int, page: int) -> Row | None:
        found = await self.query(ONE, incident_id)
        if not found:
            return None
        incident = to_json(found[0])
        counts = (await self.query(ALERT_COUNTS, incident_id))[0]
        offset = (page - 1) * PAGE_ALERTS
        alerts = await self.query(ALERT_PAGE, incident_id, PAGE_ALERTS, offset)
        notices = await self.query(NOTIFIED.replace("{ids}", "?"), incident_id)
        incident.update(
            alerts=[to_json(a) for a in alerts],
            alert_count=int(counts["total"] or 0),
            firing_count=int(counts["firing"] or 0),
            alert_offset=offset,
            notifications=[dict(n) for n in notices],
            events=await self.store.timeline(incident_id),
        )
        return incident
