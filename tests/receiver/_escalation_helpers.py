"""Escalation test helpers: a fake-clock driver that plays the worker's part."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from receiver.config import ReceiverBase, load_config
from receiver.escalation.engine import (
    Action,
    CancelTimer,
    EscalationState,
    Event,
    Notify,
    PolicyConfig,
    ScheduleTimer,
    due_event,
    step,
)
from receiver.oncall.people import Directory

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "receiver"


def load_example(name: str) -> ReceiverBase:
    """Load a shipped example config (its secrets are the stand-ins in examples/secrets/)."""
    return load_config(EXAMPLES / name)


@dataclass
class Run:
    """One incident driven through the engine by a fake clock, keeping its single timer."""

    policy: PolicyConfig
    directory: Directory
    now: datetime
    state: EscalationState = field(default_factory=EscalationState)
    timer: ScheduleTimer | None = None
    sent: list[tuple[datetime, Notify]] = field(default_factory=list)

    def feed(self, event: Event | None, at: datetime | None = None) -> list[Action]:
        """Apply an event at `at` (default: now) the way the worker does."""
        assert event is not None
        self.now = at or self.now
        self.state, actions = step(self.state, event, self.now, self.policy, self.directory.resolve)
        for action in actions:
            if isinstance(action, ScheduleTimer):
                self.timer = action
            elif isinstance(action, CancelTimer):
                self.timer = None
            else:
                self.sent.append((self.now, action))
        return actions

    def timer_at(self) -> datetime | None:
        """Return when the incident's timer is set for, if it is."""
        return None if self.timer is None else self.timer.at

    def run_until(self, end: datetime) -> list[tuple[datetime, Notify]]:
        """Fire the timer whenever it is due, up to `end`; return what was sent meanwhile."""
        first = len(self.sent)
        while self.timer is not None and self.timer.at <= end:
            self.now = self.timer.at
            event = due_event(self.state)
            # The worker knows only its stored timer; its version must match the state's.
            assert event is not None
            assert event.version == self.timer.version
            self.feed(event)
        self.now = max(self.now, end)
        return self.sent[first:]


def pages(sent: list[tuple[datetime, Notify]], start: datetime) -> list[tuple[int, int, str]]:
    """Summarise firing notifications as (minutes after start, step, targets-or-channels)."""
    return [
        (int((at - start).total_seconds() // 60), n.step, ",".join(n.targets or n.via))
        for at, n in sent
        if n.kind == "firing"
    ]
