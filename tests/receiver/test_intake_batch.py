"""SQLite group commit: intakes queued behind each other share one transaction, yet stay apart."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from receiver.intake.payload import Payload, parse_payload
from receiver.store import IngestResult, IntakeRules, StoreUnavailable
from receiver.store.sqlite import SqliteBackend
from tests.receiver._helpers import T0, alert, payload, rules_for


@pytest.fixture
def rules(tmp_path: Path) -> IntakeRules:
    """Return intake rules of a config without channels (intake only)."""
    return rules_for(f"store: {{type: sqlite, path: {tmp_path / 'receiver.db'}}}\n")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteBackend]:
    """Yield an opened SQLite store in its own file."""
    opened = SqliteBackend(tmp_path / "receiver.db")
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


def parsed(group: str, fp: str = "a") -> Payload:
    """Return a one-alert payload for `group`."""
    return parse_payload(json.dumps(payload(alert(fp), group=group)).encode())


async def in_one_batch(store: SqliteBackend, *calls: Any) -> list[Any]:
    """Queue `calls` behind a held writer thread so that they are taken as one batch."""
    gate = threading.Event()
    held = asyncio.ensure_future(store._run(gate.wait))
    tasks = [asyncio.ensure_future(call) for call in calls]
    await asyncio.sleep(0)  # let every task put its job in the queue behind the held one
    gate.set()
    await held
    return await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_failing_payload_fails_alone(store: SqliteBackend, rules: IntakeRules) -> None:
    # An integer SQLite cannot store: the insert fails in Python, not in the database.
    bad = parsed("bad").model_copy(update={"truncatedAlerts": 2**70})
    results = await in_one_batch(
        store,
        store.ingest(parsed("one"), T0, rules),
        store.ingest(bad, T0, rules),
        store.ingest(parsed("two"), T0, rules),
    )
    assert isinstance(results[1], OverflowError)
    assert [r.action for r in (results[0], results[2])] == ["open", "open"]
    stored = [i.to_json() for i in await store.incidents(None, {}, 10)]
    assert sorted(i["group_key"] for i in stored) == ["one", "two"]
    ids = {r.incident_id for r in (results[0], results[2])}
    assert {i["id"] for i in stored} == ids


async def test_duplicates_in_one_batch_change_nothing(
    store: SqliteBackend, rules: IntakeRules
) -> None:
    results = await in_one_batch(
        store, *(store.ingest(parsed("same"), T0, rules) for _ in range(3))
    )
    assert results[0] == IngestResult("open", results[0].incident_id, 0)
    assert results[1:] == [IngestResult("none"), IngestResult("none")]
    assert len(await store.incidents(None, {}, 10)) == 1


async def test_other_calls_keep_their_place_between_intakes(
    store: SqliteBackend, rules: IntakeRules
) -> None:
    results = await in_one_batch(
        store,
        store.ingest(parsed("first"), T0, rules),
        store.incidents(None, {}, 10),
        store.ingest(parsed("second"), T0, rules),
    )
    assert [i.group_key for i in results[1]] == ["first"]
    assert len(await store.incidents(None, {}, 10)) == 2


async def test_closed_store_refuses_work(tmp_path: Path, rules: IntakeRules) -> None:
    store = SqliteBackend(tmp_path / "receiver.db")
    await store.open()
    queued = asyncio.ensure_future(store.ingest(parsed("queued"), T0, rules))
    await asyncio.sleep(0)
    await store.close()
    assert (await queued).action == "open"  # queued before close: still committed
    with pytest.raises(StoreUnavailable, match="not open"):
        await store.ingest(parsed("late"), T0, rules)
    reopened = SqliteBackend(tmp_path / "receiver.db")
    await reopened.open()
    try:
        assert [i.group_key for i in await reopened.incidents(None, {}, 10)] == ["queued"]
    finally:
        await reopened.close()
