"""Retention on both stores: what is pruned when, what is kept, batches, the background task."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from receiver.appkeys import METRICS, RETENTION, STORE, WORKER
from receiver.config import RetentionConfig
from receiver.store.retention import cutoffs
from tests.receiver._helpers import (
    BASE_CONFIG,
    EVERYTHING,
    FakeClock,
    Running,
    Script,
    alert,
    payload,
    running,
    store_dsn,
    store_yaml,
    wait_for,
)

DAY = 86400.0
RESOLVED = "2026-11-22T13:00:00Z"
CONFIG = (
    BASE_CONFIG.replace("delivery: {", "delivery: {fallback_channel: backup, ")
    + "retention: {resolved_incidents: 90d, delivered_notifications: 30d, batch_size: 2}\n"
)


@pytest.fixture(params=["sqlite", "postgres"])
async def rx(
    request: pytest.FixtureRequest, script: Script, clock: FakeClock, tmp_path: Path, unique: str
) -> AsyncIterator[Running]:
    """Serve a receiver whose worker and retention the test drives with a fake clock."""
    async with store_dsn(request.param, unique) as dsn:  # noqa: SIM117 - dsn feeds the 2nd
        async with running(CONFIG + store_yaml(request.param, tmp_path, dsn), clock) as served:
            yield served


async def fire_and_resolve(rx: Running, group: str, clock: FakeClock) -> int:
    """Open an incident, deliver its page, resolve it, deliver that; return its id."""
    response = await rx.post(payload(alert("a"), group=group))
    assert response.status == 200
    await drain(rx)
    clock.advance(600)
    await rx.post(payload(alert("a", status="resolved", ends=RESOLVED), group=group))
    await drain(rx)
    (found,) = [i.to_json() for i in await rx.app[STORE].incidents(None, {}, 1)]
    assert found["state"] == "resolved"
    return int(found["id"])


async def drain(rx: Running) -> None:
    """Run worker rounds until nothing is due."""
    while await rx.app[WORKER].run_once():
        pass


async def counts(rx: Running) -> dict[int, tuple[int, int, int]]:
    """Return incidents by id with their notification and delivery counts."""
    out = {}
    for incident in [i.to_json() for i in await rx.app[STORE].incidents(None, {}, 1000)]:
        detail = (await rx.app[STORE].incident(incident["id"])).to_json()
        assert detail is not None
        out[incident["id"]] = (
            len(detail["alerts"]),
            len(detail["notifications"]),
            len(detail["deliveries"]),
        )
    return out


def deleted(rx: Running, target: str) -> float:
    """Return retention_deleted_total for a target."""
    value = rx.app[METRICS].registry.get_sample_value(
        "maintwatch_receiver_retention_deleted_total", {"target": target}
    )
    return value or 0.0


def test_cutoffs_follow_the_config() -> None:
    config = RetentionConfig.model_validate(
        {"resolved_incidents": "90d", "delivered_notifications": "30d"}
    )
    limits = cutoffs(config, 1000 * DAY)
    assert (limits.incidents, limits.notifications) == (910 * DAY, 970 * DAY)


async def test_notifications_go_first_then_incidents(rx: Running, clock: FakeClock) -> None:
    old = await fire_and_resolve(rx, "old", clock)
    await rx.post(payload(alert("b"), group="open"))
    await drain(rx)
    (still_open,) = [i for i in await counts(rx) if i != old]
    before = await counts(rx)
    assert before[old] == (1, 2, 2)  # firing + resolved, one delivery each
    clock.advance(29 * DAY)
    assert await rx.app[RETENTION].run_once() == {"notifications": 0, "incidents": 0}
    clock.advance(2 * DAY)
    assert await rx.app[RETENTION].run_once() == {"notifications": 2, "incidents": 0}
    after = await counts(rx)
    assert after[old] == (1, 0, 0)  # the incident and its alerts stay for 90 days
    assert after[still_open] == before[still_open]  # open incidents keep everything
    clock.advance(60 * DAY)
    assert await rx.app[RETENTION].run_once() == {"notifications": 0, "incidents": 1}
    assert await rx.app[STORE].incident(old) is None
    assert list(await counts(rx)) == [still_open]
    assert (deleted(rx, "notifications"), deleted(rx, "incidents")) == (2, 1)


async def test_undelivered_messages_keep_their_incident(rx: Running, clock: FakeClock) -> None:
    await rx.post(payload(alert("a"), group="g"))
    await drain(rx)
    await rx.post(payload(alert("a", status="resolved", ends=RESOLVED), group="g"))
    # A worker claimed the `resolved` message and never finished it.
    (claimed,) = await rx.app[STORE].claim(clock(), EVERYTHING, 30.0, 5, 600.0)
    assert claimed.kind == "resolved"
    clock.advance(200 * DAY)
    result = await rx.app[RETENTION].run_once()
    assert result["incidents"] == 0
    assert len(await counts(rx)) == 1


async def test_batches_are_bounded_and_all_expired_rows_go(rx: Running, clock: FakeClock) -> None:
    for index in range(5):
        await fire_and_resolve(rx, f"g{index}", clock)
    clock.advance(91 * DAY)
    store = rx.app[STORE]
    assert await store.prune("incidents", clock() - 90 * DAY, 2) == 2
    result = await rx.app[RETENTION].run_once()  # batch_size 2: three batches
    assert result == {"notifications": 6, "incidents": 3}
    assert await counts(rx) == {}


async def test_fallback_copies_and_their_originals_are_pruned(
    rx: Running, script: Script, clock: FakeClock
) -> None:
    script.plan["pager"] = ["fail", "fail"]
    incident = await fire_and_resolve(rx, "g", clock)
    detail = (await rx.app[STORE].incident(incident)).to_json()
    assert detail is not None
    assert sorted(n["channel"] for n in detail["notifications"]) == [
        "backup",
        "backup",
        "pager",
        "pager",
    ]
    clock.advance(31 * DAY)
    assert (await rx.app[RETENTION].run_once())["notifications"] == 4
    assert await counts(rx) == {incident: (1, 0, 0)}


async def test_pruned_group_still_ignores_stale_redelivery(rx: Running, clock: FakeClock) -> None:
    await fire_and_resolve(rx, "g", clock)
    clock.advance(91 * DAY)
    await rx.app[RETENTION].run_once()
    assert await counts(rx) == {}
    # A late duplicate of the old firing payload must not page again: the watermark stays.
    response = await rx.post(payload(alert("a"), group="g"))
    assert response.status == 200
    assert await counts(rx) == {}
    # A genuine re-fire (a new startsAt) opens a new incident as usual.
    await rx.post(payload(alert("a", starts="2027-03-01T00:00:00Z"), group="g"))
    assert len(await counts(rx)) == 1


async def test_background_task_prunes_on_start(
    script: Script, clock: FakeClock, tmp_path: Path
) -> None:
    text = CONFIG + store_yaml("sqlite", tmp_path, "")
    async with running(text, clock) as first:
        await fire_and_resolve(first, "g", clock)
    clock.advance(91 * DAY)
    async with running(text, clock, run_worker=True) as rx:
        assert "retention" in {task.get_name() for task in asyncio.all_tasks()}
        await wait_for(lambda: deleted(rx, "incidents") == 1, what="retention run at start")
        assert await counts(rx) == {}
        last = rx.app[METRICS].registry.get_sample_value(
            "maintwatch_receiver_retention_last_success_timestamp_seconds"
        )
        assert last == clock()


async def test_disabled_retention_keeps_everything(
    script: Script, clock: FakeClock, tmp_path: Path
) -> None:
    text = CONFIG.replace("batch_size: 2", "enabled: false") + store_yaml("sqlite", tmp_path, "")
    async with running(text, clock) as first:
        await fire_and_resolve(first, "g", clock)
    clock.advance(365 * DAY)
    async with running(text, clock, run_worker=True) as rx:
        assert "retention" not in {task.get_name() for task in asyncio.all_tasks()}
        assert len(await counts(rx)) == 1
