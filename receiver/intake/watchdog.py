"""Dead man's switch: the always-firing Watchdog alert must keep arriving.

Watchdog payloads never open incidents: they only record a heartbeat in the store. A checker
(on every replica; the store's row lock makes one of them win) opens one "alerting pipeline is
broken" incident per outage when no heartbeat came for `expect_every`, pages the configured
targets, and resolves it — telling the same targets — when the heartbeat returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from maintwatch.durations import format_duration
from receiver.delivery.channels.base import NotificationKind
from receiver.delivery.notify import IncidentInfo, body
from receiver.escalation.plan import Message, TimelineEvent
from receiver.escalation.settings import WatchdogConfig
from receiver.intake.merge import AlertRecord
from receiver.intake.payload import Payload
from receiver.oncall.people import Directory
from receiver.store import IntakeRules, Store
from receiver.store.base import IncidentWrite, Outage
from receiver.worker import PeriodicWorker


def split(payload: Payload, alertname: str) -> tuple[Payload | None, bool]:
    """Return the payload without the watchdog's alerts (None if nothing else) and if it beat."""
    mine = [a for a in payload.alerts if a.labels.get("alertname") == alertname]
    if not mine:
        return payload, False
    beat = any(a.status == "firing" for a in mine)
    rest = [a for a in payload.alerts if a.labels.get("alertname") != alertname]
    return (payload.model_copy(update={"alerts": rest}) if rest else None), beat


def _write(config: WatchdogConfig, now: float, state: str) -> IncidentWrite:
    silent = format_duration(config.expect_every)
    labels = {"alertname": config.alertname, "severity": "critical"}
    annotations = {
        "summary": "The alerting pipeline is broken: the Watchdog alert stopped arriving",
        "description": (
            f"No {config.alertname} alert reached the receiver for more than {silent}. "
            "Prometheus, Alertmanager or the path between them is down: other alerts may "
            "be missed too."
        ),
    }
    return IncidentWrite(
        state=state,
        severity="critical",
        group_labels={"alertname": config.alertname},
        common_labels=labels,
        common_annotations=annotations,
        external_url="",
        truncated_alerts=0,
        routes=("watchdog",),
        channels=tuple(config.via),
        people=(),
        policy=None,
        digest=False,
        paged=True,
        updated_at=now,
        resolved_at=now if state == "resolved" else None,
    )


def plan(config: WatchdogConfig, directory: Directory, now: float, back: bool) -> Outage:
    """Return the outage incident and its messages: `watchdog` when missing, `resolved` back."""
    state = "resolved" if back else "triggered"
    write = _write(config, now, state)
    alert = AlertRecord(
        "watchdog:" + config.alertname,
        "resolved" if back else "firing",
        now,
        now if back else None,
        dict(write.common_labels),
        dict(write.common_annotations),
    )
    info = IncidentInfo(
        0,
        state,
        "critical",
        write.group_labels,
        write.common_labels,
        write.common_annotations,
        0,
        "",
        write.channels,
        (),
        True,
    )
    kind: NotificationKind = "resolved" if back else "watchdog"
    text = body(kind, info, [alert], state, "")
    at = datetime.fromtimestamp(now, UTC)
    messages: list[Message] = []
    for target in config.notify:
        kind_, _, name = target.partition(":")
        if kind_ == "channel":
            messages.append(Message(name, kind, None, text))
            continue
        for person in directory.resolve(target, at):
            via = config.via or list(person.preferred("critical"))
            messages += [Message(channel, kind, person.id, text) for channel in via]
    whom = ", ".join(sorted({m.recipient or m.channel for m in messages})) or "nobody"
    event = TimelineEvent(
        "watchdog_back" if back else "watchdog_missing", "watchdog", f"told {whom}"
    )
    return Outage(write, tuple(messages), (event,))


class WatchdogMonitor(PeriodicWorker):
    """Record heartbeats and page once per outage; the loop checks every `interval`."""

    name = "watchdog"
    crash_event = "watchdog_check_failed"

    def __init__(
        self,
        config: WatchdogConfig,
        store: Store,
        rules: IntakeRules,
        directory: Directory,
        logger: Any,
        clock: Callable[[], float] = time.time,
        delivered: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(config.interval, logger, clock)
        self.config, self.store, self.rules, self.directory = config, store, rules, directory
        self._delivered = delivered

    async def beat(self) -> None:
        """Record that the watchdog alert arrived; close an outage if one is open."""
        now = self._clock()
        back = plan(self.config, self.directory, now, back=True)
        incident_id = await self.store.watchdog_beat(self.config.alertname, now, back, self.rules)
        if incident_id is not None:
            self._log.info(
                "watchdog_back",
                alertname=self.config.alertname,
                incident_id=incident_id,
                notifications=len(back.messages),
            )
            self._delivered()

    async def check(self) -> int | None:
        """Open the outage incident if the heartbeat is late; return its id when opened now."""
        now = self._clock()
        outage = plan(self.config, self.directory, now, back=False)
        incident_id = await self.store.watchdog_check(
            self.config.alertname, now, self.config.expect_every, outage, self.rules
        )
        if incident_id is not None:
            self._log.error(
                "watchdog_missing",
                alertname=self.config.alertname,
                incident_id=incident_id,
                notifications=len(outage.messages),
                expect_every=self.config.expect_every,
            )
            self._delivered()
        return incident_id

    async def run_once(self) -> int | None:
        """One check (see `check`)."""
        return await self.check()
