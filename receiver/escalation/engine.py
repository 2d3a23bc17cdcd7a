"""The pure escalation engine: `step(state, event, now, policy, resolve) → (state, actions)`.

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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from receiver.escalation.model import (
    PAGING,
    TIERS,
    AckExpired,
    Acknowledged,
    Action,
    AlertsAdded,
    CancelTimer,
    EscalationState,
    Event,
    Kind,
    Notify,
    Opened,
    PolicyConfig,
    Resolved,
    Resolver,
    ScheduleTimer,
    Status,
    StepConfig,
    TimerDue,
    Unacknowledged,
    choice,
    due_event,
    policy_reference_problems,
)
from receiver.oncall.people import PersonConfig, quiet_until
from receiver.oncall.schedules import require_aware

__all__ = [
    "AckExpired",
    "Acknowledged",
    "Action",
    "AlertsAdded",
    "CancelTimer",
    "EscalationState",
    "Event",
    "Notify",
    "Opened",
    "PolicyConfig",
    "Resolved",
    "ScheduleTimer",
    "StepConfig",
    "TimerDue",
    "Unacknowledged",
    "due_event",
    "policy_reference_problems",
    "step",
]


# Engine ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ctx:
    now: datetime
    policy: PolicyConfig
    resolve: Resolver

    def person(self, person_id: str) -> PersonConfig:
        return self.resolve(f"person:{person_id}", self.now)[0]


def step(
    state: EscalationState,
    event: Event,
    now: datetime,
    policy: PolicyConfig,
    resolve_targets: Resolver,
) -> tuple[EscalationState, list[Action]]:
    """Apply one event; return the new state and what to do (nothing when ignored)."""
    ctx = _Ctx(require_aware(now), policy, resolve_targets)
    new, actions = _HANDLERS[type(event)](ctx, state, event)
    if new is state:
        return state, []
    new = replace(new, version=state.version + 1)
    timer: list[Action] = []
    if new.next_at is not None:
        timer = [ScheduleTimer(new.next_at, new.version)]
    elif state.next_at is not None:
        timer = [CancelTimer()]
    return new, [*actions, *timer]


def _tell(
    ctx: _Ctx,
    state: EscalationState,
    recipients: Sequence[tuple[PersonConfig, tuple[str, ...]]],
    kind: Kind,
    by: str = "",
) -> list[Notify]:
    """Return one Notify per (channels, deferral) group; quiet hours never hold critical."""
    groups: dict[tuple[tuple[str, ...], datetime | None], list[str]] = {}
    for person, via in recipients:
        later = None if state.severity == "critical" else quiet_until(person, ctx.now)
        groups.setdefault((via, later), []).append(person.id)
    return [
        Notify(kind, state.step, tuple(ids), via, later, by) for (via, later), ids in groups.items()
    ]


def _post(
    state: EscalationState, channels: Sequence[str], kind: Kind, by: str = ""
) -> list[Notify]:
    return [Notify(kind, state.step, (), tuple(channels), None, by)] if channels else []


def _page(
    ctx: _Ctx, state: EscalationState, people: Sequence[PersonConfig], via: Sequence[str]
) -> tuple[EscalationState, list[Notify]]:
    """Page people (step `via`, else their preference, else the route's channels)."""
    unique = list({p.id: p for p in people}.values())
    chosen = [
        (p, tuple(via) or p.preferred(state.severity) or state.route_channels) for p in unique
    ]
    paged = dict(state.paged)
    for person, channels in chosen:
        paged[person.id] = tuple(dict.fromkeys([*paged.get(person.id, ()), *channels]))
    return replace(state, paged=paged), _tell(ctx, state, chosen, "firing")


def _everyone(
    ctx: _Ctx,
    state: EscalationState,
    kind: Kind,
    by: str = "",
    only: Sequence[str] | None = None,
    skip: Sequence[str] = (),
) -> list[Notify]:
    """Tell the people paged so far (or just `only` of them) and the channels posted to."""
    ids = [pid for pid in state.paged if (only is None or pid in only) and pid not in skip]
    recipients = [(ctx.person(pid), state.paged[pid]) for pid in ids]
    return [*_tell(ctx, state, recipients, kind, by), *_post(state, state.channels, kind, by)]


def _notify_route(ctx: _Ctx, state: EscalationState) -> tuple[EscalationState, list[Notify]]:
    if state.route_people:
        people = [ctx.person(pid) for pid in state.route_people]
        return _page(ctx, state, people, state.route_channels)
    channels = tuple(dict.fromkeys([*state.channels, *state.route_channels]))
    return replace(state, channels=channels), _post(state, state.route_channels, "firing")


def _start(ctx: _Ctx, state: EscalationState) -> tuple[EscalationState, list[Notify]]:
    """Schedule step 1: at once for critical, after `warning_delay` for warning."""
    steps = ctx.policy.steps
    if not steps:
        return state, []
    delay = 0.0 if state.severity == "critical" else ctx.policy.warning_delay
    due = ctx.now + timedelta(seconds=delay + steps[0].after)
    return _run_due(ctx, replace(state, step=0, loop=0, next_at=due))


def _run_due(ctx: _Ctx, state: EscalationState) -> tuple[EscalationState, list[Notify]]:
    """Run every step that is due now (consecutive steps with `after: 0` run together)."""
    actions: list[Notify] = []
    while state.next_at is not None and state.next_at <= ctx.now:
        state, more = _run_next(ctx, state)
        actions += more
    return state, actions


def _run_next(ctx: _Ctx, state: EscalationState) -> tuple[EscalationState, list[Notify]]:
    steps = ctx.policy.steps
    index, loop = (state.step, state.loop) if state.step < len(steps) else (0, state.loop + 1)
    config = steps[index]
    state = replace(state, step=index + 1, loop=loop)
    people = [
        p for t in config.notify if not t.startswith("channel:") for p in ctx.resolve(t, ctx.now)
    ]
    channels = [t.partition(":")[2] for t in config.notify if t.startswith("channel:")]
    state, actions = _page(ctx, state, people, config.via)
    actions += _post(state, channels, "firing")
    posted = tuple(dict.fromkeys([*state.channels, *channels]))
    if index + 1 < len(steps):
        due: datetime | None = ctx.now + timedelta(seconds=steps[index + 1].after)
    elif loop < ctx.policy.repeat:
        due = ctx.now + timedelta(seconds=ctx.policy.repeat_after)
    else:
        due = None  # every step ran: escalation is exhausted, the incident stays triggered
    return replace(state, channels=posted, next_at=due), actions


def _timer_is_due(ctx: _Ctx, state: EscalationState, version: int, status: Status) -> bool:
    return (
        state.status == status
        and version == state.version
        and state.next_at is not None
        and state.next_at <= ctx.now
    )


def _opened(
    ctx: _Ctx, state: EscalationState, event: Opened
) -> tuple[EscalationState, list[Notify]]:
    if state.status != "pending":
        return state, []
    state = replace(
        state,
        status="triggered",
        severity=choice(event.severity, TIERS),
        route_channels=tuple(event.channels),
        route_people=tuple(event.people),
    )
    if state.severity not in PAGING:
        return state, []
    state, told = _notify_route(ctx, state)
    state, paged = _start(ctx, state)
    return state, [*told, *paged]


def _alerts_added(
    ctx: _Ctx, state: EscalationState, event: AlertsAdded
) -> tuple[EscalationState, list[Notify]]:
    if state.status not in ("triggered", "acknowledged"):
        return state, []
    before = state.severity
    state = replace(state, severity=max(before, choice(event.severity, TIERS), key=TIERS.index))
    acker = [state.acked_by] if state.status == "acknowledged" and state.acked_by else None
    actions = _everyone(ctx, state, "updated", only=acker)
    if state.status == "acknowledged" or state.severity == before:
        return state, actions
    if before == "info":  # info → paging tier: now it is opened for real
        state, told = _notify_route(ctx, state)
        state, paged = _start(ctx, state)
        return state, [*actions, *told, *paged]
    if state.step == 0 and ctx.policy.steps:  # warning → critical before step 1: start now
        due = ctx.now + timedelta(seconds=ctx.policy.steps[0].after)
        state, paged = _run_due(ctx, replace(state, next_at=due))
        return state, [*actions, *paged]
    return state, actions


def _timer_due(
    ctx: _Ctx, state: EscalationState, event: TimerDue
) -> tuple[EscalationState, list[Notify]]:
    if not _timer_is_due(ctx, state, event.version, "triggered"):
        return state, []
    return _run_due(ctx, state)


def _acknowledged(
    ctx: _Ctx, state: EscalationState, event: Acknowledged
) -> tuple[EscalationState, list[Notify]]:
    if state.status not in ("triggered", "acknowledged"):
        return state, []
    # The same person acking again (a replayed SMS or chat click, a second link) only renews
    # the ack: telling everyone again would let a replay spam the team.
    renewal = state.status == "acknowledged" and state.acked_by == event.by
    timeout = ctx.policy.ack_timeout
    if renewal and timeout is None:
        return state, []  # nothing to renew: a no-op, and the API says `changed: false`
    expires = None if timeout is None else ctx.now + timedelta(seconds=timeout)
    state = replace(
        state, status="acknowledged", acked_by=event.by, ack_expires_at=expires, next_at=expires
    )
    if renewal:
        return state, []
    return state, _everyone(ctx, state, "acknowledged", event.by, skip=[event.by])


def _resume(ctx: _Ctx, state: EscalationState, by: str) -> tuple[EscalationState, list[Notify]]:
    """Drop the acknowledgement and page the current step again, now."""
    before = state
    state = replace(state, status="triggered", acked_by=None, ack_expires_at=None, next_at=None)
    paged: list[Notify] = []
    if state.severity in PAGING and ctx.policy.steps:
        state = replace(state, step=max(state.step - 1, 0), next_at=ctx.now)
        state, paged = _run_due(ctx, state)
    # The acknowledger hears that the ack lapsed unless the re-run step pages them anyway.
    skip = [by, *(pid for n in paged for pid in n.targets)]
    told = _everyone(ctx, before, "unacknowledged", by, only=[before.acked_by or ""], skip=skip)
    return state, [*told, *paged]


def _ack_expired(
    ctx: _Ctx, state: EscalationState, event: AckExpired
) -> tuple[EscalationState, list[Notify]]:
    if not _timer_is_due(ctx, state, event.version, "acknowledged"):
        return state, []
    return _resume(ctx, state, "")


def _unacknowledged(
    ctx: _Ctx, state: EscalationState, event: Unacknowledged
) -> tuple[EscalationState, list[Notify]]:
    if state.status != "acknowledged":
        return state, []
    return _resume(ctx, state, event.by)


def _resolved(
    ctx: _Ctx, state: EscalationState, event: Resolved
) -> tuple[EscalationState, list[Notify]]:
    if state.status not in ("triggered", "acknowledged"):
        return state, []
    told = _everyone(ctx, state, "resolved", event.by)
    return replace(state, status="resolved", next_at=None, ack_expires_at=None), told


_HANDLERS: dict[
    type, Callable[[_Ctx, EscalationState, Any], tuple[EscalationState, list[Notify]]]
] = {
    Opened: _opened,
    AlertsAdded: _alerts_added,
    TimerDue: _timer_due,
    AckExpired: _ack_expired,
    Acknowledged: _acknowledged,
    Unacknowledged: _unacknowledged,
    Resolved: _resolved,
}
