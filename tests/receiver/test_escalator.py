"""The escalation worker against both stores, driven by a fake clock: steps, tiers, restarts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import structlog

from receiver.appkeys import ACTIONS, ESCALATOR, METRICS, STORE
from tests.receiver._escalator_helpers import (
    deliver,
    logs,  # noqa: F401 - a fixture, used by name
    open_incident,
    ops,
    policy_receiver,
    queued,
    sent,
    tick,
)
from tests.receiver._helpers import FakeClock, Running, Script

pytestmark = pytest.mark.usefixtures("logs")

ON_CALL = "bob"  # rota on 2026-11-18 (T0): day 17 since 2026-11-01, ann and bob alternate


@pytest.fixture(params=["sqlite", "postgres"])
async def rx(
    request: pytest.FixtureRequest, script: Script, clock: FakeClock, tmp_path: Path, unique: str
) -> AsyncIterator[Running]:
    """Serve a receiver with the `ops` policy on each store."""
    async with policy_receiver(request.param, tmp_path, unique, clock) as served:
        yield served


async def test_critical_pages_on_call_at_once_then_escalates_on_time(
    rx: Running, clock: FakeClock, script: Script
) -> None:
    incident = await open_incident(rx)
    # Route channel told, step 1 (the rota's on-call person) paged in the same transaction.
    assert await queued(rx, incident) == [("firing", "chat", None), ("firing", "sms", ON_CALL)]
    assert await tick(rx, clock, 299) == []  # step 2 is due at +5m, not before
    fired = await tick(rx, clock, 1)
    assert [(f.incident_id, f.acted, f.queued) for f in fired] == [(incident, True, 1)]
    assert (await queued(rx, incident))[-1] == ("firing", "pager", "bob")
    await tick(rx, clock, 600)
    # cy has no critical preference: the route's channel carries the page.
    assert (await queued(rx, incident))[-2:] == [("firing", "chat", "cy"), ("firing", "chat", None)]
    assert await tick(rx, clock, 3600) == []  # every step ran, no repeat: exhausted
    await deliver(rx)
    assert ("firing", ON_CALL) in sent(script, "sms")
    lateness = rx.app[METRICS].registry.get_sample_value(
        "maintwatch_receiver_escalation_lateness_seconds_count"
    )
    assert lateness == 2


async def test_ack_stops_escalation_and_expiry_resumes_it(rx: Running, clock: FakeClock) -> None:
    incident = await open_incident(rx)
    summary = await rx.app[ACTIONS].ack(incident, "ann", "api")
    assert (summary.incident.state, summary.incident.acked_by) == ("acknowledged", "ann")
    assert summary.changed
    before = await queued(rx, incident)
    assert ("acknowledged", "sms", ON_CALL) in before  # the person paged hears who took it
    assert await tick(rx, clock, 600) == []  # step 2 would have been due at +5m
    assert await queued(rx, incident) == before
    fired = await tick(rx, clock, 1200)  # the ack lapses after 30 min: step 1 pages again
    assert fired[0].acted
    after = (await queued(rx, incident))[len(before) :]
    assert ("firing", "sms", ON_CALL) in after
    detail = (await rx.app[STORE].incident(incident)).to_json()
    assert detail is not None
    assert detail["state"] == "triggered"
    assert detail["acked_by"] is None


async def test_new_alert_in_acknowledged_incident_tells_the_acknowledger(
    rx: Running, clock: FakeClock
) -> None:
    incident = await open_incident(rx)
    await rx.app[ACTIONS].ack(incident, ON_CALL, "sms")
    before = len(await queued(rx, incident))
    from tests.receiver._helpers import alert, payload

    both = payload(
        alert("a1", team="ops"), alert("a2", team="ops"), team="ops", severity="critical"
    )
    assert (await rx.post(both)).status == 200
    added = (await queued(rx, incident))[before:]
    assert added == [
        ("updated", "sms", ON_CALL),
        ("updated", "chat", None),
    ]  # the acker and the channel


async def test_resolve_by_alertmanager_tells_everyone_paged_and_stops_timers(
    rx: Running, clock: FakeClock
) -> None:
    incident = await open_incident(rx)
    await tick(rx, clock, 300)  # bob paged on pager at step 2
    before = len(await queued(rx, incident))
    resolved = ops(status="resolved")
    resolved["alerts"][0]["endsAt"] = "2026-11-22T12:30:00Z"
    assert (await rx.post(resolved)).status == 200
    told = sorted((await queued(rx, incident))[before:])
    assert told == sorted(
        [("resolved", "sms", ON_CALL), ("resolved", "pager", "bob"), ("resolved", "chat", None)]
    )
    assert await tick(rx, clock, 3600) == []
    assert await rx.app[STORE].next_timer() is None


async def test_warning_tells_channels_now_and_pages_after_its_delay(
    rx: Running, clock: FakeClock
) -> None:
    incident = await open_incident(rx, ops(severity="warning"))
    assert await queued(rx, incident) == [("firing", "chat", None)]
    assert await tick(rx, clock, 3599) == []
    await tick(rx, clock, 1)  # warning_delay 1h (+ step 1 after 0s)
    assert (await queued(rx, incident))[-1] == ("firing", "pager", ON_CALL)


async def test_quiet_hours_hold_non_critical_messages(
    rx: Running, clock: FakeClock, script: Script
) -> None:
    incident = await open_incident(rx, ops(severity="warning"))
    await tick(rx, clock, 3600)
    await tick(rx, clock, 300)
    await tick(rx, clock, 600)  # step 3 pages cy at 12:21 UTC, inside cy's quiet hours (12-13)
    rows = (await rx.app[STORE].incident(incident)).to_json()
    assert rows is not None
    cy = [n for n in rows["notifications"] if n["recipient"] == "cy"]
    assert [(n["channel"], n["created_at"]) for n in cy] == [("pager", "2026-11-18T13:00:00Z")]
    await deliver(rx)
    assert not [n for n in script.sent.get("pager", []) if n.recipient and n.recipient.id == "cy"]
    clock.advance(39 * 60)  # 13:00: the held message goes
    await deliver(rx)
    assert ("firing", "cy") in sent(script, "pager")


async def test_timers_survive_a_restart(
    script: Script, clock: FakeClock, tmp_path: Path, unique: str
) -> None:
    async with policy_receiver("sqlite", tmp_path, unique, clock) as first:
        incident = await open_incident(first)
    clock.advance(301)
    async with policy_receiver("sqlite", tmp_path, unique, clock) as second:
        fired = await second.app[ESCALATOR].run_once()
        assert [f.incident_id for f in fired] == [incident]
        assert (await queued(second, incident))[-1] == ("firing", "pager", "bob")


async def test_stale_timer_is_ignored_and_rearmed(rx: Running, clock: FakeClock) -> None:
    incident = await open_incident(rx)
    store = rx.app[STORE]
    # A worker that loaded version N-1 (before an ack it did not see) must not act.
    await rx.app[ACTIONS].ack(incident, "ann", "api")
    await rx.app[ACTIONS].unack(incident, "ann", "api")
    count = len(await queued(rx, incident))
    timer = await store.next_timer()
    assert timer is not None
    assert await tick(rx, clock, 300)
    assert len(await queued(rx, incident)) == count + 1  # exactly one step-2 page, not two


async def test_overdue_timers_are_audited(rx: Running, clock: FakeClock) -> None:
    await open_incident(rx)
    clock.advance(3600)  # nobody ran the worker for an hour
    with structlog.testing.capture_logs() as events:
        assert await rx.app[ESCALATOR].audit() == 1
    assert events[0]["event"] == "escalation_timers_overdue"
    assert (events[0]["incidents"], events[0]["oldest_late_seconds"]) == (1, 3300)  # step 2 at +5m
    gauge = rx.app[METRICS].registry.get_sample_value("maintwatch_receiver_overdue_timers")
    assert gauge == 1
    await tick(rx, clock)
    assert await rx.app[ESCALATOR].audit() == 0
