"""Alert groups and their open incident: what intake reads, locks and writes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from receiver.intake.decide import IncidentWrite
from receiver.intake.merge import AlertRecord, Mark
from receiver.store import queries as q
from receiver.store import rows
from receiver.store.gather import Insert
from receiver.store.tx import Row, Tx, one

Key = tuple[str, str]  # (receiver, group key)

# The group and its open incident in one round trip (g_* columns are the group's).
_GROUP = (
    "SELECT g.id AS g_id, g.marks AS g_marks, g.open_incident_id AS g_open, i.* "
    "FROM alert_groups g LEFT JOIN incidents i ON i.id = g.open_incident_id "
    "WHERE g.receiver = ? AND g.group_key = ?"
)
# A batch's groups, then their open incidents and alerts, each read by its own index. Joined,
# a few groups against a fast-growing incidents table whose statistics lag get planned as a
# scan of every incident.
_GROUPS = (
    "SELECT id, group_key, marks, open_incident_id FROM alert_groups "
    "WHERE receiver = ? AND group_key {any}"
)
# PostgreSQL: the same read as one index probe per key. Left to choose, a planner whose
# statistics lag a fast-growing table (one receiver name on every row, estimated as rare)
# reads every group of the receiver and filters the keys: each batch then costs as much as
# the table is big. A LATERAL subquery with a LIMIT is run once per key, as written.
_GROUPS_PROBED = (
    "SELECT g.* FROM unnest(?::text[]) AS k (key) CROSS JOIN LATERAL ("
    "SELECT id, group_key, marks, open_incident_id FROM alert_groups "
    "WHERE group_key = k.key AND receiver = ? LIMIT 1) AS g"
)
_INCIDENTS_OF = "SELECT * FROM incidents WHERE id {any}"
_ALERTS_OF = (
    "SELECT * FROM incident_alerts WHERE incident_id {any} ORDER BY incident_id, fingerprint"
)
LOCK_GROUP = _GROUP + "{lock of g}"
# Returns nothing when another replica created the group meanwhile (then it is read locked).
ADD_GROUP = (
    "INSERT INTO alert_groups (receiver, group_key) VALUES (?, ?) ON CONFLICT DO NOTHING "
    "RETURNING id, marks, open_incident_id"
)
# With an id taken ahead: nobody waits for an answer, so a group another replica created
# meanwhile must fail the statement (and the batch, which is then redone one by one).
NEW_GROUP = Insert("alert_groups", "id, receiver, group_key, marks, open_incident_id")
_TAKE_IDS = (
    "SELECT nextval('alert_groups_id_seq') AS g, nextval('incidents_id_seq') AS i "
    "FROM generate_series(1, ?)"
)
_TOP_IDS = (
    "SELECT (SELECT COALESCE(MAX(id), 0) FROM alert_groups) AS g, "
    "(SELECT COALESCE(MAX(id), 0) FROM incidents) AS i"
)
MARK_GROUP = "UPDATE alert_groups SET marks = ?, open_incident_id = ? WHERE id = ?"
CLOSE_GROUP = "UPDATE alert_groups SET open_incident_id = NULL WHERE open_incident_id = ?"
RESOLVE = (
    "UPDATE incidents SET state = 'resolved', resolved_at = ?, resolved_by = ?, "
    "updated_at = ?, version = version + 1 WHERE id = ?"
)
UPSERT_MARK = (
    "INSERT INTO inbox_marks (inbox_id, seq) VALUES (?, ?) "
    "ON CONFLICT (inbox_id) DO UPDATE SET seq = excluded.seq"
)
INBOX_MARK = "SELECT seq FROM inbox_marks WHERE inbox_id = ?"


@dataclass(frozen=True)
class Group:
    """A group's row, its open incident's row and that incident's alerts."""

    row: Row
    incident: Row | None = None
    alerts: Sequence[Row] = ()


async def load(tx: Tx, key: Key) -> Group | None:
    """Read a group, its open incident and the incident's alerts, without a lock."""
    found = await tx.fetchone(_GROUP, key)
    if found is None:
        return None
    row, incident = _split(found)
    alerts = [] if incident is None else await tx.fetchall(q.ALERTS, (incident["id"],))
    return Group(row, incident, alerts)


async def relock(tx: Tx, key: Key, seen: Group | None) -> Group:
    """Lock an existing group's row and read it again, reusing `seen`'s alerts if still valid."""
    found = await tx.fetchone(LOCK_GROUP, key)
    assert found is not None, key  # groups are never deleted
    row, incident = _split(found)
    if incident is None:
        return Group(row)
    # The incident row is read again (an ack changes its state), but its alerts change only
    # along with its version (intake's UPDATE_INCIDENT): a 10 000-alert group is read once.
    old = None if seen is None else seen.incident
    if old is not None and old["id"] == incident["id"] and old["version"] == incident["version"]:
        return Group(row, incident, seen.alerts if seen is not None else ())
    return Group(row, incident, await tx.fetchall(q.ALERTS, (incident["id"],)))


async def load_many(tx: Tx, keys: Iterable[Key]) -> dict[Key, Group | None]:
    """Read many groups like `load`, a query per receiver name (None: no such group yet)."""
    found: dict[Key, Group | None] = {}
    by_receiver: dict[str, list[str]] = {}
    for receiver, group_key in keys:
        by_receiver.setdefault(receiver, []).append(group_key)
        found[(receiver, group_key)] = None
    rows_of: dict[Key, Row] = {}
    for receiver, group_keys in by_receiver.items():
        if tx.dialect.lateral:
            found_rows = await tx.fetchall(_GROUPS_PROBED, (group_keys, receiver))
        else:
            found_rows = await tx.fetchall(_GROUPS, (receiver, tx.dialect.ids(group_keys)))
        for r in found_rows:
            key = (receiver, r.pop("group_key"))
            rows_of[key] = r
    ids = [r["open_incident_id"] for r in rows_of.values() if r["open_incident_id"] is not None]
    incidents = {}
    alerts: dict[int, list[Row]] = {}
    if ids:
        incidents = {i["id"]: i for i in await tx.fetchall(_INCIDENTS_OF, (tx.dialect.ids(ids),))}
        for a in await tx.fetchall(_ALERTS_OF, (tx.dialect.ids(ids),)):
            alerts.setdefault(a["incident_id"], []).append(a)
    for key, r in rows_of.items():
        incident = incidents.get(r["open_incident_id"])
        alert_rows = [] if incident is None else alerts.get(incident["id"], [])
        found[key] = Group(r, incident, alert_rows)
    return found


async def take_ids(tx: Tx, count: int) -> list[tuple[int, int]]:
    """Take `count` pairs of (group id, incident id) ahead of the rows.

    PostgreSQL: from the sequences the replicas share. SQLite: the ones after the highest, as
    SQLite numbers an INTEGER PRIMARY KEY itself; the transaction holds the file's only write
    lock, so nobody else takes them meanwhile.
    """
    if tx.dialect.sequences:
        return [(r["g"], r["i"]) for r in await tx.fetchall(_TAKE_IDS, (count,))]
    top = await one(tx, _TOP_IDS)
    return [(top["g"] + n, top["i"] + n) for n in range(1, count + 1)]


def _split(found: Row) -> tuple[Row, Row | None]:
    row = {"id": found["g_id"], "marks": found["g_marks"], "open_incident_id": found["g_open"]}
    if found["g_open"] is None:
        return row, None
    return row, {k: v for k, v in found.items() if not k.startswith("g_")}


async def add(tx: Tx, key: Key) -> Group | None:
    """Create an empty group (its new row is ours until commit); None if it exists already."""
    row = await tx.fetchone(ADD_GROUP, key)
    return None if row is None else Group(row)


async def add_marked(
    tx: Tx, key: Key, group_id: int, marks: dict[str, Mark], open_id: int | None
) -> Group:
    """Create a group with its first marks in one statement, its id (and its incident's)
    taken ahead: nothing waits for the database's answer, and no later UPDATE marks it.

    A group created meanwhile makes the transaction fail instead.
    """
    row = {"id": group_id, "marks": rows.marks_to(marks), "open_incident_id": open_id}
    await tx.execute(NEW_GROUP, (group_id, *key, row["marks"], open_id))
    return Group(row)


async def write_incident(
    tx: Tx,
    group: Group,
    key: Key,
    write: IncidentWrite,
    alerts: Sequence[AlertRecord],
    now: float,
    new_id: int | None = None,
) -> int:
    """Insert the group's incident (or update the open one) and upsert its alerts.

    `new_id`: the new incident's id, taken ahead (nothing waits for the database's answer).
    """
    params = rows.incident_params(write)
    if group.incident is None:
        params.update(id=new_id, group_id=group.row["id"], receiver=key[0], group_key=key[1])
        if new_id is not None:
            await tx.execute(q.INSERT_INCIDENT, params)
            incident_id = new_id
        else:
            incident_id = (await tx.fetchone(q.INSERT_INCIDENT_RETURNING, params) or {})["id"]
    else:
        incident_id = group.incident["id"]
        await tx.execute(q.UPDATE_INCIDENT, {**params, "id": incident_id})
    await tx.executemany(q.UPSERT_ALERT, [rows.alert_params(incident_id, a, now) for a in alerts])
    return incident_id


async def mark(tx: Tx, group: Group, marks: dict[str, Mark], open_id: int | None) -> None:
    """Save the group's watermarks and which incident is open."""
    await tx.execute(MARK_GROUP, (rows.marks_to(marks), open_id, group.row["id"]))


async def resolve(tx: Tx, incident_id: int, now: float, by: str) -> None:
    """Resolve an incident and detach it from its group."""
    await tx.execute(RESOLVE, (now, by, now, incident_id))
    await tx.execute(CLOSE_GROUP, (incident_id,))


async def save_mark(tx: Tx, inbox_id: str, seq: int) -> None:
    """Record how far an inbox has been applied (in the transaction that applied it)."""
    await tx.execute(UPSERT_MARK, (inbox_id, seq))


async def inbox_mark(tx: Tx, inbox_id: str) -> int:
    """Return how far an inbox has been applied (0: nothing yet)."""
    found: dict[str, Any] | None = await tx.fetchone(INBOX_MARK, (inbox_id,))
    return 0 if found is None else int(found["seq"])
