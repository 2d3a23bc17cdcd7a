"""Escalation worker test helpers: a policy config over scripted channels, and store readers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import structlog

from receiver.appkeys import ESCALATOR, STORE, WORKER
from receiver.store.base import Fired
from tests.receiver._helpers import (
    FakeClock,
    Running,
    Script,
    alert,
    payload,
    running,
    store_dsn,
    store_yaml,
)

POLICY_CONFIG = """
webhook: {auth: none}
channels:
  - {name: pager, type: script}
  - {name: chat, type: script}
  - {name: sms, type: script_sms}
people:
  - {id: ann, name: Ann, channels: {critical: [sms], warning: [pager]}}
  - {id: bob, name: Bob, channels: {critical: [sms], warning: [pager]}}
  - {id: cy, name: Cy, channels: {warning: [pager]}, quiet_hours: "12:00-13:00"}
schedules:
  - name: rota
    layers: [{rotation: daily, handoff: "00:00", start: 2026-11-01, participants: [ann, bob]}]
policies:
  - name: ops
    ack_timeout: 30m
    warning_delay: 1h
    steps:
      - {after: 0s, notify: [schedule:rota]}
      - {after: 5m, notify: [person:bob], via: [pager]}
      - {after: 10m, notify: [person:cy, channel:chat]}
routes:
  - {name: ops, matchers: ['team="ops"'], channels: [chat], policy: ops}
default_route: {channels: [chat]}
api: {token: secret}
delivery: {max_attempts: 3, backoff_initial: 10s, backoff_max: 60s, send_timeout: 5s,
           give_up_after: 1h}
"""


@pytest.fixture
def logs() -> Iterator[list[dict[str, Any]]]:
    """Capture log events (and keep them off a stdout an earlier in-process CLI run closed)."""
    with structlog.testing.capture_logs() as captured:
        yield captured


@asynccontextmanager
async def policy_receiver(
    kind: str, tmp_path: Path, unique: str, clock: FakeClock, extra: str = ""
) -> AsyncIterator[Running]:
    """Serve a receiver with the `ops` policy whose workers the test drives."""
    async with store_dsn(kind, unique) as dsn:  # noqa: SIM117 - dsn feeds the 2nd
        async with running(POLICY_CONFIG + extra + store_yaml(kind, tmp_path, dsn), clock) as rx:
            yield rx


def ops(fp: str = "a1", severity: str = "critical", status: str = "firing") -> dict[str, Any]:
    """Return a payload routed to the `ops` policy."""
    return payload(alert(fp, status, severity=severity, team="ops"), team="ops", severity=severity)


async def open_incident(rx: Running, body: dict[str, Any] | None = None) -> int:
    """Post a payload and return the incident it opened."""
    response = await rx.post(body or ops())
    assert response.status == 200
    found = await rx.app[STORE].incidents(None, {}, 10)
    return found[0].id


async def queued(rx: Running, incident_id: int) -> list[tuple[str, str, str | None]]:
    """Return the incident's outbox rows as (kind, channel, recipient)."""
    found = await rx.app[STORE].incident(incident_id)
    assert found is not None
    return [(n.kind, n.channel, n.recipient) for n in found.notifications or ()]


async def tick(rx: Running, clock: FakeClock, seconds: float = 0.0) -> list[Fired]:
    """Move the clock and run one escalation worker round."""
    clock.advance(seconds)
    return await rx.app[ESCALATOR].run_once()


async def deliver(rx: Running) -> int:
    """Run one delivery round."""
    return await rx.app[WORKER].run_once()


def sent(script: Script, channel: str) -> list[tuple[str, str | None]]:
    """Return what a scripted channel delivered, as (kind, recipient id)."""
    return [(n.kind, n.recipient.id if n.recipient else None) for n in script.sent.get(channel, [])]
