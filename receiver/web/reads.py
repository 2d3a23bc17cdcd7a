"""What the pages read, bounded: capped lists, alert pages, who was notified (either backend).

A 10 000-alert incident must not make a page view load, decode and render 10 000 alerts:
the list shows the first few alerts of each incident, the detail page one page of them, and
the counts come from SQL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

from receiver.incident_record import AlertRow, IncidentRecord, NotificationRow
from receiver.store import Store
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

    async def listing(
        self, recent_since: float, page: int
    ) -> tuple[list[IncidentRecord], list[IncidentRecord], int]:
        """Return one page of open incidents, the recently resolved, and how many are open."""
        result: tuple[list[IncidentRecord], list[IncidentRecord], int] = await self.recent.get(
            ("list", page), lambda: self._listing(recent_since, page)
        )
        return result

    async def detail(self, incident_id: int, page: int) -> IncidentRecord | None:
        """Return one incident with one page of alerts, its notifications and timeline."""
        result: IncidentRecord | None = await self.recent.get(
            ("incident", incident_id, page), lambda: self._detail(incident_id, page)
        )
        return result

    async def _listing(
        self, recent_since: float, page: int
    ) -> tuple[list[IncidentRecord], list[IncidentRecord], int]:
        offset = (page - 1) * LIST_OPEN
        open_ = await self.query(OPEN, LIST_OPEN, offset)
        done = await self.query(RECENT, recent_since, LIST_RESOLVED)
        total = (await self.query(OPEN_COUNT))[0]["n"]
        read = await self._attach([*open_, *done])
        return read[: len(open_)], read[len(open_) :], int(total)

    async def _attach(self, incidents: Sequence[Row]) -> list[IncidentRecord]:
        if not incidents:
            return []
        ids = [int(i["id"]) for i in incidents]
        alerts: dict[int, list[AlertRow]] = {i: [] for i in ids}
        counts = dict.fromkeys(ids, 0)
        notices: dict[int, list[NotificationRow]] = {i: [] for i in ids}
        first = " UNION ALL ".join([_FIRST] * len(ids))
        for a in await self.query(first, *(v for i in ids for v in (i, LIST_ALERTS))):
            alerts[a["incident_id"]].append(AlertRow.from_row(a))
        for c in await self.query(COUNTS.replace("{ids}", _in(len(ids))), *ids):
            counts[c["incident_id"]] = int(c["total"])
        for n in await self.query(NOTIFIED.replace("{ids}", _in(len(ids))), *ids):
            notices[n["incident_id"]].append(NotificationRow.from_row(n))
        return [
            replace(
                IncidentRecord.from_row(row),
                alerts=tuple(alerts[i]),
                alert_count=counts[i],
                notifications=tuple(notices[i]),
            )
            for row, i in zip(incidents, ids, strict=True)
        ]

    async def _detail(self, incident_id: int, page: int) -> IncidentRecord | None:
        found = await self.query(ONE, incident_id)
        if not found:
            return None
        counts = (await self.query(ALERT_COUNTS, incident_id))[0]
        offset = (page - 1) * PAGE_ALERTS
        alerts = await self.query(ALERT_PAGE, incident_id, PAGE_ALERTS, offset)
        notices = await self.query(NOTIFIED.replace("{ids}", "?"), incident_id)
        return replace(
            IncidentRecord.from_row(found[0]),
            alerts=tuple(AlertRow.from_row(a) for a in alerts),
            alert_count=int(counts["total"] or 0),
            firing_count=int(counts["firing"] or 0),
            alert_offset=offset,
            notifications=tuple(NotificationRow.from_row(n) for n in notices),
            events=tuple(await self.store.timeline(incident_id)),
        )
