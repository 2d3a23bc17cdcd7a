"""What an applied webhook did, and what the applier tells its parent: one line per batch.

The applier logs each row itself (its stderr is the receiver's) and sends the receiver only a
batch's sums: counting and waking the workers then cost the receiver's event loop, which also
answers every webhook, the same per batch of up to 256 rows as for one.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from receiver.intake.payload import Payload
from receiver.store import IngestResult


@dataclass(frozen=True)
class Applied:
    """What one webhook did, with the payload fields logged and counted."""

    seq: int
    receiver: str = ""
    group_key: str = ""
    status: str = ""
    alert_statuses: list[str] = field(default_factory=list)
    truncated: int = 0
    action: str = ""
    incident_id: int | None = None
    notifications: int = 0
    timer: float | None = None
    error: str | None = None

    @classmethod
    def of(cls, seq: int, payload: Payload | None, result: IngestResult | Exception) -> Applied:
        """Describe a row's outcome (payload None: the body no longer parses)."""
        error = error_text(result) if isinstance(result, Exception) else None
        done = None if isinstance(result, Exception) else result
        if payload is None:
            return cls(seq, error=error)
        return cls(
            seq,
            payload.receiver,
            payload.groupKey,
            payload.status,
            [a.status for a in payload.alerts],
            payload.truncatedAlerts,
            "" if done is None else done.action,
            None if done is None else done.incident_id,
            0 if done is None else done.notifications,
            None if done is None else done.timer,
            error,
        )


def error_text(error: BaseException) -> str:
    """Return how a webhook's failure to apply is recorded (inbox_failed, logs, replays)."""
    return f"{type(error).__name__}: {error}"


def log_applied(log: Any, item: Applied) -> None:
    """Log one applied webhook: every one at debug, state changes and failures at info/error."""
    if item.error is not None:
        log.error("webhook_apply_failed", seq=item.seq, group_key=item.group_key, error=item.error)
        return
    if item.action == "watchdog":
        return
    # Alertmanager repeats a group every group_interval: at info this line was most of the
    # event loop's time under load; state changes stay at info.
    log.debug(
        "webhook_received",
        receiver=item.receiver,
        group_key=item.group_key,
        status=item.status,
        alerts=len(item.alert_statuses),
        truncated_alerts=item.truncated,
        action=item.action,
        incident_id=item.incident_id,
        notifications=item.notifications,
        seq=item.seq or None,
    )
    if item.action == "open":
        log.info("incident_opened", incident_id=item.incident_id, group_key=item.group_key)
    elif item.action == "resolve":
        log.info("incident_resolved", incident_id=item.incident_id, by="alertmanager")


@dataclass
class Tally:
    """What a batch of applied webhooks did, summed: what the receiver counts and wakes."""

    mark: int = 0
    firing: int = 0
    resolved: int = 0
    truncated: int = 0
    failed: int = 0
    notifications: int = 0
    timer: float | None = None  # the earliest escalation timer the batch set
    lag: float = 0.0  # seconds from the 200 of the batch's oldest webhook to its commit
    actions: Counter[str] = field(default_factory=Counter)  # watchdog rows included

    @classmethod
    def of(cls, mark: int, items: list[Applied]) -> Tally:
        """Sum a batch."""
        tally = cls(mark)
        for item in items:
            if item.error is not None:
                tally.failed += 1
                continue
            firing = item.alert_statuses.count("firing")
            tally.firing += firing
            tally.resolved += len(item.alert_statuses) - firing
            tally.truncated += item.truncated
            tally.notifications += item.notifications
            tally.actions[item.action] += 1
            if item.timer is not None and (tally.timer is None or item.timer < tally.timer):
                tally.timer = item.timer
        return tally

    def encode(self) -> bytes:
        """Return the line the applier writes for this batch."""
        fields = self.__dict__ | {"actions": dict(self.actions)}
        return json.dumps(fields, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def decode(cls, line: bytes) -> Tally:
        """Parse a line written by `encode`."""
        fields: dict[str, Any] = json.loads(line)
        return cls(**{**fields, "actions": Counter(fields["actions"])})
