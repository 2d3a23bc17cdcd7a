"""Gathered writes: each kind of row written once per batch, the same rows as one by one."""

from __future__ import annotations

import json
import re
from typing import Any

from receiver.intake import apply as intake
from receiver.intake.payload import Payload, parse_payload
from receiver.store import IngestResult, IntakeRules, Store, groups
from receiver.store import queries as q
from receiver.store.dialect import POSTGRES, SQLITE, Dialect
from receiver.store.escalation_sql import PAGED
from receiver.store.gather import Gathering
from tests.receiver._helpers import T0, RecordingTx, alert, payload

# Label values a JSON array of rows must carry through unchanged.
AWKWARD = 'quote " backslash \\ tab \t é ✓ 🚨'


def parsed(receiver: str, group: str, *alerts: dict[str, Any]) -> Payload:
    """Return a payload for `group` of `receiver`."""
    body = payload(*alerts, group=group, receiver=receiver, team="db", note=AWKWARD)
    return parse_payload(json.dumps(body).encode())


def batch(receiver: str) -> list[tuple[Payload, float]]:
    """New groups (one paged, one not), a group's second payload, and an existing group."""
    return [
        (parsed(receiver, "existing", alert("a"), alert("b", severity="warning")), T0 + 1.25),
        (parsed(receiver, "crit", alert("a"), alert("b", note=AWKWARD)), T0 + 2.5),
        (parsed(receiver, "warn", alert("a", severity="warning")), T0 + 0.1),
        (parsed(receiver, "crit", alert("a", "resolved"), alert("b", "resolved")), T0 + 3.75),
        (parsed(receiver, "quiet", alert("x", severity="info")), T0 + 1 / 3),
    ]


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """Return an incident's JSON without what differs between receivers (ids and names)."""
    text = json.dumps(record)
    text = re.sub(r'"(id|incident_id|group_id|outbox_id)": \d+', '"id": 0', text)
    text = re.sub(r"/incidents/\d+", "/incidents/N", text)
    found: dict[str, Any] = json.loads(text.replace('"gathered"', '"one-by-one"'))
    return found


async def stored(store: Store, receiver: str) -> list[dict[str, Any]]:
    """Return the receiver's incidents with alerts and messages, in group order."""
    found = []
    for listed in await store.incidents(None, {}, 100):
        if listed.receiver == receiver:
            record = await store.incident(listed.id)
            assert record is not None
            found.append(comparable(record.to_json()))
    return sorted(found, key=lambda r: (r["group_key"], r["opened_at"]))


async def test_a_gathered_batch_writes_what_one_by_one_writes(
    store: Store, rules: IntakeRules
) -> None:
    for receiver in ("gathered", "one-by-one"):
        first = [(parsed(receiver, "existing", alert("a")), T0)]
        await store.ingest_batch(first, rules)
    results = await store.ingest_batch(batch("gathered"), rules)
    items = [(p, now, rules) for p, now in batch("one-by-one")]
    isolated = await store.transaction(intake.apply_batch, items, None, True, store.fatal)

    def actions(found: list[IngestResult | Exception]) -> list[str]:
        return [r.action if isinstance(r, IngestResult) else repr(r) for r in found]

    assert actions(results) == actions(isolated) == ["update", "open", "open", "resolve", "open"]
    gathered, one_by_one = await stored(store, "gathered"), await stored(store, "one-by-one")
    assert gathered == one_by_one
    crit = next(r for r in gathered if r["group_key"] == "crit")
    assert crit["state"] == "resolved"
    assert crit["paged"] is True
    assert [n["kind"] for n in crit["notifications"]] == ["firing", "resolved"]
    assert crit["common_labels"]["note"] == AWKWARD
    # Times go through JSON's decimal text as they are (T0 + 1/3 has no short decimal).
    times = {i.group_key: i.opened_at for i in await store.incidents(None, {}, 100)}
    assert (times["crit"], times["quiet"]) == (T0 + 2.5, T0 + 1 / 3)


async def held_then_read(dialect: Dialect) -> list[tuple[str, str, Any]]:
    """Write two new groups' rows, read, then write one more; return what was sent."""
    tx = RecordingTx(dialect)
    gathering = Gathering(tx)
    for n in (1, 2):
        await gathering.execute(groups.NEW_GROUP, (n, "hook", f"g{n}", "{}", 10 + n))
        await gathering.execute(q.INSERT_OUTBOX, (10 + n, "sms", "firing", None, "{}", *"abcdef"))
        await gathering.execute(PAGED, (10 + n,))
    assert tx.sent == []  # held
    await gathering.fetchone("SELECT 1")
    await gathering.execute(PAGED, (13,))
    await gathering.execute("UPDATE x SET y = 1 WHERE id = ?", (1,))
    return tx.sent


async def test_held_writes_go_once_per_statement_before_anything_else() -> None:
    sent = await held_then_read(POSTGRES)
    assert [(call, sql) for call, sql, _ in sent] == [
        ("execute", groups.NEW_GROUP.many),
        ("execute", q.INSERT_OUTBOX.many),
        ("execute", PAGED.many),
        ("fetchone", "SELECT 1"),
        ("executemany", PAGED),  # a single row: its one-row form
        ("execute", "UPDATE x SET y = 1 WHERE id = ?"),
    ]
    rows = json.loads(sent[0][2][0])
    assert rows == [
        {"id": 1, "receiver": "hook", "group_key": "g1", "marks": "{}", "open_incident_id": 11},
        {"id": 2, "receiver": "hook", "group_key": "g2", "marks": "{}", "open_incident_id": 12},
    ]
    assert "status" not in json.loads(sent[1][2][0])[0]  # 'pending' is in the statement
    assert sent[2][2] == ([11, 12],)


async def test_sqlite_runs_held_writes_once_per_row() -> None:
    sent = await held_then_read(SQLITE)
    assert [(call, sql) for call, sql, _ in sent[:3]] == [
        ("executemany", groups.NEW_GROUP),
        ("executemany", q.INSERT_OUTBOX),
        ("executemany", PAGED),
    ]
    assert sent[2][2] == [(11,), (12,)]
