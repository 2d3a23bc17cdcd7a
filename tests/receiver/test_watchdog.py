"""The dead man's switch against both stores: heartbeats, one page per outage, recovery."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from receiver.appkeys import STORE, WATCHDOG
from receiver.config import load_config_text
from receiver.intake.payload import parse_payload
from receiver.intake.watchdog import WatchdogMonitor, split
from tests.receiver._escalator_helpers import (
    POLICY_CONFIG,
    deliver,
    logs,  # noqa: F401 - a fixture, used by name
    policy_receiver,
    sent,
)
from tests.receiver._helpers import FakeClock, Running, Script, alert, payload

pytestmark = pytest.mark.usefixtures("logs")

WATCHDOG_YAML = "watchdog: {expect_every: 5m, notify: [person:ann, channel:chat]}\n"


def heartbeat() -> dict[str, Any]:
    """Return the always-firing Watchdog alert, as Alertmanager sends it."""
    return payload(
        alert("wd", alertname="Watchdog", severity="none"),
        group='{}:{alertname="Watchdog"}',
        alertname="Watchdog",
        severity="none",
    )


@pytest.fixture(params=["sqlite", "postgres"])
async def rx(
    request: pytest.FixtureRequest, script: Script, clock: FakeClock, tmp_path: Path, unique: str
) -> AsyncIterator[Running]:
    """Serve a receiver expecting the Watchdog every 5 minutes."""
    async with policy_receiver(request.param, tmp_path, unique, clock, WATCHDOG_YAML) as served:
        yield served


def monitor(rx: Running) -> WatchdogMonitor:
    """Return the app's watchdog monitor."""
    found = rx.app[WATCHDOG]
    assert found is not None
    return found


async def test_heartbeat_never_opens_an_incident(rx: Running) -> None:
    async with rx.http.post(f"{rx.url}/webhooks/alertmanager", json=heartbeat()) as response:
        assert response.status == 200
        assert (await response.json())["action"] == "watchdog"
    assert await rx.app[STORE].incidents(None, {}, 10) == []


async def test_missing_heartbeat_pages_once_and_recovery_is_told(
    rx: Running, clock: FakeClock, script: Script
) -> None:
    assert (await rx.post(heartbeat())).status == 200
    clock.advance(300)
    assert await monitor(rx).check() is None  # exactly on time is not late
    clock.advance(1)
    with structlog.testing.capture_logs() as events:
        incident = await monitor(rx).check()
    assert incident is not None
    assert [(e["event"], e["log_level"]) for e in events] == [("watchdog_missing", "error")]
    clock.advance(600)
    assert await monitor(rx).check() is None  # one page per outage
    await deliver(rx)
    assert sent(script, "sms") == [("watchdog", "ann")]
    assert sent(script, "chat") == [("watchdog", None)]
    assert (await rx.post(heartbeat())).status == 200
    await deliver(rx)
    assert sent(script, "sms") == [("watchdog", "ann"), ("resolved", "ann")]
    found = (await rx.app[STORE].incident(incident)).to_json()
    assert found is not None
    assert (found["state"], found["resolved_by"]) == ("resolved", "watchdog")
    assert [e.kind for e in await rx.app[STORE].timeline(incident) if e.kind != "delivery"] == [
        "watchdog_missing",
        "watchdog_back",
    ]
    clock.advance(301)
    assert await monitor(rx).check() is not None  # a new outage pages again


async def test_watchdog_alerts_are_split_from_others() -> None:
    body = payload(alert("wd", alertname="Watchdog"), alert("x1"))
    import json

    parsed = parse_payload(json.dumps(body).encode())
    rest, beat = split(parsed, "Watchdog")
    assert beat
    assert rest is not None
    assert [a.fingerprint for a in rest.alerts] == ["x1"]
    assert split(parsed, "Other") == (parsed, False)


def test_watchdog_config_names_unknown_targets(script: Script) -> None:
    from maintwatch.configload import ConfigError

    bad = POLICY_CONFIG + "watchdog: {notify: [person:zed, channel:nope], via: [fax]}\n"
    with pytest.raises(ConfigError) as info:
        load_config_text(bad, "rx.yml")
    assert info.value.problems == [
        "rx.yml: watchdog.notify[0]: unknown person 'zed'",
        "rx.yml: watchdog.notify[1]: unknown channel 'nope'",
        "rx.yml: watchdog.via[0]: unknown channel 'fax'",
    ]
