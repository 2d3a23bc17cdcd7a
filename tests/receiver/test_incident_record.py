"""The incident read model against real rows of both stores: it reads back the API's JSON."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from receiver.incident_record import IncidentRecord, TimelineEntry
from receiver.store import (
    Finish,
    IntakeRules,
    Store,
    postgres_escalation,
    postgres_queries,
    rows,
    sqlite_escalation,
    sqlite_queries,
)
from receiver.escalation_plan import ActRequest
from receiver.store.postgres import PostgresBackend
from receiver.store.sqlite import SqliteBackend
from receiver.webhook import parse_payload
from tests.receiver._helpers import (
    BASE_CONFIG,
    EVERYTHING,
    T0,
    Script,
    fixture_bytes,
    opened_store,
    register_script,
    rules_for,
)


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> Script:
    """Register the scripted test channels."""
    return register_script(monkeypatch)


@pytest.fixture
def rules(script: Script) -> IntakeRules:
    """Return intake rules of the base config."""
    return rules_for(BASE_CONFIG + "external_url: https://rx.example/\n")


@pytest.fixture(params=["sqlite", "postgres"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, unique: str
) -> AsyncIterator[Store]:
    """Yield an opened store of each kind."""
    async with opened_store(request.param, tmp_path, unique) as opened:
        yield opened


async def _lived(store: Store, rules: IntakeRules) -> int:
    """Open an incident, deliver its page, acknowledge it: every part has rows."""
    opened = await store.ingest(parse_payload(fixture_bytes("firing-group.json")), T0, rules)
    assert opened.incident_id is not None
    for row in await store.claim(T0 + 10**6, EVERYTHING, 60.0, 100, 60.0):
        assert await store.finish(row, Finish("sent", T0 + 5, provider_id="p1"))
    await store.act(opened.incident_id, ActRequest("ack", "alice", "api"), T0 + 9, rules)
    return opened.incident_id


async def _shaped(store: Store, incident_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Return what the query modules shape for the API (the JSON before the read model)."""
    if isinstance(store, SqliteBackend):
        return (
            await store._run(sqlite_queries.show_incident, store.db, incident_id),
            await store._run(sqlite_escalation.timeline, store.db, incident_id),
        )
    assert isinstance(store, PostgresBackend)
    async with store._tx() as conn:
        shown = await postgres_queries.show_incident(conn, incident_id)
        events = await postgres_escalation.timeline(conn, incident_id)
    assert shown is not None
    return shown, events


async def _raw(store: Store, incident_id: int) -> dict[str, Any]:
    """Return the incident's row as the backend's driver reads it (JSON as text, 0/1 flags)."""
    sql = "SELECT * FROM incidents WHERE id = %s"
    if isinstance(store, SqliteBackend):
        found = await store._run(
            lambda: store.db.execute(sql.replace("%s", "?"), (incident_id,)).fetchone()
        )
        return dict(found)
    assert isinstance(store, PostgresBackend)
    async with store._tx() as conn:
        return dict(await postgres_queries.one(conn, sql, (incident_id,)))


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
