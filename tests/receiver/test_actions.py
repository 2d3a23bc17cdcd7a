"""Ack, unack and resolve through the API and `IncidentActions`: transitions, timeline, threads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from receiver.ack.actions import IncidentNotFound, InvalidTransition
from receiver.appkeys import ACTIONS
from receiver.delivery.channels import REGISTRY, DeliveryReceipt, Notification
from tests.receiver._escalator_helpers import (
    deliver,
    logs,  # noqa: F401 - a fixture, used by name
    open_incident,
    policy_receiver,
    queued,
    tick,
)
from tests.receiver._helpers import (
    FakeClock,
    Running,
    Script,
    ScriptChannel,
    alert,
    payload,
)

pytestmark = pytest.mark.usefixtures("logs")

AUTH = {"Authorization": "Bearer secret"}


@pytest.fixture(params=["sqlite", "postgres"])
async def rx(
    request: pytest.FixtureRequest, script: Script, clock: FakeClock, tmp_path: Path, unique: str
) -> AsyncIterator[Running]:
    """Serve a receiver with the `ops` policy on each store."""
    async with policy_receiver(request.param, tmp_path, unique, clock) as served:
        yield served


async def call(rx: Running, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    """Call the API and return (status, JSON)."""
    async with rx.http.request(method, f"{rx.url}{path}", headers=AUTH, **kwargs) as response:
        return response.status, await response.json()


async def test_api_ack_unack_resolve_and_timeline(rx: Running, clock: FakeClock) -> None:
    incident = await open_incident(rx)
    await deliver(rx)
    status, body = await call(rx, "POST", f"/api/v1/incidents/{incident}/ack", json={"by": "ann"})
    assert (status, body["state"], body["acked_by"], body["changed"]) == (
        200,
        "acknowledged",
        "ann",
        True,
    )
    # The same person again: the `ops` policy's ack_timeout (30m) starts again, a change.
    status, body = await call(rx, "POST", f"/api/v1/incidents/{incident}/ack", json={"by": "ann"})
    assert (status, body["acked_by"], body["changed"]) == (200, "ann", True)
    clock.advance(60)
    status, body = await call(rx, "POST", f"/api/v1/incidents/{incident}/unack")
    assert (status, body["state"], body["acked_by"]) == (200, "triggered", None)
    clock.advance(60)
    status, body = await call(rx, "POST", f"/api/v1/incidents/{incident}/resolve")
    assert (status, body["state"], body["resolved_by"]) == (200, "resolved", "api")
    status, body = await call(rx, "GET", f"/api/v1/incidents/{incident}")
    delivered = [e["detail"] for e in body["events"] if e["kind"] == "delivery"]
    assert delivered[:2] == ["firing via chat: sent", "firing via sms → bob: sent"]
    skip = ("notified", "delivery")
    kinds = [(e["kind"], e["actor"]) for e in body["events"] if e["kind"] not in skip]
    assert kinds == [
        ("fired", "alertmanager"),
        ("escalated", ""),
        ("acknowledged", "ann"),
        ("acknowledged", "ann"),  # the renewal
        ("unacknowledged", "api"),
        ("escalated", ""),
        ("resolved", "api"),
    ]
    acked = next(e for e in body["events"] if e["kind"] == "acknowledged")
    assert acked["detail"] == "via api"
    told = [e["detail"] for e in body["events"] if e["kind"] == "notified"]
    assert "acknowledged step 1: bob via sms" in told
    assert body["events"][0]["at"] == "2026-11-18T11:06:40Z"


async def test_api_rejects_bad_requests(rx: Running) -> None:
    incident = await open_incident(rx)
    assert (await call(rx, "POST", "/api/v1/incidents/999/ack"))[0] == 404
    assert (await call(rx, "POST", f"/api/v1/incidents/{incident}/unack"))[0] == 409
    status, body = await call(rx, "POST", f"/api/v1/incidents/{incident}/ack", data=b"[1]")
    assert status == 400
    async with rx.http.post(f"{rx.url}/api/v1/incidents/{incident}/ack") as response:
        assert response.status == 401
    await call(rx, "POST", f"/api/v1/incidents/{incident}/resolve")
    status, body = await call(rx, "POST", f"/api/v1/incidents/{incident}/ack")
    assert status == 409
    assert "cannot ack: it is resolved" in body["error"]


async def test_actions_raise_typed_errors(rx: Running) -> None:
    actions = rx.app[ACTIONS]
    with pytest.raises(IncidentNotFound):
        await actions.ack(12345, "ann", "link")
    incident = await open_incident(rx)
    with pytest.raises(InvalidTransition):
        await actions.unack(incident, "ann", "web")
    with pytest.raises(ValueError, match="via"):
        await actions.ack(incident, "ann", "pigeon")
    first = await actions.ack(incident, "ann", "slack")
    again = await actions.resolve(incident, "bob", "mattermost")
    assert (first.incident.state, again.incident.state) == ("acknowledged", "resolved")
    assert again.incident.resolved_by == "bob"


async def test_ack_without_policy_tells_the_route_and_never_escalates(
    rx: Running, clock: FakeClock
) -> None:
    plain = payload(alert("p1", team="web"), team="web")  # default route: chat, no policy
    incident = await open_incident(rx, plain)
    assert await queued(rx, incident) == [("firing", "chat", None)]
    summary = await rx.app[ACTIONS].ack(incident, "ann", "web")
    assert summary.incident.state == "acknowledged"
    assert await queued(rx, incident) == [("firing", "chat", None), ("acknowledged", "chat", None)]
    assert await tick(rx, clock, 86400) == []


class ThreadChannel(ScriptChannel):
    """A chat channel that answers with a thread reference, like Slack's `ts`."""

    async def send(self, notification: Notification) -> DeliveryReceipt:
        """Record the notification; return a thread ref for the first message."""
        await super().send(notification)
        return DeliveryReceipt(provider_id="m1", thread={"ts": f"t{notification.incident_id}"})


async def test_state_changes_reply_in_the_thread_the_channel_returned(
    script: Script, clock: FakeClock, tmp_path: Path, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(REGISTRY, "script", ThreadChannel)
    async with policy_receiver("sqlite", tmp_path, unique, clock) as rx:
        incident = await open_incident(rx)
        await deliver(rx)
        await rx.app[ACTIONS].ack(incident, "bob", "api")
        await deliver(rx)
    acked = [n for n in script.sent["chat"] if n.kind == "acknowledged"]
    assert [(n.thread, n.acted_by) for n in acked] == [({"ts": f"t{incident}"}, "bob")]
