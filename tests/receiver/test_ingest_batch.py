"""Store.ingest_batch: the applier's hook, on both stores: in order, failures alone, the mark."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from receiver.intake.payload import Payload, parse_payload
from receiver.store import IngestResult, IntakeRules, Store
from tests.receiver._helpers import T0, alert, opened_store, payload, rules_for


@pytest.fixture
def rules(tmp_path: Path) -> IntakeRules:
    """Return intake rules of a config without channels (intake only)."""
    return rules_for(f"store: {{type: sqlite, path: {tmp_path / 'receiver.db'}}}\n")


@pytest.fixture(params=["sqlite", "postgres"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, unique: str
) -> AsyncIterator[Store]:
    """Yield an opened store of each kind."""
    async with opened_store(request.param, tmp_path, unique) as opened:
        yield opened


def parsed(group: str, fp: str = "a", status: str = "firing") -> Payload:
    """Return a one-alert payload for `group`."""
    ends = "2026-11-22T13:00:00Z" if status == "resolved" else "0001-01-01T00:00:00Z"
    return parse_payload(
        json.dumps(payload(alert(fp, status=status, ends=ends), group=group)).encode()
    )


async def test_items_apply_in_order_and_the_mark_is_saved(store: Store, rules: IntakeRules) -> None:
    assert await store.inbox_mark("inbox-a") == 0
    items = [
        (parsed("g"), T0),
        (parsed("g", status="resolved"), T0 + 5),
        (parsed("g", fp="b"), T0 + 9),
    ]
    results = await store.ingest_batch(items, rules, ("inbox-a", 3))
    assert [r.action for r in results if isinstance(r, IngestResult)] == [
        "open",
        "resolve",
        "open",
    ]
    assert await store.inbox_mark("inbox-a") == 3
    assert await store.inbox_mark("inbox-b") == 0
    await store.ingest_batch([(parsed("h"), T0)], rules, ("inbox-a", 4))
    assert await store.inbox_mark("inbox-a") == 4


async def test_a_failing_item_fails_alone_and_the_mark_still_moves(
    store: Store, rules: IntakeRules
) -> None:
    # An integer neither store can hold: that item fails, the others apply.
    bad = parsed("bad").model_copy(update={"truncatedAlerts": 2**70})
    results = await store.ingest_batch(
        [(parsed("one"), T0), (bad, T0), (parsed("two"), T0)], rules, ("inbox", 7)
    )
    assert isinstance(results[0], IngestResult)
    assert results[0].action == "open"
    assert isinstance(results[1], Exception)
    assert isinstance(results[2], IngestResult)
    assert results[2].action == "open"
    assert await store.inbox_mark("inbox") == 7
    found = await store.incidents(None, {}, 10)
    assert len(found) == 2
