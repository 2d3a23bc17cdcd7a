"""Escalation data: policy config, events, actions and the JSON-serialisable state (pure).

The engine (`receiver.escalation.engine.step`) turns (state, event, now) into (state, actions).

The worker keeps one `EscalationState` per incident (`to_dict`/`from_dict`: one JSON column),
feeds it events under a row lock and applies the actions in the same transaction:

* `Notify` → outbox rows: one per channel in `via` × person in `targets`; with no targets, one
  post to each channel in `via`. `not_before` delays delivery (quiet hours).
* `ScheduleTimer(at, version)` → the incident's single timer, replacing any earlier one;
  `CancelTimer` → clear it. When it is due, feed `due_event(state)`.

Every accepted event increments `version`; timer events carrying another version are stale
and change nothing, which fences off a worker that loaded an old state. Severity tiers:
critical starts step 1 at once; warning first tells the route's channels and starts the steps
after `warning_delay` unless acknowledged; info never pages (the digest covers it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from maintwatch.configload import Duration, StrictModel
from receiver.oncall.people import PersonConfig
from receiver.oncall.schedules import require_aware

TIERS = ("info", "warning", "critical")
PAGING = frozenset({"warning", "critical"})
TARGET_KINDS = ("person", "schedule", "channel")
Status = Literal["pending", "triggered", "acknowledged", "resolved"]
Kind = Literal["firing", "updated", "acknowledged", "unacknowledged", "resolved"]


def _target(value: str) -> str:
    kind, _, name = value.partition(":")
    if kind not in TARGET_KINDS or not name:
        raise ValueError(
            f"target {value!r}: expected person:<id>, schedule:<name> or channel:<name>"
        )
    return value


class StepConfig(StrictModel):
    """One escalation step: wait `after` (since the previous step), then notify targets."""

    after: Duration = Field(default=0.0, ge=0)
    notify: list[Annotated[str, AfterValidator(_target)]] = Field(min_length=1)
    via: list[str] = Field(default_factory=list)


class PolicyConfig(StrictModel):
    """An escalation policy: ordered steps, looped `repeat` more times while unacknowledged."""

    name: str = Field(min_length=1)
    description: str = ""
    steps: list[StepConfig] = Field(default_factory=list)
    repeat: int = Field(default=0, ge=0, le=20)
    repeat_after: Duration = Field(default=1800.0, ge=60)
    warning_delay: Duration = Field(default=3600.0, ge=0)
    ack_timeout: Duration | None = Field(default=None, gt=0)


# Events ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Opened:
    """The incident opened; `channels`/`people` come from its route."""

    severity: str
    channels: tuple[str, ...] = ()
    people: tuple[str, ...] = ()


@dataclass(frozen=True)
class AlertsAdded:
    """More alerts fired in the incident; `severity` is the incident's tier now."""

    severity: str


@dataclass(frozen=True)
class TimerDue:
    """The step timer scheduled with `version` is due."""

    version: int


@dataclass(frozen=True)
class AckExpired:
    """The acknowledgement timer scheduled with `version` is due."""

    version: int


@dataclass(frozen=True)
class Acknowledged:
    """Someone acknowledged the incident."""

    by: str


@dataclass(frozen=True)
class Unacknowledged:
    """Someone withdrew the acknowledgement."""

    by: str


@dataclass(frozen=True)
class Resolved:
    """The incident resolved (all alerts resolved, or by hand)."""

    by: str = ""


Event = Opened | AlertsAdded | TimerDue | AckExpired | Acknowledged | Unacknowledged | Resolved


# Actions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Notify:
    """Tell `targets` (person ids) through the `via` channels; no targets: post to `via`."""

    kind: Kind
    step: int
    targets: tuple[str, ...]
    via: tuple[str, ...]
    not_before: datetime | None = None
    by: str = ""


@dataclass(frozen=True)
class ScheduleTimer:
    """Set the incident's timer to `at`, tagged with the state's `version`."""

    at: datetime
    version: int


@dataclass(frozen=True)
class CancelTimer:
    """Clear the incident's timer."""


Action = Notify | ScheduleTimer | CancelTimer
Resolver = Callable[[str, datetime], Sequence[PersonConfig]]


# State -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EscalationState:
    """Where one incident's escalation stands; `step` is the last step run (1-based)."""

    status: Status = "pending"
    severity: str = "info"
    step: int = 0
    loop: int = 0
    next_at: datetime | None = None
    acked_by: str | None = None
    ack_expires_at: datetime | None = None
    paged: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # person → channels
    channels: tuple[str, ...] = ()  # channels posted to
    route_channels: tuple[str, ...] = ()
    route_people: tuple[str, ...] = ()
    version: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable form."""
        return {
            **{k: getattr(self, k) for k in ("status", "severity", "step", "loop", "version")},
            "next_at": _iso(self.next_at),
            "acked_by": self.acked_by,
            "ack_expires_at": _iso(self.ack_expires_at),
            "paged": {pid: list(via) for pid, via in self.paged.items()},
            **{k: list(getattr(self, k)) for k in ("channels", "route_channels", "route_people")},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EscalationState:
        """Rebuild a state from `to_dict` output; raise ValueError naming a bad field."""
        try:
            return cls(
                status=choice(data["status"], ("pending", "triggered", "acknowledged", "resolved")),
                severity=choice(data["severity"], TIERS),
                step=int(data["step"]),
                loop=int(data["loop"]),
                next_at=_time(data["next_at"]),
                acked_by=data["acked_by"],
                ack_expires_at=_time(data["ack_expires_at"]),
                paged={str(k): tuple(v) for k, v in data["paged"].items()},
                channels=tuple(data["channels"]),
                route_channels=tuple(data["route_channels"]),
                route_people=tuple(data["route_people"]),
                version=int(data["version"]),
            )
        except KeyError as exc:
            raise ValueError(f"escalation state: missing field {exc.args[0]!r}") from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"escalation state: {exc}") from None


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time(value: Any) -> datetime | None:
    return None if value is None else require_aware(datetime.fromisoformat(value))


def choice(value: Any, allowed: Sequence[str]) -> Any:
    """Return `value` if it is one of `allowed`, else raise ValueError listing them."""
    if value not in allowed:
        raise ValueError(f"{value!r} is not one of {', '.join(allowed)}")
    return value


def due_event(state: EscalationState) -> TimerDue | AckExpired | None:
    """Return the event to feed when the state's timer (`next_at`) is due."""
    if state.next_at is None:
        return None
    if state.status == "triggered":
        return TimerDue(state.version)
    if state.status == "acknowledged":
        return AckExpired(state.version)
    return None


def policy_reference_problems(
    policies: Sequence[PolicyConfig], known: Mapping[str, set[str]]
) -> list[str]:
    """Return `path: message` for every target or `via` naming nothing configured."""
    out: list[str] = []
    for p_index, policy in enumerate(policies):
        for s_index, item in enumerate(policy.steps):
            path = f"policies[{p_index}].steps[{s_index}]"
            for t_index, target in enumerate(item.notify):
                kind, _, name = target.partition(":")
                if name not in known[kind]:
                    out.append(f"{path}.notify[{t_index}]: unknown {kind} {name!r}")
            out += [
                f"{path}.via[{v_index}]: unknown channel {name!r}"
                for v_index, name in enumerate(item.via)
                if name not in known["channel"]
            ]
    return out
