"""The incident read model against real rows of both stores: it reads back the API's JSON."""

from __future__ import annotations

import json
from typing import Any

from receiver.escalation.plan import ActRequest
from receiver.incident_record import IncidentRecord, TimelineEntry
from receiver.intake.payload import parse_payload
from receiver.store import Finish, IntakeRules, Store, escalation_rows, queries, rows
from receiver.store.tx import Tx, one
from tests.receiver._helpers import (
    EVERYTHING,
    T0,
    fixture_bytes,
)


async def _lived(store: Store, rules: IntakeRules) -> int:
    """Open an incident, deliver its page, acknowledge it: every part has rows."""
    opened = await store.ingest(parse_payload(fixture_bytes("firing-group.json")), T0, rules)
    assert opened.incident_id is not None
    for row in await store.claim(T0 + 10**6, EVERYTHING, 60.0, 100, 60.0):
        assert await store.finish(row, Finish("sent", T0 + 5, provider_id="p1"))
    await store.act(opened.incident_id, ActRequest("ack", "alice", "api"), T0 + 9, rules)
    return opened.incident_id


async def _api_shape(tx: Tx, incident_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    # The JSON the API sent before the read model: the rows shaped by `rows.to_json`.
    shown = rows.to_json(await one(tx, queries.INCIDENT, (incident_id,)))
    for key, sql in queries.SHOWN.items():
        shown[key] = [rows.to_json(r) for r in await tx.fetchall(sql, (incident_id,))]
    events = await tx.fetchall(escalation_rows.TIMELINE, (incident_id,))
    deliveries = await tx.fetchall(escalation_rows.DELIVERY_LOG, (incident_id,))
    return shown, escalation_rows.timeline(events, deliveries)


async def _shaped(store: Store, incident_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Return the JSON the API shaped from the rows before the read model."""
    return await store.transaction(_api_shape, incident_id)


async def _raw(store: Store, incident_id: int) -> dict[str, Any]:
    """Return the incident's row as the backend's driver reads it (JSON as text, 0/1 flags)."""
    return dict(await store.transaction(one, queries.INCIDENT, (incident_id,)))


async def test_detail_reads_back_the_api_json(store: Store, rules: IntakeRules) -> None:
    incident_id = await _lived(store, rules)
    shown, events = await _shaped(store, incident_id)
    for part in ("alerts", "notifications", "deliveries"):
        assert shown[part], part
    assert events
    record = IncidentRecord.from_row({**shown, "events": events})
    # JSON text, as the API sends it: types (bool vs 0/1, list vs tuple) must match too.
    assert json.dumps(record.to_json(), sort_keys=True) == json.dumps(
        {**shown, "events": events}, sort_keys=True
    )
    assert (record.state, record.acked_by, record.paged) == ("acknowledged", "alice", True)
    assert record == IncidentRecord.from_row(record.to_json())


async def test_raw_rows_read_as_the_api_shows_them(store: Store, rules: IntakeRules) -> None:
    incident_id = await _lived(store, rules)
    raw = await _raw(store, incident_id)
    expected = json.dumps(rows.to_json(raw), sort_keys=True)
    assert json.dumps(IncidentRecord.from_row(raw).to_json(), sort_keys=True) == expected


async def test_store_readers_return_the_model(store: Store, rules: IntakeRules) -> None:
    incident_id = await _lived(store, rules)
    shown, events = await _shaped(store, incident_id)
    found = await store.incident(incident_id)
    assert found is not None
    assert json.dumps(found.to_json(), sort_keys=True) == json.dumps(shown, sort_keys=True)
    (listed,) = await store.incidents("acknowledged", {}, 10)
    assert listed.alerts is None  # the list reads no detail
    assert listed.to_json() == {
        k: v for k, v in shown.items() if k not in ("alerts", "notifications", "deliveries")
    }
    timeline = await store.timeline(incident_id)
    assert all(isinstance(e, TimelineEntry) for e in timeline)
    assert [e.to_json() for e in timeline] == events
